"""A steady-rate HTTP/1.1 load generator on raw asyncio streams, for loopback only.

Open loop: request *i* is due at ``start + i / rate`` whatever happened to earlier
ones, spread over a pool of keep-alive connections, so a slow or stalled switch shows
up as failures or latency instead of silently lowering the rate. Each result keeps
when it was sent and answered, its status, and the ``X-App-Color`` that served it, so
callers can count wrong-colour responses after a switch completed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Result:
    sent: float  # time.monotonic()
    done: float
    status: int  # 0 = no HTTP response (connection error, timeout)
    color: str
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 400


@dataclass
class LoadReport:
    results: list[Result] = field(default_factory=list)
    started: float = 0.0
    stopped: float = 0.0

    @property
    def sent(self) -> int:
        return len(self.results)

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if not r.ok]

    @property
    def achieved_rate(self) -> float:
        return self.sent / max(self.stopped - self.started, 1e-9)


class LoadGenerator:
    """Runs in a background thread: ``start()``, do things, ``stop()`` -> :class:`LoadReport`."""

    def __init__(self, url: str, rate: float, connections: int = 32, path: str = "/", timeout_s: float = 5.0) -> None:
        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"load generator targets loopback only, not {parts.hostname}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.path = path
        self.rate = rate
        self.connections = connections
        self.timeout_s = timeout_s
        self.report = LoadReport()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._request = f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUser-Agent: bluegreen-loadgen\r\n\r\n"

    def start(self) -> LoadGenerator:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="loadgen", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> LoadReport:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.timeout_s + 10)
        return self.report

    async def _run(self) -> None:
        self.report.started = time.monotonic()
        counter = iter(range(10**12))
        workers = [asyncio.create_task(self._worker(counter)) for _ in range(self.connections)]
        await asyncio.gather(*workers)
        self.report.stopped = time.monotonic()

    async def _worker(self, counter: object) -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        start = self.report.started
        while not self._stop.is_set():
            index = next(counter)  # type: ignore[call-overload]
            due = start + index / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._stop.is_set():
                break
            sent = time.monotonic()
            try:
                if writer is None or reader is None or reader.at_eof():
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(self.host, self.port), self.timeout_s
                    )
                writer.write(self._request.encode())
                status, color, keep_alive = await asyncio.wait_for(self._read_response(reader), self.timeout_s)
                self.report.results.append(Result(sent, time.monotonic(), status, color))
                if not keep_alive:
                    writer.close()
                    reader = writer = None
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                self.report.results.append(Result(sent, time.monotonic(), 0, "", type(exc).__name__))
                if writer is not None:
                    writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    @staticmethod
    async def _read_response(reader: asyncio.StreamReader) -> tuple[int, str, bool]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if length:
            await reader.readexactly(length)
        keep_alive = headers.get("connection", "").lower() != "close"
        return status, headers.get("x-app-color", ""), keep_alive


@dataclass(frozen=True)
class SwitchMark:
    """One switch as the caller timed it: command issued at ``begun``, returned at ``completed``."""

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


def analyze_switches(report: LoadReport, marks: list[SwitchMark]) -> SwitchAnalysis:
    """Failed requests, wrong-colour responses after each switch completed, and switch latency.

    A response is wrong when its request was *sent* after a switch completed (and
    before the next switch began) yet came from the other colour. Switch latency is
    command issued -> first response from the new colour to a request sent after it.
    """
    results = sorted(report.results, key=lambda r: r.sent)
    wrong = 0
    latencies = []
    route_latencies = []
    for index, mark in enumerate(marks):
        window_end = marks[index + 1].begun if index + 1 < len(marks) else float("inf")
        first_new = min(
            (r.done for r in results if r.sent >= mark.begun and r.color == mark.to_color and r.ok), default=None
        )
        if first_new is not None:
            latencies.append((first_new - mark.begun) * 1000)
        if mark.routed is not None:
            first_after_route = min(
                (r.done for r in results if r.sent >= mark.routed and r.color == mark.to_color and r.ok), default=None
            )
            if first_after_route is not None:
                route_latencies.append((first_after_route - mark.routed) * 1000)
        wrong += sum(1 for r in results if mark.completed < r.sent < window_end and r.ok and r.color != mark.to_color)
    return SwitchAnalysis(len(marks), len(results), len(report.failed), wrong, latencies, route_latencies)
