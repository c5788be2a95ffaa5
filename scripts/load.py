"""Steady HTTP load for the demo, the end-to-end tests and the benchmarks.

Requests leave at a fixed rate (one ticker, a pool of keep-alive workers), so a slow
backend shows up as latency, not as fewer requests. Every answer is kept with the colour
and version the service named (``X-App-Color`` / ``X-App-Version``), which is how the
demo and the benchmark tell when traffic moved and how many requests failed on the way.
Write mode creates orders and keeps their ids, so a test can prove the database kept
every row written during a release.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

# Both releases of the example service accept this body: 1.x reads total_cents, 2.x total.
ORDER_BODY = {"item": "load-test", "quantity": 1, "total": "12.50", "total_cents": 1250}


@dataclass(frozen=True)
class Answer:
    """One request: when it left (seconds since the run started), what came back."""

    sent_s: float
    latency_ms: float
    status: int | None
    color: str | None
    version: str | None
    order_id: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def done_s(self) -> float:
        return self.sent_s + self.latency_ms / 1000


@dataclass
class LoadStats:
    answers: list[Answer] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return len(self.answers)

    @property
    def failed(self) -> int:
        return sum(not a.ok for a in self.answers)

    def by_color(self) -> dict[str, int]:
        return dict(Counter(a.color or "none" for a in self.answers))

    def order_ids(self) -> list[int]:
        return [a.order_id for a in self.answers if a.order_id is not None]

    def between(self, start_s: float, end_s: float) -> LoadStats:
        return LoadStats([a for a in self.answers if start_s <= a.sent_s < end_s])

    def summary(self) -> dict[str, Any]:
        return {"sent": self.sent, "failed": self.failed, "by_color": self.by_color()}


class SteadyLoad:
    """``with SteadyLoad(url, rate=50) as load: ...`` then ``load.stats``."""

    def __init__(self, base_url: str, rate: float = 50.0, workers: int = 8, write_ratio: float = 0.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.rate = rate
        self.workers = workers
        self.write_ratio = write_ratio
        self.stats = LoadStats()
        self._tickets: queue.Queue[tuple[float, bool] | None] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.started = 0.0
        self.started_wall = 0.0

    def now_s(self) -> float:
        """Seconds since the load started, on the clock the answers use."""
        return time.monotonic() - self.started

    def start(self) -> SteadyLoad:
        self.started = time.monotonic()
        self.started_wall = time.time()
        self._threads = [threading.Thread(target=self._ticker, daemon=True, name="load-ticker")]
        self._threads += [
            threading.Thread(target=self._worker, daemon=True, name=f"load-{i}") for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> LoadStats:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        self.stats.answers.sort(key=lambda a: a.sent_s)
        return self.stats

    def __enter__(self) -> SteadyLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _ticker(self) -> None:
        period = 1.0 / self.rate
        writes_every = round(1 / self.write_ratio) if self.write_ratio > 0 else 0
        for n in itertools.count():
            due = self.started + n * period
            delay = due - time.monotonic()
            if self._stop.wait(max(0.0, delay)):
                break
            self._tickets.put((due - self.started, bool(writes_every) and n % writes_every == 0))
        for _ in range(self.workers):
            self._tickets.put(None)

    def _worker(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while (ticket := self._tickets.get()) is not None:
                answer = self._send(client, *ticket)
                with self._lock:
                    self.stats.answers.append(answer)

    def _send(self, client: httpx.Client, sent_s: float, write: bool) -> Answer:
        started = time.perf_counter()
        try:
            if write:
                response = client.post(self.base_url + "/orders", json=ORDER_BODY)
            else:
                response = client.get(self.base_url + "/")
        except httpx.HTTPError as exc:
            latency = (time.perf_counter() - started) * 1000
            return Answer(sent_s, latency, None, None, None, error=f"{type(exc).__name__}: {exc}")
        latency = (time.perf_counter() - started) * 1000
        order_id = None
        if write and response.status_code == 201:
            try:
                order_id = int(response.json()["id"])
            except (ValueError, KeyError, TypeError):
                order_id = None
        return Answer(
            sent_s,
            latency,
            response.status_code,
            response.headers.get("X-App-Color"),
            response.headers.get("X-App-Version"),
            order_id,
        )


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
