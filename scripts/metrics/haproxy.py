"""HAProxy metrics of the local target: the per-request log from HAProxy's ring, health from ``show stat``.

The local target exports ``metrics = {"source": "haproxy", "stats_socket": ...,
"log_ring": ..., "backends": {"blue": "be_blue", "green": "be_green", "split":
"be_split"}}``. ``show stat`` has cumulative counters and averages only, so a window's
request count, 5xx count and p99 come from HAProxy's one-line-per-request log
(:data:`components.local.haproxy.LOG_FORMAT`), which HAProxy keeps in an in-memory
ring and streams to this process over its admin socket (``show events <ring> -w``):
exact windows, percentiles, and no counter resets on reload. Health is HAProxy's own
check in ``show stat``.

Only the stack's owner can read that stream (the admin socket is mode 600 in a 700
directory) and only HAProxy writes to the ring, so no other local user can forge a
request line; nothing is read from any other channel. Each line carries the time
HAProxy logged it, which places it in its window. A reload starts a new worker with
a new ring: the listener asks every :data:`FOLLOW_S` which worker answers, reads the
new worker's ring from its first line, and keeps reading the old one for
:data:`GRACE_S` (requests it still finishes), then lets it go (a reader would keep
an old worker alive). A source made before HAProxy runs (a deploy's recorder on a
stack not up yet) has no data until it does, then every line since. One listener
per stack serves every source in the process; it keeps the last hour.

The log is a stream: :meth:`HaproxySource.wait_for_requests` returns as soon as new
requests of a colour arrive (batched over :data:`BATCH_S`), so the monitor judges each
batch instead of waiting for its next ``interval_s`` tick, and samples carry every
request's outcome for the decision rules (:mod:`scripts.decision`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from components.local.haproxy import LOG_PREFIX, HaproxyError, admin_command, check_passed, parse_log_line
from scripts.metrics import ColorHealth, MetricsSample, MetricsSourceError, require_fields

KEEP_S = 3600.0
BATCH_S = 0.05  # the monitor judges at most this often: new requests are batched this long
FOLLOW_S = 0.25  # how often the listener asks which worker serves (a reload starts a new one)
GRACE_S = 2.0  # how long an old worker's log is still read after a reload
_AT = (LOG_PREFIX + "at=").encode()
_listeners: dict[tuple[str, str], _LogListener] = {}
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


def _worker_pid(text: str) -> int | None:
    match = re.search(r"^Pid: (\d+)$", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def _logged_ms(line: bytes) -> int:
    """The ``at`` stamp of a log line, read without parsing the rest; -1 when it has none."""
    if not line.startswith(_AT):
        return -1
    digits = line[len(_AT) : line.find(b" ", len(_AT))]
    return int(digits) if digits.isdigit() else -1


class _RingStream:
    """One ``show events <ring> -w`` session: the lines one HAProxy worker logs, as it logs them.

    ``show info`` goes first on the same connection, so the stream knows its worker's pid.
    """

    def __init__(self, stats_socket: str, ring: str, new_only: bool) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.settimeout(5.0)
            self.sock.connect(stats_socket)
            self.sock.sendall(f"show info;show events {ring} -w{' -n' if new_only else ''}\n".encode())
            self.file = self.sock.makefile("rb")
            info = []
            for line in self.file:  # the info block ends with an empty line; the events follow
                if not line.strip():
                    break
                info.append(line.decode(errors="replace"))
            self.pid = _worker_pid("".join(info))
            if self.pid is None:
                raise OSError(f"HAProxy at {stats_socket} did not answer show info")
            self.sock.settimeout(None)
        except OSError:
            self.sock.close()
            raise

    def lines(self) -> Iterator[bytes]:
        yield from self.file

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class _LogListener:
    """Follows HAProxy's request log ring and keeps (logged at, status, Ta) per colour."""

    def __init__(self, stats_socket: str, ring: str) -> None:
        self.stats_socket = stats_socket
        self.ring = ring
        self.started = time.time()
        self.requests: dict[str, deque[tuple[float, int, int]]] = {"blue": deque(), "green": deque()}
        self.received = {"blue": 0, "green": 0}  # requests ever received, per colour
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self._started_ms = int(self.started * 1000)  # HAProxy stamps lines in whole ms
        self._streams: dict[int, _RingStream] = {}
        self._read: set[int] = set()  # workers whose ring was read from its first line
        self.problem: str | None = None  # why the log cannot be read (HAProxy runs a config without the ring)
        self.connected = False  # a stream was open at some point: windows since ``started`` are covered
        self._follow_once()  # at once where HAProxy runs; otherwise the follower keeps trying
        threading.Thread(target=self._follow, daemon=True, name=f"haproxy-log-{ring}").start()

    def _adopt(self, stream: _RingStream) -> None:
        """Read ``stream`` from now on; a worker it replaces is read a little longer, then let go."""
        with self.lock:
            if stream.pid in self._streams:
                stream.close()
                return
            replaced = list(self._streams.values())
            self._streams[stream.pid] = stream
            self._read.add(stream.pid)
        threading.Thread(target=self._receive, args=(stream,), daemon=True, name=f"haproxy-log-{stream.pid}").start()
        for old in replaced:
            timer = threading.Timer(GRACE_S, old.close)
            timer.daemon = True
            timer.start()

    def _follow(self) -> None:
        """Notice a new worker (a start, a reload, a restart) and read its log too."""
        while True:
            time.sleep(FOLLOW_S)
            self._follow_once()

    def _follow_once(self) -> None:
        try:
            pid = _worker_pid(admin_command(self.stats_socket, "show info", timeout_s=2.0))
            with self.lock:
                if pid is None or pid in self._streams:
                    return
                new_only = pid in self._read  # a worker read before: its old lines came already
            sinks = admin_command(self.stats_socket, "show events", timeout_s=2.0)
            if not re.search(rf"^\s*{re.escape(self.ring)}\s*:", sinks, re.MULTILINE):
                self.problem = (
                    f"HAProxy at {self.stats_socket} has no request log ring {self.ring!r}: it runs a config "
                    "from before the log moved off UDP; apply the stack again (python -m scripts up)"
                )
                return
            # A new worker's ring is read from its first line: lines since ``started`` are all there.
            self._adopt(_RingStream(self.stats_socket, self.ring, new_only))
        except (HaproxyError, OSError):
            return  # HAProxy is down or between workers: ask again
        self.problem = None
        self.connected = True

    def _receive(self, stream: _RingStream) -> None:
        try:
            for line in stream.lines():
                self._take(line)
        except (OSError, ValueError):
            pass  # closed: replaced by a newer worker, or HAProxy went away
        finally:
            with self.lock:
                if self._streams.get(stream.pid) is stream:
                    del self._streams[stream.pid]
            stream.close()

    def _take(self, line: bytes) -> None:
        if 0 <= _logged_ms(line) < self._started_ms:
            return  # logged before this listener started (most of a ring read from its start)
        entry = parse_log_line(line.rstrip(b"\n"))
        if entry is None or entry.color is None:
            return
        now = time.time()
        at = entry.at_ms / 1000 if entry.at_ms >= 0 else now
        with self.lock:
            kept = self.requests[entry.color]
            kept.append((at, entry.status, entry.ta_ms))
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
        """Requests logged in [t0, t1), oldest first (two workers' lines may interleave)."""
        with self.lock:
            return sorted(r for r in self.requests[color] if t0 <= r[0] < t1)


def _listener(stats_socket: str, ring: str) -> _LogListener:
    with _listeners_lock:
        if (stats_socket, ring) not in _listeners:
            _listeners[(stats_socket, ring)] = _LogListener(stats_socket, ring)
        return _listeners[(stats_socket, ring)]


class HaproxySource:
    def __init__(self, stats_socket: str, log_ring: str, backends: Mapping[str, str]) -> None:
        self.stats_socket = stats_socket
        self.backends = dict(backends)
        self.listener = _listener(stats_socket, log_ring)
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
        if self.listener.problem:
            raise MetricsSourceError(self.listener.problem)
        t0, t1 = start.timestamp(), end.timestamp()
        if t1 <= self.listener.started or not self.listener.connected:
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
    require_fields(metrics, "haproxy", ("stats_socket", "log_ring", "backends"))
    return HaproxySource(str(metrics["stats_socket"]), str(metrics["log_ring"]), metrics["backends"])
