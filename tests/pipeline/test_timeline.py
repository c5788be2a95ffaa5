"""The timeline on a recorded run: thresholds drawn, phases shaded, gaps for no traffic, nothing below zero."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon, Rectangle

from scripts.record import Event, RunRecord, TrafficPoint
from scripts.timeline import SHADES, timeline_figure


def recorded_run() -> RunRecord:
    record = RunRecord("t", "deploy --version 2.1.0")
    t0 = record.started

    def at(s: float) -> datetime:
        return t0 + timedelta(seconds=s)

    thresholds = {"max_error_rate": 0.02, "max_p99_ms": 400.0, "color": "blue", "status": "breach"}
    record.events = [
        Event(at(0), "start", "release 2.1.0 to blue"),
        Event(at(1), "smoke", "4 checks against blue"),
        Event(at(3), "switch", "blue is live at 100%", {"to": "blue", "percent": 100, "apply_s": 0.07}),
        Event(at(4), "check", "blue: pass", {**thresholds, "status": "pass"}),
        Event(at(8), "check", "blue: breach", thresholds),
        Event(at(8.5), "rollback", "rolled back to green", {"to": "green", "reason": "error rate 0.3 > 0.02"}),
        Event(at(9), "done", "rolled back (exit 1)"),
    ]
    for second in range(1, 10):
        blue = 0 if second < 4 or second > 8 else 20  # no traffic: must be a gap, not 0%
        record.traffic.append(
            TrafficPoint(at(second), "blue", 1.0, blue, 6 if second == 8 else 0, 30.0 if blue else None)
        )
        record.traffic.append(TrafficPoint(at(second), "green", 1.0, 20 - blue, 0, 25.0))
    record.outcome = "rolled back"
    return record


def test_the_chart_draws_thresholds_phases_decisions_and_gaps_and_never_goes_negative() -> None:
    figure = timeline_figure(recorded_run())
    share_ax, rate_ax, error_ax, latency_ax = figure.axes[:4]
    for ax in (share_ax, rate_ax, error_ax, latency_ax):
        assert ax.get_ylim()[0] >= 0

    # Thresholds: horizontal lines at 2% and 400 ms.
    def horizontal(ax: Axes) -> set[float]:
        return {
            line.get_ydata()[0]
            for line in ax.get_lines()
            if len(set(line.get_ydata())) == 1 and line.get_linestyle() == ":"
        }

    assert 2.0 in horizontal(error_ax) and 400.0 in horizontal(latency_ax)
    # Phases shaded on every panel: smoke, verification, bake.
    spans = [p for p in error_ax.patches if isinstance(p, Polygon | Rectangle)]
    shade_colors = {SHADES[phase][0] for phase in ("smoke", "verify", "bake")}
    drawn = {to_hex(p.get_facecolor()) for p in spans}
    assert shade_colors <= drawn, drawn
    # Decisions marked, the rollback with its reason.
    labels = [t.get_text() for t in rate_ax.texts]
    assert any(text.startswith("rollback: error rate 0.3 > 0.02") for text in labels), labels
    # A colour with no traffic is a gap in its error rate, never a healthy-looking 0%.
    blue_errors = next(line for line in error_ax.get_lines() if line.get_label() == "blue")
    ys = list(blue_errors.get_ydata())
    assert math.isnan(ys[0]) and ys[-2] == 30.0  # second 8: 6 of 20 failed
    # Steps, not ramps: an instant switch draws as a step.
    assert isinstance(blue_errors, Line2D) and blue_errors.get_drawstyle() == "steps-pre"
