"""The local target under the real Pulumi engine: up, flips, refresh, destroy, secrets.

These pin what mocks cannot show: the CLI's project-config validation, the engine's
diffs (a flip touches the route alone), numbers reaching dynamic providers as floats,
the order in which the engine applies a flip to a stopped colour, and what the state
file holds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable

import httpx
import pytest

from components.local.processes import port_in_use
from scripts.engine import engine_env, pulumi_executable
from scripts.load import SteadyLoad
from scripts.targets.local_engine import LocalEngineTarget
from tests.engine.conftest import Cli
from tests.local.sandbox import children

pytestmark = pytest.mark.e2e

ROUTE = "e-bluegreen-live-route"


def flip_under_load(cli: Cli, to: str) -> tuple[int, int, dict[str, int]]:
    """``pulumi up`` after ``live_color`` changed, under steady load: (sent, failed, answers per colour after)."""
    live = cli.outputs()["live_url"]
    load = SteadyLoad(live, rate=80, connections=4).start()
    try:
        time.sleep(1.0)
        cli.set("live_color", to)
        cli.up()
        switched_at = load.now_s()
        time.sleep(1.0)
    finally:
        stats = load.stop()
    return stats.sent, stats.failed, stats.between(switched_at, 1e9).by_color()


def test_up_from_nothing_flip_refresh_destroy(new_stack: Callable[..., Cli]) -> None:
    # No `environment` key anywhere (the CLI used to require one of every stack), and an
    # integer in a nested setting, which the engine hands to dynamic providers as 2.0.
    cli = new_stack(local={"app_workers": 2, "app_threads": 2})
    cli.up()
    outputs = cli.outputs()
    assert outputs["live_color"] == "blue"
    assert httpx.get(outputs["live_url"]).headers["X-App-Color"] == "blue"
    env = cli.project.environment()
    record = env.apps["blue"].record()
    assert record is not None and len(children(record.pid)) == 2, "gunicorn runs the 2 workers asked for"

    # A flip is the route and nothing else: no replacement, no other update.
    cli.set("live_color", "green")
    assert cli.preview_steps() == [("update", ROUTE)]
    cli.set("live_color", "blue")
    sent, failed, after = flip_under_load(cli, "green")
    assert sent > 100 and failed == 0
    assert set(after) == {"green"}, after

    # The running stack is what the state says: no drift, nothing to do.
    cli.run("refresh", "--yes", "--non-interactive", "--expect-no-changes")
    cli.run("preview", "--non-interactive", "--expect-no-changes")

    # The database URL (with its password) is a secret: ciphertext in the state only.
    password = env.postgres.settings().password
    state = cli.state()
    text = json.dumps(state)
    assert password not in text
    database = next(r for r in state["deployment"]["resources"] if r["urn"].endswith("e-bluegreen-postgres"))
    assert "ciphertext" in database["outputs"]["url"]

    ports = [*env.ports.apps.values(), env.ports.listen, env.ports.preview, env.postgres.port]
    cli.run("destroy", "--yes", "--non-interactive")
    status = env.status()
    assert not status["haproxy"]["running"] and not status["postgres"]["running"]
    assert not any(info["running"] for info in status["colors"].values())
    assert [p for p in ports if port_in_use(p)] == []


def test_a_bare_flip_to_a_stopped_colour_starts_it_first_and_stops_the_old_one_after(
    new_stack: Callable[..., Cli],
) -> None:
    cli = new_stack(idle_capacity=0)
    cli.up()
    env = cli.project.environment()
    assert env.apps["green"].record() is None, "idle_capacity 0: the idle colour is stopped"

    sent, failed, after = flip_under_load(cli, "green")
    assert sent > 100 and failed == 0
    assert set(after) == {"green"}, after
    assert env.apps["blue"].record() is None, "the old colour is stopped once the route left it"
    assert env.apps["green"].record() is not None
    cli.run("preview", "--non-interactive", "--expect-no-changes")


def test_a_killed_pulumi_up_does_not_wedge_the_stack(new_stack: Callable[..., Cli]) -> None:
    cli = new_stack()
    cli.up()
    cli.set("live_color", "green")
    locks = cli.root / ".bluegreen" / "pulumi-state" / ".pulumi" / "locks"
    argv = [str(pulumi_executable()), "up", "--yes", "--skip-preview", "--non-interactive", "-s", cli.project.stack]
    update = subprocess.Popen(
        argv,
        cwd=cli.root,
        env=engine_env(cli.root),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not list(locks.glob("**/*.json")) and update.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert update.poll() is None, "the update ended before it could be interrupted"
    os.killpg(update.pid, signal.SIGKILL)
    update.wait(10)
    assert list(locks.glob("**/*.json")), "a killed update leaves its lock behind"
    refused = cli.run("up", "--yes", "--skip-preview", "--non-interactive", check=False)
    assert refused.returncode != 0 and "locked" in refused.stdout + refused.stderr

    # The pipeline clears a lock whose process is gone, and the flip goes through.
    seen: list[str] = []
    outputs = LocalEngineTarget(cli.project.stack, cli.root).apply({"live_color": "green"}, progress=seen.append)
    assert outputs["live_color"] == "green"
    assert any("stale engine lock" in line for line in seen)
    assert httpx.get(outputs["live_url"]).headers["X-App-Color"] == "green"
    cli.run("preview", "--non-interactive", "--expect-no-changes")
