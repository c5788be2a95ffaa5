"""One deploy per stack at a time: an exclusive, non-blocking lock under ``.bluegreen/<stack>/``.

``flock`` is released by the kernel when the holder exits, even on a crash, so a stale
file never blocks a stack. The file says who holds it, for the message the second
command prints.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from types import TracebackType

LOCK_NAME = "deploy.lock"


class StackLockedError(RuntimeError):
    """Another pipeline command is changing this stack right now."""


class StackLock:
    """``with StackLock(root, stack, "deploy --version 2.0.0"):`` or fail fast."""

    def __init__(self, project_dir: Path | str, stack: str, command: str) -> None:
        self.path = Path(project_dir).resolve() / ".bluegreen" / stack / LOCK_NAME
        self.stack = stack
        self.command = command
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise StackLockedError(
                f"stack {self.stack!r} is locked by another run ({holder}); only one deploy, switch or rollback "
                f"may run on a stack at a time: wait for it to finish (lock file {self.path})"
            ) from None
        os.ftruncate(fd, 0)
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        info = {"pid": os.getpid(), "command": self.command, "since": since}
        os.write(fd, json.dumps(info).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StackLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def abandoned(project_dir: Path | str, stack: str) -> dict[str, object] | None:
    """Who held the lock and died without releasing it (SIGKILL, a crash, a lost machine), if anyone.

    A clean exit empties the file; a killed holder leaves its line behind while the
    kernel frees the lock. The next command that takes the lock clears it.
    """
    path = Path(project_dir).resolve() / ".bluegreen" / stack / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None  # held right now: running, not abandoned
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"null")
    except ValueError:
        info = None
    finally:
        os.close(fd)
    return info if isinstance(info, dict) and info else None


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return "holder unknown"
    if not info:
        return "holder unknown"
    return f"pid {info.get('pid')} running {info.get('command')!r} since {info.get('since')}"
