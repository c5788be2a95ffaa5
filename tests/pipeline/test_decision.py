"""The monitor's decision rules on synthetic series: breach, recovery, no data, exact thresholds."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from components.config import MonitorConfig
from scripts.decision import (
    BREACH,
    INCONCLUSIVE,
    MIN_FAILED,
    NO_DATA,
    PASS,
    PROMOTE,
    ROLLBACK,
    WATCH,
    check_sample,
    decide,
    lower_bound,
)
from scripts.metrics import MetricsSample
from scripts.monitor import watch

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LIMITS = MonitorConfig(max_error_rate=0.01, max_p99_ms=500, window_s=10, interval_s=2, bake_s=10, on_no_data="hold")


def sample(requests: int | None, errors: int | None, p99: float | None, at_s: float = 2) -> MetricsSample:
    end = T0 + timedelta(seconds=at_s)
    return MetricsSample("green", end - timedelta(seconds=2), end, requests, errors, p99)


def series(points: list[tuple[int | None, int | None, float | None]], limits: MonitorConfig = LIMITS):
    """Judge points taken every interval_s after T0; return every decision in order."""
    checks, decisions = [], []
    for i, (requests, errors, p99) in enumerate(points, start=1):
        at = T0 + timedelta(seconds=i * limits.interval_s)
        checks.append(check_sample(sample(requests, errors, p99, i * limits.interval_s), limits, at))
        decisions.append(decide(checks, limits, T0, at))
    return decisions


def test_exactly_at_both_thresholds_passes() -> None:
    check = check_sample(sample(1000, 10, 500.0), LIMITS, T0)
    assert check.status == PASS
    assert check.error_rate == pytest.approx(0.01)


def test_a_window_total_breaches_only_when_confidently_above_the_limit() -> None:
    """21/1000 is above 1% but could be luck at 99.99% confidence; 22/1000 cannot."""
    assert check_sample(sample(1000, 21, 100.0), LIMITS, T0).status == PASS
    check = check_sample(sample(1000, 22, 100.0), LIMITS, T0)
    assert check.status == BREACH
    assert "error rate 0.0220 (22/1000) > max_error_rate 0.01: 22 of the last 1000 requests failed" in check.reasons[0]
    assert lower_bound(21, 1000) <= 0.01 < lower_bound(22, 1000)
    # A handful of failures never breaches, whatever the share.
    assert check_sample(sample(3, 3, 100.0), LIMITS, T0).status == PASS and MIN_FAILED == 4


def test_a_p99_figure_above_the_limit_is_a_breach_with_evidence() -> None:
    check = check_sample(sample(1000, 0, 500.1), LIMITS, T0)
    assert check.status == BREACH
    assert "p99 500.1 ms > max_p99_ms 500" in "; ".join(check.reasons)
    evidence = check.to_dict()
    assert evidence["max_error_rate"] == 0.01 and evidence["max_p99_ms"] == 500
    assert evidence["requests"] == 1000 and evidence["at"] == T0.isoformat()
    assert evidence["window_end"] == (T0 + timedelta(seconds=2)).isoformat()


def per_request(outcomes: list[tuple[bool, int]]) -> MetricsSample:
    errors = sum(failed for failed, _ms in outcomes)
    timed = sorted(ms for _failed, ms in outcomes if ms >= 0)
    p99 = float(timed[max(0, -(-99 * len(timed) // 100) - 1)]) if timed else None
    return MetricsSample("green", T0, T0 + timedelta(seconds=2), len(outcomes), errors, p99, tuple(outcomes))


def test_a_release_that_starts_failing_is_caught_within_a_few_requests() -> None:
    """Healthy history does not dilute a fresh failure: the most recent requests are judged on their own."""
    healthy = [(False, 20)] * 300
    assert check_sample(per_request(healthy + [(True, 20)] * 3 + [(False, 20)] * 7), LIMITS, T0).status == PASS
    check = check_sample(per_request(healthy + [(False, 20)] * 6 + [(True, 20)] * 4), LIMITS, T0)
    assert check.status == BREACH
    assert "4 of the last 10 requests failed" in check.reasons[0]
    assert check.error_rate == pytest.approx(4 / 310)  # the window's own rate is well under a point rule's radar


def test_slow_requests_breach_by_their_share_like_errors() -> None:
    healthy = [(False, 20)] * 300
    two_slow = healthy + [(False, 900)] * 2
    assert check_sample(per_request(two_slow), LIMITS, T0).status == PASS  # p99 is 20 ms; two slow ones are a blip
    check = check_sample(per_request(healthy + [(False, 900)] * 6 + [(False, 20)] * 4), LIMITS, T0)
    assert check.status == BREACH
    assert "6 of the last 10 answers slower" in "; ".join(check.reasons)


def test_background_noise_does_not_roll_back() -> None:
    """0.5% errors and 0.5% slow answers against 2% / p99 limits, judged after every 5 requests: no breach."""
    limits = replace(LIMITS, max_error_rate=0.02)
    rng = random.Random(7)
    stream = [(rng.random() < 0.005, 900 if rng.random() < 0.005 else 20) for _ in range(30_000)]
    breaches = sum(
        check_sample(per_request(stream[max(0, end - 250) : end]), limits, T0).status == BREACH
        for end in range(5, len(stream) + 1, 5)
    )
    assert breaches == 0


def test_healthy_series_is_promoted_after_bake() -> None:
    decisions = series([(100, 0, 50.0)] * 5)
    assert [d.action for d in decisions] == [WATCH] * 4 + [PROMOTE]
    assert decisions[-1].elapsed_s == 10


def test_breach_mid_bake_rolls_back_at_once() -> None:
    decisions = series([(100, 0, 50.0), (100, 0, 50.0), (100, 30, 50.0), (100, 0, 50.0)])
    assert [d.action for d in decisions[:3]] == [WATCH, WATCH, ROLLBACK]
    assert "error rate 0.3000 (30/100)" in decisions[2].reason
    assert decisions[2].check is not None and decisions[2].check.errors == 30


def test_recovery_from_no_data_under_hold_promotes() -> None:
    decisions = series([(None, None, None), (0, 0, None), (100, 0, 60.0), (100, 0, 60.0), (100, 0, 60.0)])
    assert [d.action for d in decisions] == [WATCH, WATCH, WATCH, WATCH, PROMOTE]
    assert "waiting for data" in decisions[0].reason


def test_no_data_under_hold_ends_inconclusive_after_bake_plus_window() -> None:
    decisions = series([(None, None, None)] * 10)
    assert [d.action for d in decisions] == [WATCH] * 9 + [INCONCLUSIVE]
    assert "decide by hand" in decisions[-1].reason


def test_no_data_under_rollback_rolls_back() -> None:
    decisions = series([(None, None, None)], replace(LIMITS, on_no_data="rollback"))
    assert decisions[0].action == ROLLBACK
    assert "on_no_data=rollback" in decisions[0].reason


def test_no_data_under_pass_counts_as_healthy() -> None:
    decisions = series([(None, None, None)] * 5, replace(LIMITS, on_no_data="pass"))
    assert [d.action for d in decisions] == [WATCH] * 4 + [PROMOTE]
    assert "on_no_data=pass" in decisions[-1].reason


def test_requests_without_latency_are_no_data_but_errors_still_breach() -> None:
    assert check_sample(sample(100, 0, None), LIMITS, T0).status == NO_DATA
    assert check_sample(sample(100, 50, None), LIMITS, T0).status == BREACH


def test_zero_bake_promotes_on_first_healthy_check() -> None:
    assert series([(10, 0, 1.0)], replace(LIMITS, bake_s=0))[0].action == PROMOTE


class ScriptedSource:
    """Returns queued samples and records the windows it was asked for."""

    def __init__(self, points: list[tuple[int | None, int | None, float | None]]) -> None:
        self.points = list(points)
        self.windows: list[tuple[datetime, datetime]] = []

    def sample(self, color: str, start: datetime, end: datetime) -> MetricsSample:
        self.windows.append((start, end))
        requests, errors, p99 = self.points.pop(0)
        return MetricsSample(color, start, end, requests, errors, p99)


def test_watch_paces_by_interval_and_never_looks_before_the_switch() -> None:
    now = [T0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += timedelta(seconds=seconds)

    limits = replace(LIMITS, window_s=4)
    source = ScriptedSource([(100, 0, 10.0), (100, 0, 10.0), (100, 5, 10.0)])
    seen = []
    result = watch(source, "green", limits, T0, clock=lambda: now[0], sleep=sleep, on_check=lambda c, d: seen.append(d))
    assert result.decision.action == ROLLBACK
    assert slept == [2, 2, 2] and len(result.checks) == 3 and len(seen) == 3
    assert source.windows[0] == (T0, T0 + timedelta(seconds=2))
    assert source.windows[2] == (T0 + timedelta(seconds=2), T0 + timedelta(seconds=6))
