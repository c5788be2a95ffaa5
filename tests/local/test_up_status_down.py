"""``up`` from nothing, ``status``, ``down``: real HAProxy, PostgreSQL and gunicorn on 127.0.0.1."""

from __future__ import annotations

import json

import httpx
import psycopg
import pytest

from components.local.processes import is_zombie, port_in_use
from scripts.__main__ import main
from tests.local.sandbox import LocalProject

pytestmark = pytest.mark.e2e


def test_up_status_down_through_the_cli(local_project: LocalProject, capsys: pytest.CaptureFixture[str]) -> None:
    local_project.write(green_version="2.0.0")
    assert main(["up", *local_project.cli_args()]) == 0
    capsys.readouterr()

    assert main(["status", *local_project.cli_args(), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["live_color"] == "blue" and status["idle_color"] == "green"
    for color, version in (("blue", "1.0.0"), ("green", "2.0.0")):
        info = status["colors"][color]
        assert info["running"] and info["health"] == "UP" and info["version"] == version
    assert status["colors"]["blue"]["role"] == "live" and status["colors"]["green"]["role"] == "idle"

    live = httpx.get(status["live_url"] + "/")
    preview = httpx.get(status["preview_url"] + "/")
    assert live.headers["X-App-Color"] == "blue" and live.headers["X-App-Version"] == "1.0.0"
    assert preview.headers["X-App-Color"] == "green" and preview.headers["X-App-Version"] == "2.0.0"

    pids = [status["colors"][c]["pid"] for c in ("blue", "green")] + [status["haproxy"]["pid"]]
    ports = [local_project.values[k] for k in ("listen_port", "preview_port", "app_port")]
    ports += [local_project.values["app_port"] + 1, status["postgres"]["port"]]

    assert main(["status", *local_project.cli_args()]) == 0
    table = capsys.readouterr().out
    assert "live: blue" in table and "UP" in table

    assert main(["down", *local_project.cli_args()]) == 0
    assert [pid for pid in pids if not is_zombie(pid)] == []
    assert [p for p in ports if port_in_use(p)] == []

    assert main(["status", *local_project.cli_args(), "--json"]) == 0
    down = json.loads(capsys.readouterr().out)
    assert down["live_color"] is None and not down["haproxy"]["running"] and not down["postgres"]["running"]


def test_up_twice_changes_nothing(local_project: LocalProject) -> None:
    env = local_project.environment()
    env.up()
    pids = {c: env.status()["colors"][c]["pid"] for c in ("blue", "green")}
    again = env.up()
    assert again["blue"] == "unchanged 1.0.0" and again["green"] == "unchanged 1.0.0"
    assert again["haproxy"] == "unchanged" and again["route"] == "unchanged" and again["migrations"] == []
    assert {c: env.status()["colors"][c]["pid"] for c in ("blue", "green")} == pids


def test_a_stack_file_restored_behind_its_database_is_refused_saying_what_to_set(
    local_project: LocalProject, capsys: pytest.CaptureFixture[str]
) -> None:
    """As after `make demo` (contract 004, after=2.0.0, applied) and `git checkout Pulumi.dev.yaml`."""
    local_project.write(blue_version="2.0.0", green_version="2.0.0")
    assert main(["up", *local_project.cli_args()]) == 0
    pids = {c: local_project.environment().status()["colors"][c]["pid"] for c in ("blue", "green")}
    local_project.write(blue_version="1.0.0", green_version="1.0.0")
    capsys.readouterr()
    assert main(["up", *local_project.cli_args()]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "004_drop_total_cents.sql" in err and "behind its database" in err, err
    assert "Set blue_version and green_version to 2.0.0 or later" in err
    status = local_project.environment().status()
    # Nothing was restarted onto releases that cannot run: both colours still serve 2.0.0.
    assert {c: status["colors"][c]["pid"] for c in ("blue", "green")} == pids
    assert {status["colors"][c]["version"] for c in ("blue", "green")} == {"2.0.0"}


def test_the_demo_runs_on_a_fresh_copy_and_leaves_the_source_stack_alone(local_project: LocalProject) -> None:
    from rich.console import Console

    from scripts.demo import PORT_SHIFT, fresh_copy

    source = local_project.root / f"Pulumi.{local_project.stack}.yaml"
    before = source.read_text()
    fresh_copy(local_project.stack, "demo", local_project.root, Console(stderr=True))
    demo = LocalProject.__new__(LocalProject)
    demo.root, demo.stack, demo.environments = local_project.root, "demo", []
    config = demo.config()
    assert config.listen_port == local_project.values["listen_port"] + PORT_SHIFT
    env = demo.environment()
    env.up()
    pids = [env.status()["colors"][c]["pid"] for c in ("blue", "green")]
    with psycopg.connect(env.database_url()) as conn:
        conn.execute("CREATE TABLE left_by_the_last_demo (id int)")
    # The next run: the previous demo is brought down and its data removed, the copy rewritten.
    fresh_copy(local_project.stack, "demo", local_project.root, Console(stderr=True))
    assert [pid for pid in pids if not is_zombie(pid)] == []
    assert not (local_project.root / ".bluegreen" / "demo").exists()
    env = demo.environment()
    env.up()
    with psycopg.connect(env.database_url()) as conn:
        assert conn.execute("SELECT to_regclass('left_by_the_last_demo')").fetchone() == (None,)
    env.down()
    assert source.read_text() == before
