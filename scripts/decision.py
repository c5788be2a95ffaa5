"""The post-switch monitor's judgement, as pure functions over metric samples.

``check_sample`` turns one window of one colour's metrics into a pass / breach / no-data
check that carries its evidence (values, thresholds, window, time). ``decide`` turns the
checks seen so far into what to do next. Nothing here sleeps or reads a clock, so every
rule is tested on synthetic series.

Rules (also in the README):

- a value exactly at its threshold passes; only strictly above is a breach;
- any breach rolls back at once;
- no data (no requests, or requests without a latency figure) follows ``on_no_data``:
  ``rollback`` rolls back, ``pass`` counts the interval as healthy, ``hold`` neither rolls
  back nor counts it: the monitor waits for data up to ``bake_s + window_s`` and then
  stops as *inconclusive*, leaving the release live for a person to decide;
- the release is promoted once ``bake_s`` has passed and the latest check is healthy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from components.config import MonitorConfig
from scripts.metrics import MetricsSample

PASS, BREACH, NO_DATA = "pass", "breach", "no_data"
WATCH, PROMOTE, ROLLBACK, INCONCLUSIVE = "watch", "promote", "rollback", "inconclusive"


@dataclass(frozen=True)
class Check:
    """One judged window, with everything needed to explain it later."""

    at: datetime
    color: str
    status: str
    reasons: tuple[str, ...]
    window_start: datetime
    window_end: datetime
    requests: int | None
    errors: int | None
    error_rate: float | None
    p99_ms: float | None
    max_error_rate: float
    max_p99_ms: float

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("at", "window_start", "window_end"):
            out[key] = getattr(self, key).isoformat()
        out["reasons"] = list(self.reasons)
        return out


@dataclass(frozen=True)
class Decision:
    """What the monitor does next, and why."""

    action: str
    reason: str
    elapsed_s: float
    check: Check | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "reason": self.reason,
            "elapsed_s": round(self.elapsed_s, 3),
            "check": self.check.to_dict() if self.check else None,
        }


def check_sample(sample: MetricsSample, thresholds: MonitorConfig, at: datetime) -> Check:
    """Judge one window: breach if error rate or p99 is strictly above its threshold."""
    reasons: list[str] = []
    error_rate = sample.error_rate
    if not sample.has_data:
        status = NO_DATA
        reasons.append("no requests in the window" if sample.requests == 0 else "the source returned no data")
    else:
        assert error_rate is not None
        status = PASS
        if error_rate > thresholds.max_error_rate:
            status = BREACH
            reasons.append(
                f"error rate {error_rate:.4f} ({sample.errors}/{sample.requests}) > max_error_rate "
                f"{thresholds.max_error_rate:g}"
            )
        if sample.p99_ms is None:
            if status == PASS:
                status = NO_DATA
            reasons.append("no p99 latency figure for the window")
        elif sample.p99_ms > thresholds.max_p99_ms:
            status = BREACH
            reasons.append(f"p99 {sample.p99_ms:.1f} ms > max_p99_ms {thresholds.max_p99_ms:g} ms")
        if status == PASS:
            reasons.append(
                f"error rate {error_rate:.4f} <= {thresholds.max_error_rate:g}, "
                f"p99 {sample.p99_ms:.1f} ms <= {thresholds.max_p99_ms:g} ms"
            )
    return Check(
        at=at,
        color=sample.color,
        status=status,
        reasons=tuple(reasons),
        window_start=sample.start,
        window_end=sample.end,
        requests=sample.requests,
        errors=sample.errors,
        error_rate=error_rate,
        p99_ms=sample.p99_ms,
        max_error_rate=thresholds.max_error_rate,
        max_p99_ms=thresholds.max_p99_ms,
    )


def decide(checks: Sequence[Check], thresholds: MonitorConfig, started: datetime, now: datetime) -> Decision:
    """Next step after the latest check: watch, promote, roll back, or stop inconclusive."""
    elapsed = (now - started).total_seconds()
    latest = checks[-1] if checks else None
    if latest is None:
        return Decision(WATCH, "no check yet", elapsed, None)
    if latest.status == BREACH:
        return Decision(ROLLBACK, "; ".join(latest.reasons), elapsed, latest)
    if latest.status == NO_DATA:
        policy = thresholds.on_no_data
        why = "; ".join(latest.reasons)
        if policy == "rollback":
            return Decision(ROLLBACK, f"{why} (on_no_data=rollback)", elapsed, latest)
        if policy == "hold":
            if elapsed >= thresholds.bake_s + thresholds.window_s:
                return Decision(
                    INCONCLUSIVE,
                    f"{why}; still no data after {elapsed:.0f}s (on_no_data=hold): release left live, decide by hand",
                    elapsed,
                    latest,
                )
            return Decision(WATCH, f"{why}; waiting for data (on_no_data=hold)", elapsed, latest)
    if elapsed >= thresholds.bake_s:
        note = " (no data counted as healthy: on_no_data=pass)" if latest.status == NO_DATA else ""
        return Decision(PROMOTE, f"healthy for bake_s={thresholds.bake_s}s{note}", elapsed, latest)
    return Decision(WATCH, f"healthy so far, {thresholds.bake_s - elapsed:.0f}s of bake left", elapsed, latest)
