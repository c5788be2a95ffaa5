"""Processes the local target starts, remembered by pid *and* start time.

``down`` must stop what it started and nothing else: a pid alone can be reused by an
unrelated process after a reboot, so every record also keeps the kernel's start time
of that pid (``/proc/<pid>/stat`` field 22) and is trusted only while both match.

A command killed between starting a process and recording it would leave an orphan no
record names, so every process the target starts also carries :data:`OWNER_ENV` in its
environment (``<state dir>#<part>``): :func:`owned_processes` finds a part's processes
by that mark, whatever the state file says, and nothing without the exact mark.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.local.sockets import listening_on, process_tree

# Set in the environment of every process the local target starts: "<state dir>#<part>".
OWNER_ENV = "BLUEGREEN_OWNER"


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` from field 3 (state) on; None when the process is gone.

    The command name (field 2) may contain spaces; the fields after the last ')' are fixed.
    """
    try:
        stat = open(f"/proc/{pid}/stat").read()  # noqa: SIM115 - tiny procfs read
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def session_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[3]) if fields else None


def parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def environ_of(pid: int) -> dict[str, str]:
    """A process's environment as it was started (empty if unreadable: another user's, or gone)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def cmdline_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def owner_mark(state_root: Path | str, part: str) -> str:
    """The :data:`OWNER_ENV` value of one part (``app-blue``, ``haproxy``) of one stack."""
    return f"{Path(state_root).resolve()}#{part}"


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def start_time_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def is_zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is None or fields[0] in "ZX"


@dataclass(frozen=True)
class ProcessRecord:
    pid: int
    started: int

    @classmethod
    def of(cls, pid: int) -> ProcessRecord:
        started = start_time_of(pid)
        if started is None:
            raise ProcessLookupError(f"process {pid} exited right after it started")
        return cls(pid, started)

    @classmethod
    def from_json(cls, raw: Any) -> ProcessRecord | None:
        if isinstance(raw, dict) and isinstance(raw.get("pid"), int) and isinstance(raw.get("started"), int):
            return cls(raw["pid"], raw["started"])
        return None

    def to_json(self) -> dict[str, int]:
        return {"pid": self.pid, "started": self.started}

    def alive(self) -> bool:
        return start_time_of(self.pid) == self.started and not is_zombie(self.pid)

    def reap(self) -> None:
        """Collect our own exited child so it does not linger as a zombie."""
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(self.pid, os.WNOHANG)

    def stop(self, timeout_s: float = 15.0, sig: signal.Signals = signal.SIGTERM) -> bool:
        """Ask to stop, wait, then SIGKILL; True if the process is gone."""
        if not self.alive():
            return True
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)
        if self.wait_gone(timeout_s):
            return True
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        return self.wait_gone(5.0)

    def wait_gone(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.reap()
            if not self.alive():
                return True
            time.sleep(0.05)
        return not self.alive()


def _descends_from(pid: int, ancestor: int) -> bool:
    seen = 0
    while pid > 1 and seen < 64:
        if pid == ancestor:
            return True
        pid = parent_of(pid) or 0
        seen += 1
    return False


def owned_processes(mark: str, keep: ProcessRecord | None = None) -> list[ProcessRecord]:
    """Live processes whose environment carries ``OWNER_ENV=mark``, except ``keep``'s own tree.

    ``keep`` (the recorded process of that part) and what belongs to it (its session,
    since the target starts each part in a new one, or its descendants) are not
    leftovers; everything else with the mark is.
    """
    found = []
    for pid in _pids():
        if pid == os.getpid() or environ_of(pid).get(OWNER_ENV) != mark:
            continue
        if keep is not None and keep.alive() and (session_of(pid) == keep.pid or _descends_from(pid, keep.pid)):
            continue
        with contextlib.suppress(ProcessLookupError):
            record = ProcessRecord.of(pid)
            if record.alive():
                found.append(record)
    return found


def stop_all(records: Iterable[ProcessRecord], timeout_s: float = 15.0) -> list[ProcessRecord]:
    """SIGTERM every process at once, SIGKILL what is left after ``timeout_s``; returns those that were alive."""
    alive = [r for r in records if r.alive()]
    for record in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for record in alive:
        if not record.wait_gone(max(deadline - time.monotonic(), 0.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGKILL)
            record.wait_gone(5.0)
    return alive


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port the kernel says is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    """True when something listens on 127.0.0.1:port (or the port cannot be bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def wait_port_free(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while port_in_use(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def listens_on(pid: int, port: int) -> bool:
    """Whether ``pid`` or a process below it holds a listening TCP socket on ``port``."""
    return listening_on(process_tree(pid), port)
