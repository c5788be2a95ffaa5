"""One app process per colour, on its own port, started from ``app_command``.

A colour's process gets its version, colour, database URL and fault settings in the
environment and logs to ``logs/<colour>.log``. Stopping drains: HAProxy stops
sending new requests first (the caller's job), then SIGTERM lets gunicorn finish
what is in flight. A version change restarts in place without a gap: the new
process binds the same port with ``SO_REUSEPORT`` (the example app sets it), and the
old one is stopped only once the new one answers.

A process is recorded (``starting`` in the colour's entry) as soon as it is spawned,
before the wait for health, and carries ``BLUEGREEN_OWNER=<state dir>#app-<colour>``
in its environment: a command killed while a colour starts leaves nothing that the next
``ensure`` or ``stop`` cannot find (:meth:`AppProcess.leftovers`) and stop.
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
from components.local.processes import (
    OWNER_ENV,
    ProcessRecord,
    listens_on,
    owned_processes,
    owner_mark,
    session_of,
    stop_all,
)
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

    @property
    def owner(self) -> str:
        """The mark this colour's processes carry in their environment (``OWNER_ENV``)."""
        return owner_mark(self.state.root, f"app-{self.color}")

    def _save(self, **fields: object) -> None:
        data = self.state.load()
        apps = data.setdefault("apps", {})
        entry = {**(apps.get(self.color) or {}), **fields}
        apps[self.color] = {key: value for key, value in entry.items() if value is not None} or None
        self.state.save(data)

    def _remember(self, record: ProcessRecord | None, spec: AppSpec | None) -> None:
        if record is not None and spec is not None:
            self._save(process=record.to_json(), spec=spec.fingerprint(), starting=None)
        else:
            self._save(process=None, spec=None)

    def leftovers(self) -> list[ProcessRecord]:
        """This colour's processes that no serving record keeps: what a killed command left behind.

        Only called under the stack lock, so a ``starting`` record always belongs to a
        command that is no longer running.
        """
        serving = self.record()
        found = owned_processes(self.owner, keep=serving)
        starting = ProcessRecord.from_json(self._entry().get("starting"))
        if starting and starting != serving and starting.alive() and starting not in found:
            found.append(starting)
        return found

    def stop_leftovers(self, timeout_s: float = 15.0) -> list[int]:
        """Stop :meth:`leftovers` (launchers first, so a server does not respawn its workers); their pids."""
        found = self.leftovers()
        leaders = [r for r in found if session_of(r.pid) == r.pid]
        stopped = stop_all(leaders, timeout_s)
        stopped += stop_all(self.leftovers(), timeout_s)  # what outlived its launcher
        if "starting" in self._entry():
            self._save(starting=None)
        return sorted({r.pid for r in stopped})

    # -- lifecycle ---------------------------------------------------------------

    def ensure(self, spec: AppSpec, overlap: bool = False, timeout_s: float = 30.0) -> str:
        """Run ``spec``: nothing if it already runs, start if stopped, replace if changed.

        ``overlap`` (a colour that serves traffic) starts the new process next to the
        old one on the shared port; if the app cannot share its port, it falls back to
        stop-then-start.
        """
        self.stop_leftovers()
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
            self._save(starting=None)
            raise
        return new

    def _spawn(self, spec: AppSpec) -> ProcessRecord:
        env, argv = app_launch(spec.command, spec.environment, self.project_root)
        env[OWNER_ENV] = self.owner  # after the command's own assignments: the mark is not negotiable
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
        try:
            record = ProcessRecord.of(process.pid)
        except ProcessLookupError:
            record = ProcessRecord(process.pid, -1)  # gone already: wait_healthy reports its log
        # Recorded before the (long) wait for health: a command killed now leaves no unknown process.
        self._save(starting=record.to_json())
        return record

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
        """Stop the serving process and any leftover of this colour; True if anything was running."""
        record = self.record()
        stopped = record.stop(timeout_s=timeout_s) if record else False
        self._remember(None, None)
        return bool(self.stop_leftovers(timeout_s)) or stopped

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
