"""HAProxy metrics of the local target: per-request log lines over UDP, health from ``show stat``.

The local target exports ``metrics = {"source": "haproxy", "stats_socket": ...,
"log_udp_port": ..., "backends": {"blue": "be_blue", "green": "be_green", "split":
"be_split"}}``. ``show stat`` has cumulative counters and averages only, so a window's
request count, 5xx count and p99 come from HAProxy's one-line-per-request log
(:data:`components.local.haproxy.LOG_FORMAT`) received on the UDP port and
time-stamped on arrival: exact windows, percentiles, and no counter resets on reload.
Health is HAProxy's own check in ``show stat``. One listener per port serves every
source in the process (a UDP port binds once); it keeps the last hour.

The log is a stream: :meth:`HaproxySource.wait_for_requests` returns as soon as new
requests of a colour arrive (batched over :data:`BATCH_S`), so the monitor judges each
batch instead of waiting for its next ``interval_s`` tick, and samples carry every
request's outcome for the decision rules (:mod:`scripts.decision`).
"""

from __future__ import annotations

import csv
import io
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from components.local.haproxy import HaproxyError, admin_command, check_passed, parse_log_line
from scripts.metrics import ColorHealth, MetricsSample, MetricsSourceError, require_fields

KEEP_S = 3600.0
BATCH_S = 0.05  # the monitor judges at most this often: new requests are batched this long
_listeners: dict[int, _LogListener] = {}
_listeners_lock = threading.Lock()


def show_stat(socket_path: str | Path) -> list[dict[str, str]]:
    try:
        text = admin_command(socket_path, "show stat")
    except HaproxyError as exc:
        raise MetricsSourceError(str(exc)) from None
    return list(csv.DictReader(io.StringIO(text.lstrip("# "))))


def percentile(values: list[int], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value at or below which ``fraction`` of values fall."""
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(fraction * len(ordered)) - 1)])


class _LogListener:
    """Receives log datagrams in the background and keeps (arrival time, status, Ta) per colour."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        try:
            self.sock.bind(("127.0.0.1", port))
        except OSError as exc:
            self.sock.close()
            raise MetricsSourceError(
                f"cannot receive HAProxy request logs on UDP 127.0.0.1:{port} ({exc.strerror}); "
                "is another pipeline command watching this stack?"
            ) from None
        self.sock.settimeout(0.2)
        self.started = time.time()
        self.requests: dict[str, deque[tuple[float, int, int]]] = {"blue": deque(), "green": deque()}
        self.received = {"blue": 0, "green": 0}  # requests ever received, per colour
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        threading.Thread(target=self._receive, daemon=True, name=f"haproxy-log-{port}").start()

    def _receive(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            entry = parse_log_line(data)
            if entry is None or entry.color is None:
                continue
            now = time.time()
            with self.lock:
                kept = self.requests[entry.color]
                kept.append((now, entry.status, entry.ta_ms))
                while kept and kept[0][0] < now - KEEP_S:
                    kept.popleft()
                self.received[entry.color] += 1
                self.arrived.notify_all()

    def wait_for_more(self, color: str, seen: int, timeout_s: float) -> int:
        """Block until more than ``seen`` requests of ``color`` were received, or ``timeout_s``; the count."""
        with self.arrived:
            self.arrived.wait_for(lambda: self.received[color] > seen, timeout=timeout_s)
            return self.received[color]

    def window(self, color: str, t0: float, t1: float) -> list[tuple[float, int, int]]:
        with self.lock:
            return [r for r in self.requests[color] if t0 <= r[0] < t1]


def _listener(port: int) -> _LogListener:
    with _listeners_lock:
        if port not in _listeners:
            _listeners[port] = _LogListener(port)
        return _listeners[port]


class HaproxySource:
    def __init__(self, stats_socket: str, log_port: int, backends: Mapping[str, str]) -> None:
        self.stats_socket = stats_socket
        self.backends = dict(backends)
        self.listener = _listener(log_port)
        self._seen = {"blue": 0, "green": 0}
        self._judged_at = 0.0

    def wait_for_requests(self, color: str, timeout_s: float) -> bool:
        """Return once new requests of ``color`` arrived (batched over BATCH_S), or after ``timeout_s``.

        True when there are new requests since the last call.
        """
        pause = BATCH_S - (time.monotonic() - self._judged_at)
        if pause > 0:
            time.sleep(pause)
        seen = self._seen[color]
        self._seen[color] = self.listener.wait_for_more(color, seen, max(0.0, timeout_s - BATCH_S))
        self._judged_at = time.monotonic()
        return self._seen[color] > seen

    def sample(self, color: str, start: datetime, end: datetime) -> MetricsSample:
        """Requests that finished in the window; None for a window this process was not listening to."""
        if color not in ("blue", "green"):
            raise MetricsSourceError(f"colour {color!r} is not blue or green")
        t0, t1 = start.timestamp(), end.timestamp()
        if t1 <= self.listener.started:
            return MetricsSample(color, start, end, None, None, None)
        answered = self.listener.window(color, t0, t1)
        # status -1: HAProxy gave up before any response (counted as a failed request).
        errors = sum(1 for _at, status, _ta in answered if status >= 500 or status < 0)
        timings = [ta for _at, _status, ta in answered if ta >= 0]
        p99 = percentile(timings, 0.99) if timings else None
        outcomes = tuple((status >= 500 or status < 0, ta) for _at, status, ta in answered)
        return MetricsSample(color, start, end, len(answered), errors, p99, outcomes)

    def health(self, color: str) -> ColorHealth:
        """The colour's server as HAProxy's own health check sees it."""
        backend = self.backends.get(color)
        for row in show_stat(self.stats_socket):
            if row["pxname"] == backend and row["svname"] not in ("FRONTEND", "BACKEND"):
                up = check_passed(row["status"], row.get("check_status", ""))
                detail = f"{color}: HAProxy check {row['status']} ({row.get('check_status') or 'no check yet'})"
                return ColorHealth(color, int(up), 1, detail)
        return ColorHealth(color, 0, 0, f"{color}: backend {backend} has no server in HAProxy's stats")


def from_outputs(metrics: Mapping[str, Any], **_: Any) -> HaproxySource:
    require_fields(metrics, "haproxy", ("stats_socket", "log_udp_port", "backends"))
    return HaproxySource(str(metrics["stats_socket"]), int(metrics["log_udp_port"]), metrics["backends"])
