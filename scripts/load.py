"""Steady HTTP load for the demo, the end-to-end tests and the benchmarks; loopback only.

Open loop: request *i* is due at ``start + i / rate`` whatever happened to earlier
ones, spread over a pool of keep-alive connections, so a slow backend or a stalled
switch shows up as latency or failures instead of silently lowering the rate. Every
answer is kept with the colour that served it (the header HAProxy adds per backend, or
the service's own ``X-App-Color``) and the version the service names (``X-App-Version``,
if it does): that is how callers tell when traffic moved, how many requests
failed on the way, and whether any came from the wrong colour after a switch. Write
mode creates orders and keeps their ids, so a test can prove the database kept every
row written during a release.

The engine speaks HTTP/1.1 over raw asyncio streams rather than through httpx: on the
2-core machines this runs on, httpx's AsyncClient managed ~140 req/s closed-loop where
raw streams managed ~14,000 (same in-process server, 64 connections), and the switch
benchmark needs 2,000 req/s next to HAProxy and both colours. The parsing is kept to
what the example service and HAProxy send: status line, headers, ``Content-Length``
bodies (or a body ended by ``Connection: close``) and keep-alive.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from components.local.haproxy import SERVED_BY_HEADER

# Both releases of the example service accept this body: 1.x reads total_cents, 2.x total.
ORDER_BODY = {"item": "load-test", "quantity": 1, "total": "12.50", "total_cents": 1250}
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
SERVED_BY = SERVED_BY_HEADER.lower()


@dataclass(frozen=True, slots=True)
class Answer:
    """One request: when it left (seconds since the run started), what came back."""

    sent_s: float
    latency_ms: float
    status: int  # 0 = no HTTP answer (connection error, timeout, malformed response)
    color: str | None
    version: str | None
    order_id: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def done_s(self) -> float:
        return self.sent_s + self.latency_ms / 1000


@dataclass
class LoadStats:
    """Answers plus the run's clock: ``started`` is the ``time.monotonic()`` that ``sent_s`` counts from."""

    answers: list[Answer] = field(default_factory=list)
    started: float = 0.0
    stopped: float = 0.0

    @property
    def sent(self) -> int:
        return len(self.answers)

    @property
    def failed(self) -> int:
        return sum(not a.ok for a in self.answers)

    def failures(self) -> list[Answer]:
        return [a for a in self.answers if not a.ok]

    @property
    def achieved_rate(self) -> float:
        return self.sent / max(self.stopped - self.started, 1e-9)

    def by_color(self) -> dict[str, int]:
        return dict(Counter(a.color or "none" for a in self.answers))

    def order_ids(self) -> list[int]:
        return [a.order_id for a in self.answers if a.order_id is not None]

    def between(self, start_s: float, end_s: float) -> LoadStats:
        return LoadStats([a for a in self.answers if start_s <= a.sent_s < end_s], self.started, self.stopped)

    def summary(self) -> dict[str, Any]:
        kinds = Counter(a.error or f"HTTP {a.status}" for a in self.answers if not a.ok)
        return {"sent": self.sent, "failed": self.failed, "by_color": self.by_color(), "failures": dict(kinds)}


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class SteadyLoad:
    """``with SteadyLoad(url, rate=50) as load: ...`` then ``load.stats``; or ``start()`` / ``stop()``.

    Runs an asyncio loop in a background thread. Every ``round(1 / write_ratio)``-th
    request is a ``POST /orders`` whose new id is kept; the rest are ``GET path``.
    """

    def __init__(
        self,
        base_url: str,
        rate: float = 50.0,
        connections: int = 8,
        write_ratio: float = 0.0,
        path: str = "/",
        timeout_s: float = 5.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS:
            raise ValueError(f"load targets http:// on loopback only ({', '.join(LOOPBACK_HOSTS)}), not {base_url!r}")
        if rate <= 0 or connections < 1 or not 0 <= write_ratio <= 1:
            raise ValueError(
                f"rate {rate:g}, connections {connections}, write_ratio {write_ratio:g}: "
                "rate must be > 0, connections >= 1, write_ratio within 0-1"
            )
        self.host = parts.hostname
        self.port = parts.port or 80
        self.rate = rate
        self.connections = connections
        self.timeout_s = timeout_s
        self.stats = LoadStats()
        self.started = 0.0
        self.started_wall = 0.0
        self._writes_every = round(1 / write_ratio) if write_ratio > 0 else 0
        authority = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        common = f"Host: {authority}\r\nUser-Agent: bluegreen-load\r\n"
        body = json.dumps(ORDER_BODY).encode()
        self._get = f"GET {path} HTTP/1.1\r\n{common}\r\n".encode()
        self._post = (
            f"POST /orders HTTP/1.1\r\n{common}Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def now_s(self) -> float:
        """Seconds since the load started, on the clock the answers use."""
        return time.monotonic() - self.started

    def start(self) -> SteadyLoad:
        self.started = self.stats.started = time.monotonic()
        self.started_wall = time.time()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="load", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> LoadStats:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.timeout_s + 10)
        self.stats.answers.sort(key=lambda a: a.sent_s)
        return self.stats

    def __enter__(self) -> SteadyLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _run(self) -> None:
        counter = iter(range(10**12))
        await asyncio.gather(*(self._connection(counter) for _ in range(self.connections)))
        self.stats.stopped = time.monotonic()

    async def _connection(self, counter: Any) -> None:
        """One keep-alive connection taking the next due request, reconnecting after errors."""
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        answers = self.stats.answers
        while not self._stop.is_set():
            index = next(counter)
            delay = self.started + index / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._stop.is_set():
                break
            write = bool(self._writes_every) and index % self._writes_every == 0
            sent = time.monotonic()
            try:
                if writer is None or reader is None or reader.at_eof():
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(self.host, self.port), self.timeout_s
                    )
                writer.write(self._post if write else self._get)
                response = await asyncio.wait_for(_read_response(reader), self.timeout_s)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                latency_ms = (time.monotonic() - sent) * 1000
                answers.append(Answer(sent - self.started, latency_ms, 0, None, None, error=_describe(exc)))
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            latency_ms = (time.monotonic() - sent) * 1000
            order_id = _order_id(response.body) if write and response.status == 201 else None
            headers = response.headers
            answers.append(
                Answer(
                    sent - self.started,
                    latency_ms,
                    response.status,
                    headers.get(SERVED_BY) or headers.get("x-app-color"),
                    headers.get("x-app-version"),
                    order_id,
                )
            )
            if not response.keep_alive:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()


async def _read_response(reader: asyncio.StreamReader) -> _Response:
    """One HTTP/1.1 response: status line, headers, then a Content-Length body or one ended by close."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
    protocol, _, rest = status_line.partition(" ")
    if not protocol.startswith("HTTP/1.") or not rest[:3].isdigit():
        raise ValueError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    status = int(rest[:3])
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise ValueError(f"malformed header line: {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if protocol == "HTTP/1.1" else connection == "keep-alive"
    if status < 200 or status in (204, 304):
        return _Response(status, headers, b"", keep_alive)
    if "transfer-encoding" in headers:
        raise ValueError(f"Transfer-Encoding {headers['transfer-encoding']!r} is not supported, only Content-Length")
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
        return _Response(status, headers, body, keep_alive)
    return _Response(status, headers, await reader.read(), False)  # body runs to the end of the connection


def _order_id(body: bytes) -> int | None:
    try:
        return int(json.loads(body)["id"])
    except (ValueError, KeyError, TypeError):
        return None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def rollback_reaction(stats: LoadStats, bad_color: str, after_s: float) -> dict[str, Any] | None:
    """From the first failed request on ``bad_color`` (after ``after_s``) to its last answer.

    That last answer is when 100% of traffic was back on the other colour. None when the
    bad colour never failed a request.
    """
    answers = [a for a in stats.answers if a.sent_s >= after_s]
    first_failure = next((a for a in answers if a.color == bad_color and not a.ok), None)
    if first_failure is None:
        return None
    last_bad = max((a.done_s for a in answers if a.color == bad_color), default=first_failure.done_s)
    window = [a for a in answers if first_failure.sent_s <= a.sent_s <= last_bad]
    return {
        "first_failure_s": round(first_failure.sent_s, 3),
        "all_traffic_back_s": round(last_bad, 3),
        "reaction_s": round(last_bad - first_failure.sent_s, 3),
        "requests_in_between": len(window),
        "failed_in_between": sum(not a.ok for a in window),
    }


@dataclass(frozen=True)
class SwitchMark:
    """One switch on the ``time.monotonic()`` clock: command issued at ``begun``, returned at ``completed``."""

    to_color: str
    begun: float
    completed: float
    routed: float | None = None  # when HAProxy took the route (after the pre-switch checks)


@dataclass
class SwitchAnalysis:
    switches: int
    sent: int
    failed: int
    wrong_color_after_switch: int
    latencies_ms: list[float]
    route_latencies_ms: list[float] = field(default_factory=list)

    def percentile(self, q: float, values: list[float] | None = None) -> float | None:
        ordered = sorted(self.latencies_ms if values is None else values)
        if not ordered:
            return None
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def analyze_switches(stats: LoadStats, marks: list[SwitchMark]) -> SwitchAnalysis:
    """Failed requests, wrong-colour responses after each switch completed, and switch latency.

    A response is wrong when its request was *sent* after a switch completed (and
    before the next switch began) yet came from the other colour. Switch latency is
    command issued -> first response from the new colour to a request sent after it.
    """
    answers = sorted(stats.answers, key=lambda a: a.sent_s)
    sent_at = [a.sent_s for a in answers]
    wrong = 0
    latencies = []
    route_latencies = []

    def first_answer_after(at: float, color: str) -> float | None:
        # Sorted by send time: once a request left after the best answer so far came back,
        # no later one can beat it, which keeps 200 switches over 100k+ answers quick.
        since = at - stats.started
        best = None
        for a in answers[bisect_left(sent_at, since) :]:
            if best is not None and a.sent_s > best:
                break
            if a.color == color and a.ok and (best is None or a.done_s < best):
                best = a.done_s
        return None if best is None else (best - since) * 1000

    for index, mark in enumerate(marks):
        window_end = marks[index + 1].begun - stats.started if index + 1 < len(marks) else float("inf")
        if (latency := first_answer_after(mark.begun, mark.to_color)) is not None:
            latencies.append(latency)
        if mark.routed is not None and (latency := first_answer_after(mark.routed, mark.to_color)) is not None:
            route_latencies.append(latency)
        window = answers[bisect_right(sent_at, mark.completed - stats.started) : bisect_left(sent_at, window_end)]
        wrong += sum(1 for a in window if a.ok and a.color != mark.to_color)
    return SwitchAnalysis(len(marks), len(answers), stats.failed, wrong, latencies, route_latencies)
