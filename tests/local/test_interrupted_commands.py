"""A command SIGKILLed while a colour starts leaves nothing that ``up`` and ``down`` cannot take back.

The kill lands when the new app process exists but before the command took it as the
colour's serving process (the window between spawn and readiness); the orphan then
comes up on the colour's port by itself. Afterwards ``up`` must work, ``down`` must
leave no process of the stack, and a port held by a program that is not this stack's
is still refused, with that program left running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.local.processes import OWNER_ENV, ProcessRecord, listens_on, owned_processes, owner_mark, port_in_use
from components.local.runtime import LocalEnvironment
from scripts.__main__ import main
from tests.local.sandbox import REPO, LocalProject, children

pytestmark = pytest.mark.e2e


def _command(project: LocalProject, verb: str, log: Path) -> subprocess.Popen[bytes]:
    """``python -m scripts <verb>`` as its own process, on the runtime path (no Pulumi engine)."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "scripts", verb, *project.cli_args()],
            cwd=REPO,
            env={**os.environ, "BLUEGREEN_ENGINE": "runtime"},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _serves_port(pid: int, port: int) -> bool:
    """Whether ``pid`` runs the example's command for ``port`` (``... --port <port>``)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return argv[-3:-1] == [b"--port", str(port).encode()]


def _app_processes(port: int) -> list[int]:
    """Every process started by the example's command for ``port`` (launcher and workers alike)."""
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _serves_port(int(p.name), port)]


def _kill_while_starting(project: LocalProject, color: str, tmp_path: Path) -> ProcessRecord:
    """Run ``up`` and SIGKILL it as soon as its new app process for ``color`` exists; that process."""
    port = project.values["app_port"] + (color == "green")
    command = _command(project, "up", tmp_path / "up.log")
    deadline = time.monotonic() + 120
    try:
        while not (spawned := [pid for pid in children(command.pid) if _serves_port(pid, port)]):
            assert command.poll() is None, f"up ended before starting {color}: {(tmp_path / 'up.log').read_text()}"
            assert time.monotonic() < deadline, "up never started the new app process"
            time.sleep(0.005)
        orphan = ProcessRecord.of(spawned[0])
    finally:
        os.kill(command.pid, signal.SIGKILL)
        command.wait()
    # Killed before the command had taken it as the colour's serving process.
    env = LocalEnvironment(project.config(), project.root)
    assert env.apps[color].record() != orphan
    # Left alone, the orphan comes up on the colour's port: what the next command meets.
    while not listens_on(orphan.pid, port):
        assert orphan.alive(), "the new app process should outlive the killed command"
        assert time.monotonic() < deadline, "the orphaned app process never listened"
        time.sleep(0.05)
    return orphan


def _assert_nothing_of_the_stack_runs(project: LocalProject, orphan: ProcessRecord) -> None:
    env = LocalEnvironment(project.config(), project.root)
    assert not orphan.alive()
    app_ports = [project.values["app_port"], project.values["app_port"] + 1]
    assert [pid for port in app_ports for pid in _app_processes(port)] == []
    stack_ports = [*app_ports, project.values["listen_port"], project.values["preview_port"], env.postgres.port]
    assert [port for port in stack_ports if port_in_use(port)] == []


@pytest.mark.parametrize(
    "color",
    [
        pytest.param("green", id="idle colour (stopped, then started)"),
        pytest.param("blue", id="live colour (restarted in place)"),
    ],
)
def test_up_after_a_kill_during_a_colour_start_succeeds_and_down_leaves_nothing(
    local_project: LocalProject, tmp_path: Path, color: str
) -> None:
    assert main(["up", *local_project.cli_args()]) == 0
    local_project.write(**{f"{color}_version": "1.0.1"})
    orphan = _kill_while_starting(local_project, color, tmp_path)

    assert main(["up", *local_project.cli_args()]) == 0
    status = LocalEnvironment(local_project.config(), local_project.root).status()
    assert status["colors"][color]["running"] and status["colors"][color]["version"] == "1.0.1"
    assert status["colors"][color]["pid"] != orphan.pid
    assert not orphan.alive()

    assert main(["down", *local_project.cli_args()]) == 0
    _assert_nothing_of_the_stack_runs(local_project, orphan)


def test_down_after_a_kill_during_the_idle_colour_start_leaves_nothing(
    local_project: LocalProject, tmp_path: Path
) -> None:
    assert main(["up", *local_project.cli_args()]) == 0
    local_project.write(green_version="1.0.1")
    orphan = _kill_while_starting(local_project, "green", tmp_path)

    assert main(["down", *local_project.cli_args()]) == 0
    _assert_nothing_of_the_stack_runs(local_project, orphan)


def test_a_colour_port_held_by_another_program_is_still_refused_and_that_program_left_alone(
    local_project: LocalProject, capsys: pytest.CaptureFixture[str]
) -> None:
    port = local_project.values["app_port"] + 1
    listen = (
        "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); "
        "print('listening', flush=True); time.sleep(600)"
    )
    # It even looks like a colour, and carries the mark of another project's stack of the same name.
    lookalike = {"APP_COLOR": "green", "BLUEGREEN_OWNER": "/elsewhere/.bluegreen/t#app-green"}
    squatter = subprocess.Popen(
        [sys.executable, "-c", listen, str(port)], env={**os.environ, **lookalike}, stdout=subprocess.PIPE
    )
    try:
        assert squatter.stdout is not None and squatter.stdout.readline() == b"listening\n"
        assert main(["up", *local_project.cli_args()]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert f"green app port {port}" in err and "already in use by another program" in err
        assert f"pid {squatter.pid}" in err
        assert main(["down", *local_project.cli_args()]) == 0
        assert squatter.poll() is None and port_in_use(port)
    finally:
        squatter.kill()
        squatter.wait()


def test_only_this_stacks_exact_mark_outside_the_recorded_process_makes_a_leftover(tmp_path: Path) -> None:
    mark = owner_mark(tmp_path / ".bluegreen" / "t", "app-blue")
    with_children = "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"
    started = {
        "leftover": subprocess.Popen(["sleep", "60"], env={OWNER_ENV: mark}, start_new_session=True),
        "recorded": subprocess.Popen(
            [sys.executable, "-c", with_children], env={**os.environ, OWNER_ENV: mark}, start_new_session=True
        ),
        "other stack": subprocess.Popen(["sleep", "60"], env={OWNER_ENV: f"{mark}x"}, start_new_session=True),
        "unmarked": subprocess.Popen(["sleep", "60"], start_new_session=True),
    }
    try:
        recorded = ProcessRecord.of(started["recorded"].pid)
        deadline = time.monotonic() + 10
        while not children(recorded.pid):  # its child carries the mark too, in its session
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert {r.pid for r in owned_processes(mark, keep=recorded)} == {started["leftover"].pid}
        assert {r.pid for r in owned_processes(mark)} == {
            started["leftover"].pid,
            recorded.pid,
            *children(recorded.pid),
        }
    finally:
        for process in started.values():
            os.killpg(process.pid, signal.SIGKILL)  # each leads its own process group
            process.wait()
