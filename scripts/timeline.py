"""The run's timeline chart: request rate, error rate and p99 per colour, with decisions marked."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from scripts.record import RunRecord

COLORS = {"blue": "#1f77b4", "green": "#2ca02c"}
MARKS = {"switch": ("#7f7f7f", "switch"), "rollback": ("#d62728", "rollback"), "promote": ("#9467bd", "promoted")}


def draw_timeline(record: RunRecord, path: Path | str) -> Path:
    """Write a PNG; seconds on the x axis count from the start of the run."""
    figure, (rate_ax, error_ax, latency_ax) = plt.subplots(3, 1, sharex=True, figsize=(11, 8))
    t0 = record.started
    for color, line_color in COLORS.items():
        points = [p for p in record.traffic if p.color == color]
        xs = [(p.at - t0).total_seconds() for p in points]
        rates = [(p.requests or 0) / p.seconds if p.seconds > 0 else 0 for p in points]
        errors = [(p.errors or 0) / p.requests * 100 if p.requests else 0 for p in points]
        latency = [p.p99_ms if p.p99_ms is not None else float("nan") for p in points]
        rate_ax.plot(xs, rates, color=line_color, label=color)
        error_ax.plot(xs, errors, color=line_color, label=color)
        latency_ax.plot(xs, latency, color=line_color, label=color)
    rate_ax.set_ylabel("requests/s")
    error_ax.set_ylabel("5xx %")
    latency_ax.set_ylabel("p99 ms")
    latency_ax.set_xlabel("seconds since start")
    for event in record.events:
        if event.kind not in MARKS:
            continue
        mark_color, label = MARKS[event.kind]
        x = (event.at - t0).total_seconds()
        for ax in (rate_ax, error_ax, latency_ax):
            ax.axvline(x, color=mark_color, linestyle="--", linewidth=1)
        rate_ax.annotate(label, (x, 1), xycoords=("data", "axes fraction"), rotation=90, va="top", ha="right")
    rate_ax.legend(loc="upper left")
    rate_ax.set_title(f"{record.command} on {record.stack}: {record.outcome or 'running'}")
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)
