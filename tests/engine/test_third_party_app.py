"""A service this project did not write, behind the local target with stack config alone.

pypiserver (from PyPI) knows nothing of blue-green: no ``/healthz`` or ``/readyz`` (it
answers ``/health``), no colour header, no database, no migrations. Each release
serves its own package directory (``packages/<version>``), so a version whose
directory is missing cannot start. Everything goes through the real Pulumi engine and
the pipeline's command line, as a user would run it.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from components.local.runtime import LocalEnvironment
from scripts.__main__ import main
from scripts.load import SteadyLoad
from tests.local.sandbox import LocalProject, scratch_project

pytestmark = pytest.mark.e2e

MONITOR = {"max_error_rate": 0.02, "max_p99_ms": 1000, "window_s": 4, "interval_s": 1, "bake_s": 6}
SMOKE = {
    "settings": {"timeout_s": 8, "attempts": 4, "backoff_s": 0.2, "max_backoff_s": 0.5},
    "checks": [
        {"name": "health", "path": "/health", "expect": {"status": 200}},
        {"name": "index lists the package", "path": "/simple/", "expect": {"status": 200, "contains": "demo"}},
    ],
}


@pytest.fixture
def project() -> Iterator[LocalProject]:
    with scratch_project("third", pulumi_project=True) as made:
        for version in ("1.0.0", "2.0.0", "3.0.0"):
            directory = made.root / "packages" / version
            directory.mkdir(parents=True)
            (directory / f"demo-{version}.tar.gz").write_bytes(b"not really a package")
        (made.root / "checks.yaml").write_text(yaml.safe_dump(SMOKE))
        made.write(
            app_command="{python} -m pypiserver run -i 127.0.0.1 -p {port} packages/{version}",
            health_path="/health",
            ready_path="",
            migrations_dir="",
            smoke_file="checks.yaml",
            startup_timeout_s=20,
            monitor=MONITOR,
            scale_down_delay_s=1,
        )
        yield made


def cli(project: LocalProject, *args: str) -> int:
    return main([args[0], *project.cli_args(), *args[1:]])


def report(project: LocalProject, name: str) -> dict[str, Any]:
    return json.loads((project.root / name).read_text())


def environment(project: LocalProject) -> LocalEnvironment:
    return LocalEnvironment(project.config(), project.root)


def kill_when_live(project: LocalProject, color: str, stop: threading.Event) -> threading.Thread:
    """Crash ``color``'s server whenever HAProxy routes prod to it: a release that fails once live.

    Again each time: the stack's supervisor restarts a crashed colour, and a single crash
    healed within a second costs no request (HAProxy retries), so nothing would roll back.
    """

    def watch() -> None:
        env = environment(project)
        while not stop.is_set():
            routing = env.haproxy.current_routing()
            if routing is not None and routing.live_color == color:
                record = env.apps[color].record()
                if record is not None:
                    os.killpg(record.pid, signal.SIGKILL)
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_pypi_app_goes_through_every_kind_of_release(project: LocalProject, capsys) -> None:
    assert cli(project, "up") == 0
    env = environment(project)
    assert env.status()["live_color"] == "blue"

    # A good release under steady load: nothing fails, and HAProxy says green served prod.
    with SteadyLoad(env.live_url, rate=30, connections=4, path="/simple/") as load:
        time.sleep(1.0)
        code = cli(project, "deploy", "--version", "2.0.0", "--report", str(project.root / "good.json"))
        time.sleep(1.0)
    assert code == 0, capsys.readouterr()
    assert load.stats.sent > 100 and load.stats.failed == 0, load.stats.summary()
    assert {a.color for a in load.stats.answers[-10:]} == {"green"}
    good = report(project, "good.json")
    assert good["outcome"] == "released"
    verify = next(e for e in good["events"] if e["kind"] == "verify")
    assert verify["evidence"]["verified"] is True
    assert verify["evidence"]["route"] == {"green": 100, "blue": 0}
    assert verify["evidence"]["answers"] == {"green": 20}
    assert project.config().live_color == "green"

    # A release that crashes whenever it is live: rolled back to green automatically.
    stop = threading.Event()
    watcher = kill_when_live(project, "blue", stop)
    with SteadyLoad(env.live_url, rate=30, connections=4, path="/simple/") as load:
        code = cli(project, "deploy", "--version", "3.0.0", "--report", str(project.root / "crash.json"))
    stop.set()
    watcher.join(5)
    assert code == 1
    crash = report(project, "crash.json")
    assert crash["outcome"] == "rolled back", crash["summary"]
    assert any(e["kind"] == "rollback" for e in crash["events"])
    assert project.config().live_color == "green"
    assert environment(project).haproxy.current_routing().live_color == "green"
    assert {a.color for a in load.stats.answers[-5:]} == {"green"} and load.stats.answers[-1].ok

    # A release that cannot start: refused before any switch, its cause quoted, green untouched.
    capsys.readouterr()
    code = cli(project, "deploy", "--version", "9.9.9", "--report", str(project.root / "broken.json"))
    told = capsys.readouterr()
    assert code == 1, told
    broken = report(project, "broken.json")
    assert broken["outcome"] == "did not start"
    cause = broken["summary"]["reason"]
    assert "No such file or directory" in cause and "packages/9.9.9" in cause, cause
    assert "No such file or directory" in " ".join(told.err.split())  # said on the console too
    assert not any(e["kind"] == "switch" for e in broken["events"])
    assert project.config().live_color == "green" and project.config().blue_version == "3.0.0"
    assert environment(project).haproxy.current_routing().live_color == "green"
    assert environment(project).status()["colors"]["green"]["version"] == "2.0.0"
