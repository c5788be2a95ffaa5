"""One app process per colour, on its own port, started from ``app_command``.

A colour's process gets its version, colour, database URL and fault settings in the
environment and logs to ``logs/<colour>.log``. Stopping drains: HAProxy stops
sending new requests first (the caller's job), then SIGTERM lets gunicorn finish
what is in flight. A version change restarts in place without a gap: the new
process binds the same port with ``SO_REUSEPORT`` (the example app sets it), and the
old one is stopped only once the new one answers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from components.config import split_command
from components.local.processes import ProcessRecord, listens_on
from components.local.state import StateDir


class AppProcessError(RuntimeError):
    """A colour's process did not start or did not become healthy."""


START_MARKER = "---"  # the line the runtime writes into a colour's log before each start
# The first line that looks like a cause: a traceback, or an error/exception/fatal word.
CAUSE_LINE = re.compile(r"^Traceback \(most recent call last\)|\b(error|exception|fatal|critical)\b", re.IGNORECASE)
CAUSE_LINES = 20
TAIL_LINES = 15


def app_launch(
    command: str, environment: Mapping[str, str], cwd: Path, command_wins: bool = True
) -> tuple[dict[str, str], list[str]]:
    """The environment and argv an app command runs with (this machine's, minus fault and PG settings).

    ``command_wins``: the command's own ``NAME=value`` words override ``environment``, as
    in a shell; the rehearsal passes False so its scratch ``DATABASE_URL`` always wins.
    """
    assignments, argv = split_command(command)  # validated with the config
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAULT_", "PG"))}
    for layer in (environment, assignments) if command_wins else (assignments, environment):
        env.update(layer)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), env.get("PYTHONPATH")]))
    return env, argv


@dataclass(frozen=True)
class AppSpec:
    """Everything that decides whether a running colour must be restarted."""

    color: str
    version: str
    port: int
    command: str
    environment: Mapping[str, str]
    # Where the start-up wait asks (the stack's health_path); not part of the fingerprint:
    # a new probe path is no reason to restart a running app.
    health_path: str = "/healthz"

    def fingerprint(self) -> dict[str, object]:
        return {"version": self.version, "port": self.port, "command": self.command, "env": dict(self.environment)}


class AppProcess:
    def __init__(self, state: StateDir, color: str, project_root: Path) -> None:
        self.state = state
        self.color = color
        self.project_root = project_root
        self.log_file = state.logs_dir / f"{color}.log"

    # -- what is running ---------------------------------------------------------

    def _entry(self) -> dict[str, object]:
        return dict(self.state.load().get("apps", {}).get(self.color) or {})

    def record(self) -> ProcessRecord | None:
        record = ProcessRecord.from_json(self._entry().get("process"))
        return record if record and record.alive() else None

    def running_spec(self) -> dict[str, object] | None:
        return self._entry().get("spec") if self.record() else None  # type: ignore[return-value]

    def running_version(self) -> str | None:
        spec = self.running_spec()
        return str(spec["version"]) if spec else None

    def _remember(self, record: ProcessRecord | None, spec: AppSpec | None) -> None:
        data = self.state.load()
        apps = data.setdefault("apps", {})
        apps[self.color] = {"process": record.to_json(), "spec": spec.fingerprint()} if record and spec else None
        self.state.save(data)

    # -- lifecycle ---------------------------------------------------------------

    def ensure(self, spec: AppSpec, overlap: bool = False, timeout_s: float = 30.0) -> str:
        """Run ``spec``: nothing if it already runs, start if stopped, replace if changed.

        ``overlap`` (a colour that serves traffic) starts the new process next to the
        old one on the shared port; if the app cannot share its port, it falls back to
        stop-then-start.
        """
        current = self.record()
        if current and self.running_spec() == spec.fingerprint():
            return "unchanged"
        if current and not overlap:
            current.stop(timeout_s=15)
            self._remember(None, None)
            current = None
        try:
            new = self._start_healthy(spec, timeout_s)
        except AppProcessError:
            if not current:
                raise
            current.stop(timeout_s=15)  # the app cannot share its port: stop, then start
            self._remember(None, None)
            current = None
            new = self._start_healthy(spec, timeout_s)
        self._remember(new, spec)
        if current:
            current.stop(timeout_s=15)
            return "restarted"
        return "started"

    def _start_healthy(self, spec: AppSpec, timeout_s: float) -> ProcessRecord:
        new = self._spawn(spec)
        try:
            self.wait_healthy(spec, new, timeout_s)
        except AppProcessError:
            new.stop(timeout_s=5)
            raise
        return new

    def _spawn(self, spec: AppSpec) -> ProcessRecord:
        env, argv = app_launch(spec.command, spec.environment, self.project_root)
        self.state.logs_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
            log.write(f"{START_MARKER} {stamp} starting {spec.color} {spec.version}\n".encode())
            log.flush()
            try:
                process = subprocess.Popen(
                    argv,
                    cwd=self.project_root,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise AppProcessError(f"{spec.color}: cannot run {spec.command!r}: {exc}") from exc
        return ProcessRecord.of(process.pid)

    def wait_healthy(self, spec: AppSpec, record: ProcessRecord, timeout_s: float) -> None:
        """Healthy = the new process itself listens on the port and ``health_path`` answers 200."""
        port = spec.port
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            if not record.alive():
                raise AppProcessError(
                    f"{self.color}: the app exited during start-up; from {self.log_file}:\n{self.start_failure()}"
                )
            try:
                response = httpx.get(f"http://127.0.0.1:{port}{spec.health_path}", timeout=1.0)
                if response.status_code == 200 and listens_on(record.pid, port):
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.1)
        cause = self.start_failure(errors_only=True)
        raise AppProcessError(
            f"{self.color}: not healthy on port {port} after {timeout_s:.0f}s ({last})"
            + (f"; from {self.log_file}:\n{cause}" if cause else "")
        )

    def stop(self, timeout_s: float = 15.0) -> bool:
        record = self.record()
        stopped = record.stop(timeout_s=timeout_s) if record else False
        self._remember(None, None)
        return stopped

    def start_failure(self, errors_only: bool = False) -> str:
        """What this start logged, from its first error on: the cause, not only the traceback's tail.

        A failing server often prints the cause once (``Error: ...``) and then a long
        traceback of its own; the last lines alone would cut the cause off.
        """
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "" if errors_only else "(no log)"
        lines = text.splitlines()
        start = max((i for i, line in enumerate(lines) if line.startswith(START_MARKER)), default=-1) + 1
        lines = lines[start:]
        first = next((i for i, line in enumerate(lines) if CAUSE_LINE.search(line)), None)
        if first is None:
            return "" if errors_only else "\n".join(lines[-TAIL_LINES:]) or "(the app printed nothing)"
        shown = lines[first : first + CAUSE_LINES]
        rest = lines[first + CAUSE_LINES :]
        if rest:
            shown += [f"... ({len(rest)} more lines; the last:)", *rest[-TAIL_LINES // 3 :]]
        return "\n".join(shown)


def default_python() -> str:
    return sys.executable
