"""The record of one pipeline run: every step and decision with its evidence, and traffic per colour.

``--report F.json`` writes it; ``--timeline F.png`` draws it (:mod:`scripts.timeline`).
The last decision is also kept under ``.bluegreen/<stack>/last_decision.json`` so
``status`` can say what happened last and why.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from scripts.metrics import MetricsSource

LAST_DECISION = "last_decision.json"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "kind": self.kind, "message": self.message, "evidence": self.evidence}


@dataclass(frozen=True)
class TrafficPoint:
    """One colour's traffic over one short period, for the timeline."""

    at: datetime
    color: str
    seconds: float
    requests: int | None
    errors: int | None
    p99_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}


class RunRecord:
    """Collects events as they happen and prints each as a progress line."""

    def __init__(self, stack: str, command: str, console: Console | None = None) -> None:
        self.stack = stack
        self.command = command
        self.console = console or Console(stderr=True)
        self.started = utc_now()
        self.events: list[Event] = []
        self.traffic: list[TrafficPoint] = []
        self.outcome: str | None = None
        self.exit_code: int | None = None
        self.summary: dict[str, Any] = {}
        # Called with every event, quiet ones too (the live release view listens here).
        self.listeners: list[Callable[[Event], None]] = []
        self._lock = threading.Lock()

    def note(self, kind: str, message: str, quiet: bool = False, **evidence: Any) -> Event:
        event = Event(utc_now(), kind, message, evidence)
        with self._lock:
            self.events.append(event)
        for listener in list(self.listeners):
            listener(event)
        if not quiet:
            elapsed = (event.at - self.started).total_seconds()
            self.console.print(f"[dim]{elapsed:7.1f}s[/] [bold]{kind:<10}[/] {message}", highlight=False)
        return event

    def first(self, kind: str) -> Event | None:
        return next((e for e in self.events if e.kind == kind), None)

    def finish(self, outcome: str, exit_code: int, **summary: Any) -> None:
        self.outcome, self.exit_code = outcome, exit_code
        self.summary.update(summary)
        self.note("done", f"{outcome} (exit {exit_code})", **summary)

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "stack": self.stack,
                "command": self.command,
                "started": self.started.isoformat(),
                "outcome": self.outcome,
                "exit_code": self.exit_code,
                "summary": self.summary,
                "events": [e.to_dict() for e in self.events],
                "traffic": [p.to_dict() for p in self.traffic],
            }

    def write_json(self, path: Path | str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")

    def save_last_decision(self, state_dir: Path) -> None:
        decisions = [
            e for e in self.events if e.kind in ("switch", "rollback", "promote", "abort", "hold", "interrupted")
        ]
        if not decisions:
            return
        state_dir.mkdir(parents=True, exist_ok=True)
        last = decisions[-1].to_dict()
        last["command"], last["outcome"] = self.command, self.outcome
        (state_dir / LAST_DECISION).write_text(json.dumps(last, indent=2, default=str) + "\n")


def load_last_decision(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / LAST_DECISION
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class TrafficRecorder:
    """Samples both colours every ``period_s`` in the background, for the timeline."""

    def __init__(
        self,
        source: MetricsSource,
        record: RunRecord,
        period_s: float = 1.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.source = source
        self.record = record
        self.period_s = period_s
        self.clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="traffic-recorder")

    def __enter__(self) -> TrafficRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # One more period, so the chart shows where traffic went after the last decision.
        self._stop.wait(self.period_s * 1.5)
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        last = self.clock()
        while not self._stop.wait(self.period_s):
            now = self.clock()
            for color in ("blue", "green"):
                try:
                    sample = self.source.sample(color, last, now)
                except Exception as exc:  # a metrics hiccup must not stop a release; it is noted
                    self.record.note("metrics", f"traffic sample failed: {exc}", quiet=True)
                    continue
                # The sample's own window: a source may widen it (CloudWatch counts whole minutes).
                seconds = (sample.end - sample.start) / timedelta(seconds=1)
                point = TrafficPoint(now, color, seconds, *_counts(sample))
                with self.record._lock:
                    self.record.traffic.append(point)
            last = now


def _counts(sample: Any) -> tuple[int | None, int | None, float | None]:
    return sample.requests, sample.errors, sample.p99_ms
