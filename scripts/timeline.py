"""The run's timeline chart: traffic share, request rate, error rate and p99 per colour.

Drawn so that it reads the way the run went: each sampling period is a step (an
instant switch looks instant, not like a ramp); a colour with no traffic in a period
is a gap in its error rate and p99, never a 0% that looks healthy; the monitor's
thresholds are drawn on their panels; the phases (smoke, verification, bake, guard)
are shaded, the verification probes among them, so the pipeline's own requests are
not read as user traffic; every decision is marked with its reason; no axis goes
below zero.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from scripts.live_view import phase_spans
from scripts.record import RunRecord

COLORS = {"blue": "#1f77b4", "green": "#2ca02c"}
MARKS = {
    "switch": "#7f7f7f",
    "rollback": "#d62728",
    "promote": "#9467bd",
    "abort": "#d62728",
    "hold": "#ff7f0e",
    "interrupted": "#ff7f0e",
}
SHADES = {
    "smoke": ("#fff2cc", "smoke"),
    "verify": ("#e0e0e0", "verification probes"),
    "bake": ("#dae8fc", "bake"),
    "guard": ("#e1d5e7", "guard"),
}
NAN = float("nan")


def draw_timeline(record: RunRecord, path: Path | str) -> Path:
    """Write a PNG; seconds on the x axis count from the start of the run."""
    figure = timeline_figure(record)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)


def timeline_figure(record: RunRecord) -> Figure:
    """The chart itself (the caller saves and closes it)."""
    figure, axes = plt.subplots(4, 1, sharex=True, figsize=(12, 10), height_ratios=(1, 2, 2, 2))
    share_ax, rate_ax, error_ax, latency_ax = axes
    t0 = record.started

    def seconds(at: object) -> float:
        return (at - t0).total_seconds()  # type: ignore[operator]

    totals: dict[float, int] = {}
    for point in record.traffic:
        key = round(seconds(point.at), 3)
        totals[key] = totals.get(key, 0) + (point.requests or 0)
    for color, line_color in COLORS.items():
        points = [p for p in record.traffic if p.color == color]
        xs = [seconds(p.at) for p in points]
        share = [
            100 * (p.requests or 0) / t if (t := totals[round(x, 3)]) else NAN for p, x in zip(points, xs, strict=True)
        ]
        rates = [(p.requests or 0) / p.seconds if p.seconds > 0 else NAN for p in points]
        errors = [100 * (p.errors or 0) / p.requests if p.requests else NAN for p in points]
        latency = [p.p99_ms if p.requests and p.p99_ms is not None else NAN for p in points]
        for ax, values in ((share_ax, share), (rate_ax, rates), (error_ax, errors), (latency_ax, latency)):
            ax.plot(xs, values, color=line_color, label=color, drawstyle="steps-pre", linewidth=1.6)
    _thresholds(record, error_ax, latency_ax)
    shaded: dict[str, Patch] = {}
    for phase, start, end in phase_spans(record.events):
        if phase in SHADES:
            shade, label = SHADES[phase]
            for ax in axes:
                ax.axvspan(seconds(start), seconds(end), color=shade, alpha=0.7, linewidth=0, zorder=0)
            shaded.setdefault(label, Patch(color=shade, label=label))
    if shaded:
        share_ax.legend(handles=list(shaded.values()), loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    _decisions(record, axes, seconds)
    share_ax.set_ylabel("traffic %")
    share_ax.set_ylim(0, 105)
    rate_ax.set_ylabel("requests/s")
    error_ax.set_ylabel("5xx %")
    latency_ax.set_ylabel("p99 ms")
    latency_ax.set_xlabel("seconds since start (one step per sampling period; gaps: no traffic)")
    for ax in axes:
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
    rate_ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    title = f"{record.command} on {record.stack}: {record.outcome or 'running'}"
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def _thresholds(record: RunRecord, error_ax: Axes, latency_ax: Axes) -> None:
    check = next((e.evidence for e in record.events if e.kind == "check" and "max_error_rate" in e.evidence), None)
    if check is None:
        return
    max_error = 100 * float(check["max_error_rate"])
    error_ax.axhline(max_error, color="#d62728", linestyle=":", linewidth=1.2, label=f"max_error_rate {max_error:g}%")
    max_p99 = float(check["max_p99_ms"])
    latency_ax.axhline(max_p99, color="#d62728", linestyle=":", linewidth=1.2, label=f"max_p99_ms {max_p99:g}")
    for ax in (error_ax, latency_ax):
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    # Keep the threshold in view even on a quiet run, so "far below the line" is visible.
    error_ax.set_ylim(top=max(max_error * 1.5, error_ax.get_ylim()[1]))
    latency_ax.set_ylim(top=max(max_p99 * 1.3, latency_ax.get_ylim()[1]))


def _decisions(record: RunRecord, axes: list[Axes], seconds: object) -> None:
    for event in record.events:
        if event.kind not in MARKS:
            continue
        # A switch or rollback is noted when its apply returns; traffic may move any time
        # during it (locally, HAProxy first): the apply is drawn as a band, the mark at its start.
        end = seconds(event.at)  # type: ignore[operator]
        took = event.evidence.get("apply_s" if event.kind == "switch" else "seconds")
        x = end - float(took) if isinstance(took, int | float) and event.kind in ("switch", "rollback") else end
        for ax in axes:
            if end - x > 0.05:
                ax.axvspan(x, end, color=MARKS[event.kind], alpha=0.12, linewidth=0, zorder=1)
            ax.axvline(x, color=MARKS[event.kind], linestyle="--", linewidth=1, zorder=3)
        reason = event.evidence.get("reason") or event.message
        label = axes[1].annotate(
            f"{event.kind}: {_short(str(reason))}",
            (x, 0.03),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="bottom",
            ha="right",
            fontsize=7,
            annotation_clip=True,
        )
        label.set_in_layout(False)  # a long reason must not squeeze the panels


def _short(text: str, width: int = 45) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
