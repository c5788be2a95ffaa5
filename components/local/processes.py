"""Processes the local target starts, remembered by pid *and* start time.

``down`` must stop what it started and nothing else: a pid alone can be reused by an
unrelated process after a reboot, so every record also keeps the kernel's start time
of that pid (``/proc/<pid>/stat`` field 22) and is trusted only while both match.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from dataclasses import dataclass
from typing import Any


def start_time_of(pid: int) -> int | None:
    try:
        stat = open(f"/proc/{pid}/stat").read()  # noqa: SIM115 - tiny procfs read
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields after the last ')' are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def is_zombie(pid: int) -> bool:
    try:
        stat = open(f"/proc/{pid}/stat").read()  # noqa: SIM115 - tiny procfs read
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"


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


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                out.extend(int(c) for c in handle.read().split())
    except OSError:
        pass
    return out


def listens_on(pid: int, port: int) -> bool:
    """Whether ``pid`` or one of its children holds a listening TCP socket on ``port``."""
    inodes: set[str] = set()
    try:
        with open("/proc/net/tcp") as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    except OSError:
        return False
    for candidate in [pid, *_children(pid)]:
        try:
            for fd in os.listdir(f"/proc/{candidate}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{candidate}/fd/{fd}")
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        return True
        except OSError:
            continue
    return False
