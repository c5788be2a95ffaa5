"""The post-switch monitor loop: sample the live colour (every ``interval_s``, or per batch), judge, decide.

The judgement is in :mod:`scripts.decision`; this module only paces it. The window
never reaches back before the switch, so smoke-test traffic or the old release's
numbers on that backend never count for or against the new one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from components.config import MonitorConfig
from scripts.decision import WATCH, Check, Decision, check_sample, decide
from scripts.metrics import MetricsSource


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class MonitorResult:
    decision: Decision
    checks: list[Check] = field(default_factory=list)


def watch(
    source: MetricsSource,
    color: str,
    thresholds: MonitorConfig,
    started: datetime,
    *,
    on_check: Callable[[Check, Decision], None] | None = None,
    clock: Callable[[], datetime] = utc_now,
    sleep: Callable[[float], None] = time.sleep,
) -> MonitorResult:
    """Watch ``color`` from ``started`` until the decision is no longer *watch*.

    A source that streams (``wait_for_requests``, the local HAProxy log) is judged on every
    new batch of requests, and at least every ``interval_s``; others every ``interval_s``.
    """
    checks: list[Check] = []
    streaming = getattr(source, "wait_for_requests", None)
    while True:
        if streaming is None:
            sleep(thresholds.interval_s)
        else:
            streaming(color, thresholds.interval_s)
        now = clock()
        window_start = max(started, now - timedelta(seconds=thresholds.window_s))
        check = check_sample(source.sample(color, window_start, now), thresholds, now)
        checks.append(check)
        decision = decide(checks, thresholds, started, now)
        if on_check is not None:
            on_check(check, decision)
        if decision.action != WATCH:
            return MonitorResult(decision, checks)
