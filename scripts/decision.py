"""The post-switch monitor's judgement, as pure functions over metric samples.

``check_sample`` turns one window of one colour's metrics into a pass / breach / no-data
check that carries its evidence (values, thresholds, window, time). ``decide`` turns the
checks seen so far into what to do next. Nothing here sleeps or reads a clock, so every
rule is tested on synthetic series.

Rules (also in docs/pipeline.md):

- **a breach needs confidence, not one unlucky moment.** The error rate breaches when
  the lower bound of its 99.99% (one-sided) Wilson confidence interval is above
  ``max_error_rate`` and at least :data:`MIN_FAILED` requests failed. With per-request
  data (the local source) the test runs on the most recent 10, 20, 40, ... requests of
  the window and on all of them, so a release that starts failing is caught within a
  few requests while earlier healthy traffic cannot dilute it; with per-window counts
  (clouds) on the window's totals. p99 is above ``max_p99_ms`` exactly when more than
  1% of requests are slower than it, so latency breaches the same way, with
  "slower than ``max_p99_ms``" as the failure, 1% as the limit and at least
  :data:`MIN_SLOW` slow answers; a source that only
  reports a p99 figure (clouds) breaches when that figure is above ``max_p99_ms``;
- any breach rolls back at once;
- no data (no requests, or requests without a latency figure) follows ``on_no_data``:
  ``rollback`` rolls back, ``pass`` counts the interval as healthy, ``hold`` neither rolls
  back nor counts it: the monitor waits for data up to ``bake_s + window_s`` and then
  stops as *inconclusive*, leaving the release live for a person to decide;
- the release is promoted once ``bake_s`` has passed and the latest check is healthy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from components.config import MonitorConfig
from scripts.metrics import MetricsSample

PASS, BREACH, NO_DATA = "pass", "breach", "no_data"
CONFIDENCE_Z = 3.719  # one-sided 99.99%
MIN_FAILED = 4  # fewer failed requests than this never breach
MIN_SLOW = 5  # nor fewer slow ones (the slow-share limit, 1%, sits closer to healthy noise)
SLOW_SHARE = 0.01  # p99 > max_p99_ms  <=>  more than 1% of requests slower than max_p99_ms
FIRST_STRETCH = 10  # the shortest run of recent requests judged on its own
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


def lower_bound(bad: int, total: int, z: float = CONFIDENCE_Z) -> float:
    """Wilson score lower bound of the share ``bad / total`` (0 when there is no data)."""
    if total <= 0:
        return 0.0
    share = bad / total
    z2 = z * z
    centre = share + z2 / (2 * total)
    margin = z * math.sqrt(share * (1 - share) / total + z2 / (4 * total * total))
    return max(0.0, (centre - margin) / (1 + z2 / total))


@dataclass(frozen=True)
class Excess:
    """A run of the most recent requests whose bad share is confidently above a limit."""

    bad: int
    total: int
    bound: float


def confident_excess(flags: Sequence[bool], limit: float, at_least: int) -> Excess | None:
    """The shortest recent stretch (last 10, 20, 40, ... requests, then all) confidently above ``limit``."""
    n = len(flags)
    lengths = []
    length = FIRST_STRETCH
    while length < n:
        lengths.append(length)
        length *= 2
    lengths.append(n)
    bad, seen = 0, 0
    for want in lengths:
        for flag in flags[n - want : n - seen]:
            bad += flag
        seen = want
        if bad >= at_least and lower_bound(bad, want) > limit:
            return Excess(bad, want, lower_bound(bad, want))
    return None


def check_sample(sample: MetricsSample, thresholds: MonitorConfig, at: datetime) -> Check:
    """Judge one window: breach when the error rate or the slow share is confidently above its limit."""
    reasons: list[str] = []
    error_rate = sample.error_rate
    if not sample.has_data:
        status = NO_DATA
        reasons.append("no requests in the window" if sample.requests == 0 else "the source returned no data")
    else:
        assert error_rate is not None and sample.errors is not None and sample.requests is not None
        status = PASS
        limit = thresholds.max_error_rate
        if sample.outcomes is not None:
            errors = confident_excess([failed for failed, _ms in sample.outcomes], limit, MIN_FAILED)
        elif sample.errors >= MIN_FAILED and lower_bound(sample.errors, sample.requests) > limit:
            errors = Excess(sample.errors, sample.requests, lower_bound(sample.errors, sample.requests))
        else:
            errors = None
        if errors is not None:
            status = BREACH
            reasons.append(
                f"error rate {error_rate:.4f} ({sample.errors}/{sample.requests}) > max_error_rate {limit:g}: "
                f"{errors.bad} of the last {errors.total} requests failed (99.99% lower bound {errors.bound:.4f})"
            )
        if sample.p99_ms is None:
            if status == PASS:
                status = NO_DATA
            reasons.append("no p99 latency figure for the window")
        else:
            slow_limit = thresholds.max_p99_ms
            if sample.outcomes is not None:
                timed = [ms > slow_limit for _failed, ms in sample.outcomes if ms >= 0]
                slow = confident_excess(timed, SLOW_SHARE, MIN_SLOW)
                if slow is not None:
                    status = BREACH
                    reasons.append(
                        f"p99 {sample.p99_ms:.1f} ms > max_p99_ms {slow_limit:g} ms: {slow.bad} of the last "
                        f"{slow.total} answers slower (99.99% lower bound {slow.bound:.1%} > 1%)"
                    )
            elif sample.p99_ms > slow_limit:
                status = BREACH
                reasons.append(f"p99 {sample.p99_ms:.1f} ms > max_p99_ms {slow_limit:g} ms")
        if status == PASS:
            reasons.append(
                f"error rate {error_rate:.4f} within max_error_rate {limit:g}, "
                f"p99 {sample.p99_ms:.1f} ms within max_p99_ms {thresholds.max_p99_ms:g} ms"
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
