"""The supervisor `up` starts: a part killed by pid comes back, the stack keeps serving, status says so.

Real HAProxy, PostgreSQL and gunicorn on 127.0.0.1, killed with SIGKILL by the pids the
stack recorded. The assertions are on behaviour (requests succeed again, status records
the restart, what `down` stopped stays stopped), not on how fast; bench/fault_recovery.py
measures the outages.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from components.local.processes import ProcessRecord, port_in_use
from components.local.runtime import LocalEnvironment
from scripts.__main__ import main
from scripts.load import SteadyLoad
from tests.local.sandbox import LocalProject, children

pytestmark = pytest.mark.e2e


def up(project: LocalProject) -> LocalEnvironment:
    assert main(["up", *project.cli_args()]) == 0
    return project.environment()


def status_json(project: LocalProject, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["status", *project.cli_args(), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def status_text(project: LocalProject, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["status", *project.cli_args()]) == 0
    return " ".join(capsys.readouterr().out.split())  # rich wraps long lines


def kill(record: ProcessRecord | None, with_children: bool = True) -> ProcessRecord:
    """SIGKILL a recorded process (and its workers), as a crash or the OOM killer would."""
    assert record is not None and record.alive()
    for pid in [*(children(record.pid) if with_children else []), record.pid]:
        os.kill(pid, signal.SIGKILL)
    return record


def wait_until(condition: Callable[[], object], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.1)


def replaced(current: Callable[[], ProcessRecord | None], old: ProcessRecord) -> Callable[[], bool]:
    return lambda: (record := current()) is not None and record != old


def test_a_killed_haproxy_is_restarted_with_the_live_route_and_status_says_so(
    local_project: LocalProject, capsys: pytest.CaptureFixture[str]
) -> None:
    env = up(local_project)
    assert env.status()["supervisor"]["running"]
    env.switch("green")  # the config still says blue: only the map file knows green is live
    with SteadyLoad(env.live_url, rate=20, connections=4) as load:
        time.sleep(1.0)
        old = kill(env.haproxy.record())
        wait_until(replaced(env.haproxy.record, old), "a new HAProxy")
        back = load.now_s()
        time.sleep(1.5)
    after = load.stats.between(back + 0.5, float("inf")).answers
    assert after and all(a.ok and a.color == "green" for a in after), load.stats.summary()
    assert load.stats.failed < load.stats.sent  # it served before and after the kill

    status = status_json(local_project, capsys)
    assert status["live_color"] == "green" and status["haproxy"]["running"]
    restarts = status["haproxy"]["restarts"]
    assert restarts["count"] == 1 and restarts["last_at"] and f"pid {old.pid} exited" in restarts["last_cause"]
    assert status["supervisor"]["running"] and status["supervisor"]["pid"]
    assert "haproxy: restarted 1x" in status_text(local_project, capsys)


def test_a_killed_live_app_comes_back_with_the_applied_config_not_the_edited_file(
    local_project: LocalProject, capsys: pytest.CaptureFixture[str]
) -> None:
    env = up(local_project)
    local_project.write(blue_version="2.0.0")  # edited, never applied: the restart must ignore it
    with SteadyLoad(env.live_url, rate=20, connections=4) as load:
        time.sleep(1.0)
        first = kill(env.apps["blue"].record())
        wait_until(replaced(env.apps["blue"].record, first), "blue restarted")
        wait_until(lambda: env.haproxy.health("blue") == "UP", "blue UP in HAProxy")
        # Its restart is the supervisor's child: this time the cause names the signal.
        second = kill(env.apps["blue"].record())
        wait_until(replaced(env.apps["blue"].record, second), "blue restarted again")
        wait_until(lambda: env.haproxy.health("blue") == "UP", "blue UP in HAProxy again")
        back = load.now_s()
        time.sleep(1.0)
    after = load.stats.between(back, float("inf")).answers
    assert after and all(a.ok and a.color == "blue" and a.version == "1.0.0" for a in after)

    status = status_json(local_project, capsys)
    blue = status["colors"]["blue"]
    assert blue["running"] and blue["version"] == "1.0.0" and blue["health"] == "UP"
    assert blue["restarts"]["count"] == 2 and blue["restarts"]["gave_up"] is None
    assert f"pid {second.pid} exited (killed by SIGKILL)" in blue["restarts"]["last_cause"]
    assert status["colors"]["green"]["restarts"]["count"] == 0


def test_a_killed_postgres_is_restarted_and_the_app_uses_it_again(
    local_project: LocalProject, capsys: pytest.CaptureFixture[str]
) -> None:
    env = up(local_project)
    created = httpx.post(f"{env.live_url}/orders", json={"item": "kept", "quantity": 1, "total_cents": 5})
    assert created.status_code == 201
    # Acknowledged means stored (synchronous_commit on): killed right away, the order survives.
    old = kill(env.postgres.record(), with_children=False)
    wait_until(replaced(env.postgres.record, old), "a new PostgreSQL")
    wait_until(lambda: httpx.get(f"{env.live_url}/readyz").status_code == 200, "blue ready again")
    fetched = httpx.get(f"{env.live_url}/orders/{created.json()['id']}")
    assert fetched.status_code == 200 and fetched.json()["item"] == "kept", fetched.text
    again = httpx.post(f"{env.live_url}/orders", json={"item": "new", "quantity": 1, "total_cents": 5})
    assert again.status_code == 201
    restarts = status_json(local_project, capsys)["postgres"]["restarts"]
    assert restarts["count"] == 1 and f"pid {old.pid} exited" in restarts["last_cause"]


CRASHY_APP = """
import http.server, os, sys
if os.path.exists(sys.argv[2]):
    print("RuntimeError: the crash flag is set", flush=True)
    sys.exit(3)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
class Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def test_a_crash_loop_is_given_up_with_its_cause_and_up_starts_it_again(
    local_project: LocalProject, capsys: pytest.CaptureFixture[str]
) -> None:
    (local_project.root / "crashy.py").write_text(CRASHY_APP)
    flag = local_project.root / "crash.flag"
    local_project.write(app_command="{python} crashy.py {port} crash.flag", migrations_dir="", ready_path="/healthz")
    env = up(local_project)
    flag.touch()  # from now on every start of the app fails
    kill(env.apps["green"].record())

    def gave_up() -> bool:
        return bool(env.status()["colors"]["green"]["restarts"]["gave_up"])

    wait_until(gave_up, "the supervisor giving up on green", timeout_s=90)
    green = status_json(local_project, capsys)["colors"]["green"]
    assert not green["running"]
    restarts = green["restarts"]
    assert restarts["count"] == 0 and restarts["failed"] == 5
    assert "exited during start-up" in restarts["last_error"] and "crash flag is set" in restarts["last_error"]
    assert "5 restarts within 60 s" in restarts["gave_up"] and "crash flag is set" in restarts["gave_up"]
    assert httpx.get(env.live_url).status_code == 200  # blue, live, never stopped serving
    assert status_json(local_project, capsys)["supervisor"]["running"]
    assert "green: gave up at" in status_text(local_project, capsys)

    flag.unlink()
    env = up(local_project)  # a person fixed it: up starts it and clears the give-up
    green = env.status()["colors"]["green"]
    assert green["running"] and green["restarts"]["gave_up"] is None


def test_one_supervisor_per_stack_and_down_stops_it_before_the_parts(
    local_project: LocalProject, capsys: pytest.CaptureFixture[str]
) -> None:
    env = up(local_project)
    first = ProcessRecord.from_json(env.state.load()["supervisor"]["process"])
    assert first is not None and first.alive()
    up(local_project)
    assert ProcessRecord.from_json(env.state.load()["supervisor"]["process"]) == first  # never two

    kill(first, with_children=False)
    first.wait_gone(5)
    assert not status_json(local_project, capsys)["supervisor"]["running"]
    assert "supervisor: not running" in status_text(local_project, capsys)
    up(local_project)  # gone: up starts it again
    second = ProcessRecord.from_json(env.state.load()["supervisor"]["process"])
    assert second is not None and second.alive() and second != first

    ports = [env.ports.listen, env.ports.preview, *env.ports.apps.values(), env.postgres.port]
    capsys.readouterr()
    assert main(["down", *local_project.cli_args()]) == 0
    said = " ".join(capsys.readouterr().err.split())
    assert "stopped supervisor, blue app, green app, haproxy, postgres" in said
    assert not second.alive()
    time.sleep(2.0)  # what down stopped stays stopped
    status = env.status()
    assert not status["supervisor"]["running"] and not status["haproxy"]["running"]
    assert not status["postgres"]["running"] and not any(c["running"] for c in status["colors"].values())
    assert [p for p in ports if port_in_use(p)] == []


def test_supervise_false_starts_none_and_a_killed_part_stays_down(
    local_project: LocalProject, capsys: pytest.CaptureFixture[str]
) -> None:
    local_project.write(local={**local_project.values["local"], "supervise": True})
    env = up(local_project)
    running = ProcessRecord.from_json(env.state.load()["supervisor"]["process"])
    assert running is not None and running.alive()
    local_project.write(local={**local_project.values["local"], "supervise": False})
    env = up(local_project)  # turning it off stops the running one
    assert not running.alive()
    status = env.status()
    assert status["supervisor"] == {**status["supervisor"], "enabled": False, "running": False}

    kill(env.haproxy.record())
    time.sleep(2.0)
    assert not env.haproxy.running()
    assert "supervisor: off" in status_text(local_project, capsys)
