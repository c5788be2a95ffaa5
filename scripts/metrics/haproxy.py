"""HAProxy metrics of the local target: ``show stat`` counters plus per-request timings over UDP.

The local target exports ``metrics = {"source": "haproxy", "stats_socket": ...,
"log_udp_port": ..., "backends": {"blue": "be_blue", "green": "be_green", "split":
"be_split"}}``. Request and 5xx counts come from the admin socket's counters (exact even
if a log datagram is lost), snapshotted every ``poll_s`` so any window can be read as
a difference; a counter that went down was reset by a reload and counts from zero.
``show stat`` has only averages, so the p99 comes from HAProxy's per-request log lines
(:data:`components.local.haproxy.LOG_FORMAT`), which this source receives on the UDP
port. One listener per port serves every source in the process (a port binds once).
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import io
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from components.local.haproxy import parse_log_line
from scripts.metrics import ColorHealth, MetricsSample, MetricsSourceError

KEEP_S = 3600.0
_listeners: dict[int, _Listener] = {}
_listeners_lock = threading.Lock()


def admin_command(socket_path: str | Path, line: str, timeout_s: float = 5.0) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(str(socket_path))
        except OSError as exc:
            raise MetricsSourceError(f"HAProxy admin socket {socket_path} unreachable: {exc}") from exc
        sock.sendall(line.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def show_stat(socket_path: str | Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(admin_command(socket_path, "show stat").lstrip("# "))))


def percentile(values: list[int], fraction: float) -> float:
    """Nearest-rank percentile (the value below which ``fraction`` of the requests fall)."""
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(fraction * len(ordered)) - 1)])


@dataclass(frozen=True)
class Counters:
    at: float
    requests: dict[str, int]
    errors: dict[str, int]


class _Listener:
    """Receives log datagrams and snapshots counters in the background, both time-stamped."""

    def __init__(self, port: int, stats_socket: str, backends: Mapping[str, str], poll_s: float) -> None:
        self.stats_socket = stats_socket
        self.backends = dict(backends)
        self.poll_s = poll_s
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        try:
            self.sock.bind(("127.0.0.1", port))
        except OSError as exc:
            self.sock.close()
            raise MetricsSourceError(
                f"cannot receive HAProxy request logs on UDP 127.0.0.1:{port} ({exc.strerror}); "
                "is another monitor running for this stack?"
            ) from None
        self.sock.settimeout(0.2)
        self.started = time.time()
        self.timings: dict[str, deque[tuple[float, int, int]]] = {c: deque() for c in ("blue", "green")}
        self.snapshots: deque[Counters] = deque()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.snapshot()
        threading.Thread(target=self._receive, daemon=True, name=f"haproxy-log-{port}").start()
        threading.Thread(target=self._poll, daemon=True, name=f"haproxy-stat-{port}").start()

    def _receive(self) -> None:
        while not self.stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            entry = parse_log_line(data)
            if entry is None or entry.color is None:
                continue
            with self.lock:
                timings = self.timings[entry.color]
                timings.append((time.time(), entry.status, entry.ta_ms))
                while timings and timings[0][0] < time.time() - KEEP_S:
                    timings.popleft()

    def _poll(self) -> None:
        while not self.stop.wait(self.poll_s):
            with contextlib.suppress(MetricsSourceError, OSError):
                self.snapshot()

    def snapshot(self) -> Counters:
        rows = show_stat(self.stats_socket)
        requests = dict.fromkeys(("blue", "green"), 0)
        errors = dict.fromkeys(("blue", "green"), 0)
        for row in rows:
            for color in ("blue", "green"):
                own = row["pxname"] == self.backends[color] and row["svname"] == "BACKEND"
                split = row["pxname"] == self.backends.get("split") and row["svname"] == color
                if own or split:
                    requests[color] += int(row.get("req_tot") or 0)
                    errors[color] += int(row.get("hrsp_5xx") or 0)
        counters = Counters(time.time(), requests, errors)
        with self.lock:
            self.snapshots.append(counters)
            while self.snapshots and self.snapshots[0].at < counters.at - KEEP_S:
                self.snapshots.popleft()
        return counters

    def counters_at(self, at: float) -> Counters | None:
        """The last snapshot taken at or before ``at``."""
        with self.lock:
            times = [s.at for s in self.snapshots]
            index = bisect.bisect_right(times, at) - 1
            return self.snapshots[index] if index >= 0 else None


def _listener(port: int, stats_socket: str, backends: Mapping[str, str], poll_s: float) -> _Listener:
    with _listeners_lock:
        listener = _listeners.get(port)
        if listener is None or listener.stats_socket != stats_socket:
            if listener is not None:
                listener.stop.set()
                listener.sock.close()
            listener = _listeners[port] = _Listener(port, stats_socket, backends, poll_s)
        return listener


def _delta(before: int, after: int) -> int:
    return after - before if after >= before else after


class HaproxySource:
    def __init__(self, stats_socket: str, log_port: int, backends: Mapping[str, str], poll_s: float = 0.5) -> None:
        self.stats_socket = stats_socket
        self.backends = dict(backends)
        self.listener = _listener(log_port, stats_socket, backends, poll_s)

    def sample(self, color: str, start: datetime, end: datetime) -> MetricsSample:
        if color not in ("blue", "green"):
            raise MetricsSourceError(f"colour {color!r} is not blue or green")
        t0, t1 = start.timestamp(), end.timestamp()
        before = self.listener.counters_at(t0) or self.listener.counters_at(self.listener.started)
        # A window that ends now is counted up to a fresh snapshot, not the last poll.
        after = self.listener.snapshot() if t1 >= time.time() - self.listener.poll_s else self.listener.counters_at(t1)
        if after is None or before is None or t1 < self.listener.started:
            return MetricsSample(color, start, end, None, None, None)
        requests = _delta(before.requests[color], after.requests[color])
        errors = _delta(before.errors[color], after.errors[color])
        with self.listener.lock:
            times = [ta for at, _status, ta in self.listener.timings[color] if t0 <= at < t1 and ta >= 0]
        p99 = percentile(times, 0.99) if times else None
        return MetricsSample(color, start, end, requests, errors, p99)

    def health(self, color: str) -> ColorHealth:
        """The colour's server as HAProxy's own health check sees it."""
        backend = self.backends.get(color)
        for row in show_stat(self.stats_socket):
            if row["pxname"] == backend and row["svname"] not in ("FRONTEND", "BACKEND"):
                up = row["status"] == "UP" and row.get("check_status", "").startswith("L7OK")
                detail = f"{color}: HAProxy check {row['status']} ({row.get('check_status') or 'no check yet'})"
                return ColorHealth(color, int(up), 1, detail)
        return ColorHealth(color, 0, 0, f"{color}: backend {backend} has no server in HAProxy's stats")


def from_outputs(metrics: Mapping[str, Any], poll_s: float = 0.5, **_: Any) -> HaproxySource:
    missing = [key for key in ("stats_socket", "log_udp_port", "backends") if not metrics.get(key)]
    if missing:
        raise MetricsSourceError(f"stack output metrics (haproxy) lacks {', '.join(missing)}")
    return HaproxySource(str(metrics["stats_socket"]), int(metrics["log_udp_port"]), metrics["backends"], poll_s)
