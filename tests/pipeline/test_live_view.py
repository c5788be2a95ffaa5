"""The live release panel follows the run's events: phase, time left, each colour against the thresholds."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

from rich.console import Console

from components.config import StackConfig
from scripts.live_view import ReleaseView, live_release_view
from scripts.record import Event, RunRecord, utc_now
from tests.pipeline.test_pipeline_flow import MONITOR, FakeTarget, Pipeline, PipelineOptions


def _text(view: ReleaseView) -> str:
    console = Console(file=io.StringIO(), width=160, force_terminal=False)
    console.print(view)
    return " ".join(console.file.getvalue().split())  # type: ignore[attr-defined]


def test_the_panel_shows_phase_time_left_and_each_colour_against_the_thresholds() -> None:
    config = StackConfig.parse({"monitor": {**MONITOR, "bake_s": 60, "max_error_rate": 0.02}}, "t")
    view = ReleaseView(config, "deploy --version 2.0.0 on t")
    at = utc_now()
    view.observe(Event(at, "apply", "green runs 2.0.0", {"changes": {"green_version": "2.0.0", "warm_idle": True}}))
    assert "phase: idle apply" in _text(view)
    view.observe(Event(at, "switch", "green is live at 100%", {"to": "green", "percent": 100}))
    window = {"window_start": (at - timedelta(seconds=10)).isoformat(), "window_end": at.isoformat()}
    check = {"color": "green", "status": "breach", "requests": 200, "errors": 10, "error_rate": 0.05, "p99_ms": 120.0}
    view.observe(Event(at + timedelta(seconds=5), "check", "green: 200 req -> breach", {**check, **window}))
    text = _text(view)
    assert "phase: bake" in text and "left" in text
    assert "green 2.0.0 100% 20.0 5.00% / 2.00% 120 ms / 300 ms" in text, text
    assert "blue 1.0.0 0%" in text
    assert "last decision: check: green: 200 req -> breach" in text
    view.observe(Event(at + timedelta(seconds=6), "rollback", "rolled back to blue", {"to": "blue"}))
    text = _text(view)
    assert "phase: rollback" in text and "blue 1.0.0 100%" in text and "rolled back to blue" in text


def test_a_deploy_on_a_terminal_draws_the_panel_and_without_one_prints_lines_only(tmp_path: Path) -> None:
    smoke_file = tmp_path / "smoke.yaml"
    smoke_file.write_text("checks:\n  - name: up\n    path: /healthz\n    expect: {fields: {version: '{version}'}}\n")
    for terminal in (True, False):
        target = FakeTarget(scale_down_delay_s=0)
        try:
            out = io.StringIO()
            record = RunRecord("fake", "deploy", Console(file=out, width=160, force_terminal=terminal))
            pipeline = Pipeline(target, record, PipelineOptions(smoke_file, verify_timeout_s=3, verify_requests=10))
            with live_release_view(record, target.config(), "deploy --version 2.0.0 on fake") as view:
                assert pipeline.deploy("2.0.0") == 0
            assert (view is not None) == terminal
            assert record.listeners == []
            printed = out.getvalue()
            assert ("deploy --version 2.0.0 on fake" in printed) == terminal
            assert "promote" in printed  # the plain lines print either way
        finally:
            target.close()
