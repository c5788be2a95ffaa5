"""The live release panel: which phase a release is in, how each colour does against the thresholds.

``deploy`` and ``monitor`` on a terminal show it under their log lines (rich's ``Live``),
redrawn four times a second from the run's own events, so it says nothing the record
does not: the phase with its elapsed and remaining time, per colour its version,
traffic share, request rate, error rate and p99 against ``max_error_rate`` and
``max_p99_ms``, and the last decision with its reason. Without a terminal (CI, a pipe)
there is no panel; the same events print as plain lines, as they always did.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from components.config import COLORS, StackConfig
from scripts.record import Event, RunRecord, utc_now

PHASES = ("migrations", "idle apply", "healthy", "smoke", "switch", "verify", "bake", "guard", "scale-down")
DECISIONS = ("switch", "rollback", "promote", "abort", "hold", "interrupted", "done")


class PhaseTracker:
    """Which phase of a release an event starts (None: it starts none), in the order events come."""

    def __init__(self) -> None:
        self.promoted = False

    def phase_of(self, event: Event) -> str | None:
        kind, changes = event.kind, event.evidence.get("changes") or {}
        if kind == "promote":
            self.promoted = True
        if kind in ("start", "migrations", "migrate", "rehearsal"):
            return "migrations"
        if kind == "apply" and changes:
            if "live_color" in changes:
                return "switch"
            if any(k.endswith("_version") for k in changes):
                return "idle apply"
            if changes.get("warm_idle") is False and self.promoted:
                return "scale-down"
        return {
            "healthy": "healthy",
            "unhealthy": "healthy",
            "smoke": "smoke",
            "switch": "verify",
            "check": "guard" if self.promoted else "bake",
            "promote": "guard",
            "guard": "guard",
            "rollback": "rollback",
            "done": "done",
        }.get(kind)


def started_at(event: Event) -> datetime:
    """When what an event reports began: an apply is noted when it ends, after ``seconds``."""
    took = event.evidence.get("seconds") if event.kind == "apply" else None
    if isinstance(took, int | float) and took > 0:
        return event.at - timedelta(seconds=float(took))
    return event.at


def phase_spans(events: list[Event]) -> list[tuple[str, datetime, datetime]]:
    """(phase, from, to) for a finished run's events, for the timeline's shading."""
    tracker, spans = PhaseTracker(), []
    current: tuple[str, datetime] | None = None
    for event in events:
        phase = tracker.phase_of(event)
        if phase is None or (current and current[0] == phase):
            continue
        began = started_at(event)
        if current:
            spans.append((current[0], current[1], began))
        current = (phase, began)
    if current and events:
        spans.append((current[0], current[1], events[-1].at))
    return [span for span in spans if span[0] != "done"]


class ReleaseView:
    """What the panel shows, kept up to date from the record's events (any thread)."""

    def __init__(self, config: StackConfig, title: str) -> None:
        self.config = config
        self.title = title
        self.phase = "start"
        self.phase_since = utc_now()
        self.switched_at: datetime | None = None
        self.phases = PhaseTracker()
        self.share = {c: (100 if c == config.live_color else 0) for c in COLORS}
        self.versions = {c: config.version_of(c) for c in COLORS}
        self.checks: dict[str, dict[str, Any]] = {}
        self.decision: Event | None = None
        self._lock = threading.Lock()

    def observe(self, event: Event) -> None:
        with self._lock:
            self._observe(event)

    def _observe(self, event: Event) -> None:
        evidence = event.evidence
        phase = self.phases.phase_of(event)
        if phase and phase != self.phase:
            self.phase, self.phase_since = phase, event.at
        changes = evidence.get("changes") or {}
        for color in COLORS:
            if f"{color}_version" in changes:
                self.versions[color] = str(changes[f"{color}_version"])
        if event.kind == "switch" and "to" in evidence:
            to, percent = evidence["to"], int(evidence.get("percent", 100))
            self.share = {c: (percent if c == to else 100 - percent) for c in COLORS}
            if percent == 100:
                self.switched_at = event.at
        if event.kind == "rollback" and "to" in evidence:
            self.share = {c: (100 if c == evidence["to"] else 0) for c in COLORS}
        if event.kind == "check" and evidence.get("color") in COLORS:
            self.checks[evidence["color"]] = {**evidence, "message": event.message}
        if event.kind in DECISIONS or (event.kind == "check" and evidence.get("status") != "pass"):
            self.decision = event

    def remaining_s(self, now: datetime) -> float | None:
        """Of the bake or the guard (both counted from the switch), else None."""
        if self.switched_at is None:
            return None
        since = (now - self.switched_at).total_seconds()
        if self.phase == "bake":
            return max(0.0, self.config.monitor.bake_s - since)
        if self.phase == "guard":
            return max(0.0, max(self.config.scale_down_delay_s, self.config.monitor.bake_s) - since)
        return None

    def __rich__(self) -> RenderableType:
        with self._lock:
            return self._render(utc_now())

    def _render(self, now: datetime) -> RenderableType:
        monitor = self.config.monitor
        elapsed = (now - self.phase_since).total_seconds()
        remaining = self.remaining_s(now)
        steps = Text()
        for name in PHASES:
            style = "bold reverse" if name == self.phase else "dim"
            steps.append(f" {name} ", style=style)
            steps.append(" ")
        head = Text(f"phase: {self.phase}, {elapsed:.0f}s", style="bold")
        if remaining is not None:
            head.append(f", {remaining:.0f}s left")
        table = Table(box=None, pad_edge=False, expand=False)
        for column in ("colour", "version", "traffic", "req/s", "error rate", "p99"):
            table.add_column(column, justify="right" if column not in ("colour", "version") else "left")
        for color in COLORS:
            check = self.checks.get(color, {})
            requests, seconds = check.get("requests"), _seconds(check)
            rate = "-" if requests is None or not seconds else f"{requests / seconds:.1f}"
            table.add_row(
                color,
                self.versions[color],
                f"{self.share[color]}%",
                rate,
                _against(check.get("error_rate"), monitor.max_error_rate, "{:.2%}"),
                _against(check.get("p99_ms"), monitor.max_p99_ms, "{:.0f} ms"),
            )
        last = self.decision
        decision = Text("last decision: ", style="bold")
        decision.append("none yet" if last is None else f"{last.kind}: {last.message}")
        return Panel(Group(steps, head, table, decision), title=self.title, expand=False)


def _seconds(check: dict[str, Any]) -> float | None:
    try:
        start = datetime.fromisoformat(check["window_start"])
        end = datetime.fromisoformat(check["window_end"])
    except (KeyError, TypeError, ValueError):
        return None
    return max((end - start).total_seconds(), 0.0) or None


def _against(value: float | None, limit: float, fmt: str) -> Text:
    if value is None:
        return Text("-")
    over = value > limit
    return Text(f"{fmt.format(value)} / {fmt.format(limit)}", style="bold red" if over else "green")


@contextlib.contextmanager
def live_release_view(record: RunRecord, config: StackConfig, title: str) -> Iterator[ReleaseView | None]:
    """The panel while the body runs, on a terminal only; None elsewhere (plain lines stay)."""
    console: Console = record.console
    if not console.is_terminal:
        yield None
        return
    view = ReleaseView(config, title)
    for event in list(record.events):
        view.observe(event)
    record.listeners.append(view.observe)
    try:
        with Live(view, console=console, refresh_per_second=4, transient=False):
            yield view
    finally:
        record.listeners.remove(view.observe)
