"""The stack's state directory ``.bluegreen/<stack>/``: ports, secrets and pids that must survive restarts.

``state.json`` (mode 600) holds what the machine chose once and must keep: the
PostgreSQL port, generated passwords, the pid + start time of each process the
target started, and the ports HAProxy took. An exclusive ``flock`` on ``lock`` keeps two
commands from changing one stack at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from components.local.processes import free_port

STATE_DIRNAME = ".bluegreen"
# AF_UNIX paths are limited to 108 bytes; HAProxy and PostgreSQL sockets live under the state dir.
MAX_SOCKET_PATH = 100


class StateError(RuntimeError):
    """The state directory is unusable (permissions, a corrupt file, a path too long)."""


class StateBusyError(RuntimeError):
    """Another command holds the stack's lock (only raised by ``locked(blocking=False)``)."""


class StateDir:
    def __init__(self, project_root: Path | str, stack: str) -> None:
        self.root = Path(project_root).resolve() / STATE_DIRNAME / stack
        self.file = self.root / "state.json"
        self._lock_depth = 0
        self.reserved_ports: set[int] = set()

    # -- layout ----------------------------------------------------------------

    @property
    def postgres_dir(self) -> Path:
        return self.root / "postgres"

    @property
    def haproxy_dir(self) -> Path:
        return self.root / "haproxy"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    def ensure(self) -> None:
        for path in (self.root, self.haproxy_dir, self.logs_dir):
            path.mkdir(parents=True, exist_ok=True)
        # 711: another user (postgres, when we run as root) may traverse but not list.
        self.root.chmod(0o711)
        self.root.parent.chmod(0o711)
        self.haproxy_dir.chmod(0o700)
        socket_path = self.haproxy_dir / "admin.sock"
        if len(str(socket_path)) > MAX_SOCKET_PATH:
            raise StateError(
                f"state directory {self.root} is too deep: socket path {socket_path} exceeds {MAX_SOCKET_PATH} "
                "bytes (a UNIX socket limit); use a shorter project path or stack name"
            )

    @contextlib.contextmanager
    def locked(self, blocking: bool = True) -> Iterator[None]:
        """One command per stack at a time; a second one waits. Re-entrant within this object.

        ``blocking=False`` raises :class:`StateBusyError` instead of waiting: the supervisor
        retries shortly rather than queueing behind an ``up`` or a ``deploy``.
        """
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        self.ensure()
        with open(self.root / "lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                raise StateBusyError(f"{self.root / 'lock'} is held by another command") from None
            self._lock_depth = 1
            try:
                yield
            finally:
                self._lock_depth = 0
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- values ----------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        if not self.file.exists():
            return {}
        try:
            data = json.loads(self.file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StateError(f"{self.file} is unreadable ({exc}); remove it to start this stack afresh") from exc
        if not isinstance(data, dict):
            raise StateError(f"{self.file} is not a JSON object; remove it to start this stack afresh")
        return data

    def save(self, data: dict[str, Any]) -> None:
        self.ensure()
        tmp = self.file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
        tmp.replace(self.file)

    def update(self, **values: Any) -> dict[str, Any]:
        data = self.load()
        data.update(values)
        self.save(data)
        return data

    def remembered(self, key: str, make: Any) -> Any:
        """The value kept under ``key``, chosen by ``make()`` the first time."""
        data = self.load()
        if key not in data:
            data[key] = make()
            self.save(data)
        return data[key]

    def port(self, key: str, kind: Any = None) -> int:
        """A port kept under ``key``, first picked free and outside ``reserved_ports``."""
        import socket

        def pick() -> int:
            while (port := free_port(kind or socket.SOCK_STREAM)) in self.reserved_ports:
                pass
            return port

        return int(self.remembered(key, pick))

    def secret(self, key: str) -> str:
        return str(self.remembered(key, lambda: secrets.token_urlsafe(24)))
