"""Switching under load, and switches that must be refused."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from components.config import other_color
from components.local.processes import free_port, listens_on
from components.local.runtime import LocalEnvironment, SwitchRefusedError
from scripts.load import SteadyLoad, SwitchMark, analyze_switches
from tests.local.sandbox import REPO, LocalProject

pytestmark = pytest.mark.e2e


def test_fifty_switches_under_load_drop_nothing(running_env: LocalEnvironment) -> None:
    env = running_env
    load = SteadyLoad(env.live_url, rate=500, connections=16).start()
    marks = []
    try:
        time.sleep(0.5)
        color = "blue"
        for _ in range(50):
            color = other_color(color)
            begun = time.monotonic()
            env.switch(color)
            marks.append(SwitchMark(color, begun, time.monotonic()))
            time.sleep(0.15)
    finally:
        report = load.stop()
    analysis = analyze_switches(report, marks)
    print(f"sent {analysis.sent} at {report.achieved_rate:.0f} req/s, p50 switch {analysis.percentile(50):.1f} ms")
    assert report.achieved_rate >= 500 * 0.95
    assert analysis.failed == 0, report.failures()[:5]
    assert analysis.wrong_color_after_switch == 0
    assert len(analysis.latencies_ms) == 50
    assert env.status()["live_color"] == "blue"  # an even number of flips


def test_switch_refused_when_target_process_is_down(running_env: LocalEnvironment) -> None:
    env = running_env
    green = env.apps["green"].record()
    assert green is not None
    os.kill(green.pid, signal.SIGKILL)
    green.wait_gone(10)
    with pytest.raises(SwitchRefusedError, match="green: its app process is not running"):
        env.switch("green")
    assert env.status()["live_color"] == "blue"
    assert httpx.get(env.live_url).headers["X-App-Color"] == "blue"


def test_switch_refused_when_target_fails_readiness(local_project: LocalProject) -> None:
    config = local_project.write(green_version="2.2.0", local={"faults": {"2.2.0": {"fail_readiness": True}}})
    env = local_project.environment(config)
    env.up()
    assert env.status()["colors"]["green"]["health"] == "UP"  # alive, but not ready
    with pytest.raises(SwitchRefusedError, match=r"green: .*/readyz answered 503"):
        env.switch("green")
    assert env.status()["live_color"] == "blue"
    # The same through the config: apply refuses, the route stays on blue.
    with pytest.raises(SwitchRefusedError):
        env.apply(config.with_changes(live_color="green"))
    assert env.status()["live_color"] == "blue"


def test_switch_refused_when_haproxy_sees_backend_down(running_env: LocalEnvironment) -> None:
    env = running_env
    env.haproxy.command("disable health be_green/app")  # keep checks from flipping it back
    env.haproxy.command("set server be_green/app health down")
    with pytest.raises(SwitchRefusedError, match="HAProxy sees its backend as DOWN"):
        env.switch("green")
    assert env.status()["live_color"] == "blue"


def test_new_version_of_the_live_colour_restarts_in_place_without_failures(running_env: LocalEnvironment) -> None:
    env = running_env
    old_pid = env.status()["colors"]["blue"]["pid"]
    load = SteadyLoad(env.live_url, rate=300, connections=8).start()
    try:
        time.sleep(0.5)
        actions = env.apply(env.config.with_changes(blue_version="1.0.1"))
        time.sleep(0.5)
    finally:
        report = load.stop()
    assert actions["blue"] == "restarted 1.0.1" and actions["route"] == "unchanged"
    assert env.status()["colors"]["blue"]["pid"] != old_pid
    assert report.sent > 300 and report.failed == 0, report.failures()[:5]
    assert httpx.get(env.live_url).headers["X-App-Version"] == "1.0.1"


@pytest.fixture
def example_servers(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The example service's processes a test starts itself (no stack); stopped by pid afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()


def _serve(started: list[subprocess.Popen[bytes]], port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "examples" / "orders"), "APP_WORKERS": "1", "APP_THREADS": "4"}
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started.append(process)
    deadline = time.monotonic() + 30
    while not listens_on(process.pid, port):
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    return process


def test_an_app_process_told_to_stop_hands_the_shared_port_over_at_once(
    example_servers: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """The in-place restart's hand-over, without HAProxy: no connection may reach the stopping process.

    The old process keeps a kept-alive connection while it drains (as HAProxy's are), so
    it lingers; every new connection meanwhile must be served, by either process. Stock
    gthread stopped accepting but kept its listener in the SO_REUSEPORT group, and the
    kernel reset the connections it had routed there when the old process finally
    closed it (the dropped requests of the restart test above).
    """
    port = free_port()
    log = tmp_path / "app.log"
    old = _serve(example_servers, port, log)
    kept_alive = socket.create_connection(("127.0.0.1", port))
    kept_alive.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    assert kept_alive.recv(4096).startswith(b"HTTP/1.1 200")
    _serve(example_servers, port, log)

    os.kill(old.pid, signal.SIGTERM)
    answered, failures = 0, []
    while old.poll() is None and answered + len(failures) < 1000:
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)  # a new connection each time
            answered += response.status_code == 200
        except httpx.TransportError as exc:
            failures.append(repr(exc))
        time.sleep(0.01)
    kept_alive.close()
    assert failures == [], f"{len(failures)} of {answered + len(failures)} connections dropped: {failures[:3]}"
    assert answered > 0
