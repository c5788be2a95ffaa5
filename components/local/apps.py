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
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from components.local.processes import ProcessRecord, listens_on
from components.local.state import StateDir


class AppProcessError(RuntimeError):
    """A colour's process did not start or did not become healthy."""


@dataclass(frozen=True)
class AppSpec:
    """Everything that decides whether a running colour must be restarted."""

    color: str
    version: str
    port: int
    command: str
    environment: Mapping[str, str]

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
        new = self._spawn(spec)
        try:
            self.wait_healthy(spec, new, timeout_s)
        except AppProcessError:
            new.stop(timeout_s=5)
            if not current:
                raise
            current.stop(timeout_s=15)
            self._remember(None, None)
            current = None
            new = self._spawn(spec)
            try:
                self.wait_healthy(spec, new, timeout_s)
            except AppProcessError:
                new.stop(timeout_s=5)
                raise
        self._remember(new, spec)
        if current:
            current.stop(timeout_s=15)
            return "restarted"
        return "started"

    def _spawn(self, spec: AppSpec) -> ProcessRecord:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FAULT_", "PG"))}
        env.update(spec.environment)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.project_root), env.get("PYTHONPATH")]))
        self.state.logs_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {spec.color} {spec.version}\n".encode())
            log.flush()
            try:
                process = subprocess.Popen(
                    shlex.split(spec.command),
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
        """Healthy = the new process itself listens on the port and ``/healthz`` answers 200."""
        port = spec.port
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            if not record.alive():
                raise AppProcessError(
                    f"{self.color}: the app exited during start-up; last lines of {self.log_file}:\n{self.log_tail()}"
                )
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0)
                if response.status_code == 200 and listens_on(record.pid, port):
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.1)
        raise AppProcessError(f"{self.color}: not healthy on port {port} after {timeout_s:.0f}s ({last})")

    def stop(self, timeout_s: float = 15.0) -> bool:
        record = self.record()
        stopped = record.stop(timeout_s=timeout_s) if record else False
        self._remember(None, None)
        return stopped

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def default_python() -> str:
    return sys.executable
