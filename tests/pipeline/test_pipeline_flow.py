"""The release flow over a fake target: gradual steps, rollback guard, smoke failure, records."""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from components.config import ConfigError, StackConfig, other_color
from components.local.haproxy import SERVED_BY_HEADER
from scripts.metrics import ColorHealth, LiveRoute, MetricsSample
from scripts.pipeline import EXIT_FAILED, EXIT_OK, Pipeline, PipelineOptions, ReleaseAborted
from scripts.record import RunRecord
from scripts.releases import KnownBadReleaseError
from scripts.targets import TargetError
from scripts.timeline import draw_timeline

MONITOR = {"max_error_rate": 0.05, "max_p99_ms": 300, "window_s": 1, "interval_s": 1, "bake_s": 1}


class FakeTarget:
    """Config in memory; two HTTP servers answer as the live / idle colour the config names."""

    def __init__(self, **config: Any) -> None:
        self.stack = "fake"
        self.project_dir = Path(tempfile.mkdtemp(prefix="bg-fake-"))  # no migrations/: nothing to rehearse
        self._config = StackConfig.parse({"monitor": MONITOR, **config}, "fake")
        self.applied: list[dict[str, Any]] = []
        self.healthy = {"blue": True, "green": True}
        self.failing: set[str] = set()  # colours whose metrics breach
        self.stuck_on: str | None = None  # a load balancer that keeps sending prod to this colour
        self.fail_from_sample: dict[str, int] = {}  # colour -> the sample from which its metrics breach
        self.samples: dict[str, int] = {"blue": 0, "green": 0}
        self.app_says: str | None = "own"  # what the app names itself: its colour, None (nothing), or a colour
        self.servers = [self._serve(live=True), self._serve(live=False)]
        self.count = 0

    def _serve(self, live: bool) -> ThreadingHTTPServer:
        target = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                config = target._config
                color = config.idle_color
                if live:
                    target.count += 1
                    weights = target.live_route().weights
                    color = "blue" if (target.count % 100) < weights["blue"] else "green"
                says = color if target.app_says == "own" else target.app_says
                body = json.dumps({"status": "ok", "version": config.version_of(color)}).encode()
                self.send_response(200)
                self.send_header(SERVED_BY_HEADER, color)
                if says:
                    self.send_header("X-App-Color", says)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return server

    def close(self) -> None:
        shutil.rmtree(self.project_dir, ignore_errors=True)
        for server in self.servers:
            server.shutdown()
            server.server_close()

    def config(self) -> StackConfig:
        return self._config

    def apply(self, changes: Mapping[str, Any], progress: Any = None, urgent: bool = False) -> Mapping[str, Any]:
        self._config = self._config.with_changes(**changes)
        self.applied.append(dict(changes))
        return self.outputs()

    def outputs(self) -> Mapping[str, Any]:
        live, preview = (f"http://127.0.0.1:{s.server_address[1]}" for s in self.servers)
        return {"live_url": live, "preview_url": preview, "metrics": {"source": "fake"}}

    def health(self, color: str) -> ColorHealth:
        ok = self.healthy[color]
        return ColorHealth(color, int(ok), 1, f"{color}: {'UP' if ok else 'DOWN'}")

    def metrics(self) -> Any:
        target = self

        class Source:
            def sample(self, color: str, start: datetime, end: datetime) -> MetricsSample:
                target.samples[color] += 1
                late = target.samples[color] >= target.fail_from_sample.get(color, 10**9)
                errors = 50 if color in target.failing or late else 0
                return MetricsSample(color, start, end, 100, errors, 20.0)

        return Source()

    def migrate(self, progress: Any) -> str:
        return "migrations: nothing pending"

    def shared_database(self, live: str) -> None:
        return None

    def live_route(self) -> LiveRoute:
        config = self._config
        live, share = (self.stuck_on, 100) if self.stuck_on else (config.live_color, config.live_traffic_percent)
        weights = {live: share, other_color(live): 100 - share}
        return LiveRoute(weights, f"fake load balancer: {weights}", SERVED_BY_HEADER)


@pytest.fixture
def smoke_file(tmp_path: Path) -> Path:
    path = tmp_path / "smoke.yaml"
    path.write_text(
        "settings: {timeout_s: 3, attempts: 2, backoff_s: 0.05, max_backoff_s: 0.1}\n"
        "checks:\n  - name: version\n    path: /healthz\n    expect: {fields: {version: '{version}'}}\n"
    )
    return path


@pytest.fixture
def make(smoke_file: Path) -> Iterator[Any]:
    made: list[FakeTarget] = []

    def build(**config: Any) -> tuple[FakeTarget, Pipeline, RunRecord]:
        target = FakeTarget(**config)
        made.append(target)
        record = RunRecord("fake", "test", Console(file=io.StringIO(), width=200))
        pipeline = Pipeline(target, record, PipelineOptions(smoke_file, verify_timeout_s=3, verify_requests=10))
        return target, pipeline, record

    yield build
    for target in made:
        target.close()


def kinds(record: RunRecord) -> list[str]:
    return [e.kind for e in record.events]


def test_gradual_switch_walks_the_steps_and_monitors_between(make) -> None:
    target, pipeline, record = make(switch_steps=[50, 100], warm_idle=True)  # as deploy holds it
    switched, decision, _ = pipeline.switch("green")
    assert switched and decision is None
    assert target.applied == [
        {"live_color": "green", "live_traffic_percent": 50},
        {"live_color": "green", "live_traffic_percent": 100},
    ]
    assert kinds(record).count("switch") == 2 and "monitor" in kinds(record)
    assert target.config().live_color == "green" and target.config().live_traffic_percent == 100


def test_breach_at_an_intermediate_step_rolls_back(make) -> None:
    target, pipeline, record = make(switch_steps=[50, 100])
    target.failing.add("green")
    switched, why, _ = pipeline.switch("green")
    assert not switched and why is not None and "error rate 0.5000" in why
    assert target.applied[-1] == {"live_color": "blue", "live_traffic_percent": 100}
    rollback = next(e for e in record.events if e.kind == "rollback")
    assert rollback.evidence["evidence"]["check"]["errors"] == 50
    assert rollback.evidence["evidence"]["check"]["max_error_rate"] == 0.05


def test_rollback_is_refused_when_the_old_colour_is_unhealthy(make) -> None:
    target, pipeline, record = make(live_color="green", warm_idle=True)
    target.healthy["blue"] = False
    with pytest.raises(ReleaseAborted, match="blue is unhealthy"):
        pipeline.rollback("blue", None, reason="by hand")
    assert target.applied == [] and kinds(record) == ["hold"]


def test_a_switch_outside_a_release_warms_the_colour_first_and_cools_the_other_after(make) -> None:
    target, pipeline, _record = make(capacity=3, idle_capacity=1)
    switched, _why, _at = pipeline.switch("green")
    assert switched
    assert target.applied == [
        {"warm_idle": True},
        {"live_color": "green", "live_traffic_percent": 100},
        {"warm_idle": False},
    ]
    target.applied.clear()
    pipeline.rollback("blue", None, reason="by hand")
    assert target.applied == [
        {"warm_idle": True},
        {"live_color": "blue", "live_traffic_percent": 100},
        {"warm_idle": False},
    ]


def test_deploy_good_release_warms_idle_switches_and_scales_down(make) -> None:
    target, pipeline, record = make(scale_down_delay_s=0)
    assert pipeline.deploy("2.0.0") == EXIT_OK
    assert target.applied == [
        {"green_version": "2.0.0", "warm_idle": True},
        {"live_color": "green", "live_traffic_percent": 100},
        {"warm_idle": False},
    ]
    assert record.outcome == "released"
    assert kinds(record).index("smoke") < kinds(record).index("switch") < kinds(record).index("promote")


def test_deploy_rolls_back_on_breach_after_the_switch(make) -> None:
    target, pipeline, record = make()
    target.failing.add("green")
    assert pipeline.deploy("2.1.0") == EXIT_FAILED
    assert target.applied[-2:] == [{"live_color": "blue", "live_traffic_percent": 100}, {"warm_idle": False}]
    assert record.outcome == "rolled back" and target.config().live_color == "blue"


def test_a_release_failing_after_its_bake_is_rolled_back_by_the_guard(make) -> None:
    target, pipeline, record = make(scale_down_delay_s=5)  # bake_s is 1
    target.fail_from_sample["green"] = 3  # promoted after the first checks, failing from the third
    assert pipeline.deploy("2.1.0") == EXIT_FAILED
    assert record.outcome == "rolled back after promotion"
    assert kinds(record).index("promote") < kinds(record).index("rollback")
    assert "breach" in record.summary["guard"] and "error rate 0.5000" in record.summary["reason"]
    assert target.config().live_color == "blue" and target.applied[-1] == {"warm_idle": False}
    assert pipeline.rolled_back.get("2.1.0") is not None


def test_a_healthy_release_is_guarded_then_scaled_down_on_time(make) -> None:
    target, pipeline, record = make(scale_down_delay_s=3)
    assert pipeline.deploy("2.0.0") == EXIT_OK
    assert record.outcome == "released" and record.summary["guard"].startswith("3s after the switch: healthy")
    assert target.applied[-1] == {"warm_idle": False} and target.samples["green"] >= 3
    scaled = next(e for e in reversed(record.events) if e.kind == "apply")
    assert (scaled.at - next(e for e in record.events if e.kind == "switch").at).total_seconds() >= 3


def test_switching_onto_a_rolled_back_version_is_refused_unless_forced(make) -> None:
    target, pipeline, record = make(scale_down_delay_s=0)
    target.failing.add("green")
    assert pipeline.deploy("2.1.0") == EXIT_FAILED
    with pytest.raises(KnownBadReleaseError, match=r"green runs 2\.1\.0, which this stack rolled back at .* because"):
        pipeline.refuse_known_bad("green")
    pipeline.refuse_known_bad("green", force=True)
    assert "force" in kinds(record)
    target.failing.clear()
    assert pipeline.deploy("2.1.0") == EXIT_OK  # released and promoted: no longer known bad
    assert pipeline.rolled_back.get("2.1.0") is None


def test_an_app_that_names_no_colour_is_verified_by_the_load_balancer(make) -> None:
    target, pipeline, record = make(scale_down_delay_s=0)
    target.app_says = None
    assert pipeline.deploy("2.0.0") == EXIT_OK
    verify = next(e for e in record.events if e.kind == "verify")
    assert verify.evidence["verified"] is True and verify.evidence["answers"] == {"green": 10}
    assert verify.evidence["route"] == {"green": 100, "blue": 0}


def test_a_switch_the_load_balancer_does_not_show_is_rolled_back_not_promoted(make) -> None:
    target, pipeline, record = make(scale_down_delay_s=0)
    target.stuck_on = "blue"
    assert pipeline.deploy("2.0.0") == EXIT_FAILED
    assert record.outcome == "rolled back" and target.config().live_color == "blue"
    assert "promote" not in kinds(record)
    assert "not verified" in record.summary["reason"] and "routes 0% of prod to green" in record.summary["reason"]
    assert target.applied[-2:] == [{"live_color": "blue", "live_traffic_percent": 100}, {"warm_idle": False}]


def test_an_app_naming_the_other_colour_fails_verification(make) -> None:
    target, pipeline, record = make(scale_down_delay_s=0)
    target.app_says = "blue"  # green's backend answers, the app behind it says blue: ports crossed
    assert pipeline.deploy("2.0.0") == EXIT_FAILED
    assert "ports crossed" in record.summary["reason"] and target.config().live_color == "blue"


@pytest.mark.parametrize("version", ["", "../2.0", "two point oh"])
def test_a_bad_version_is_refused_before_anything_changes(make, version: str) -> None:
    target, pipeline, _record = make()
    with pytest.raises(ConfigError, match="green_version"):
        pipeline.deploy(version)
    assert target.applied == []


def test_deploy_never_switches_when_smoke_fails(make, smoke_file: Path) -> None:
    smoke_file.write_text(smoke_file.read_text().replace("'{version}'", "'9.9.9'"))
    target, pipeline, record = make()
    assert pipeline.deploy("2.0.0") == EXIT_FAILED
    assert target.applied == [{"green_version": "2.0.0", "warm_idle": True}, {"warm_idle": False}]
    assert "switch" not in kinds(record) and record.outcome == "smoke failed"
    assert target.config().live_color == "blue"


def test_report_and_timeline_are_written(make, tmp_path: Path) -> None:
    _target, pipeline, record = make(scale_down_delay_s=0)
    pipeline.deploy("2.0.0")
    record.write_json(tmp_path / "run.json")
    data = json.loads((tmp_path / "run.json").read_text())
    assert data["outcome"] == "released" and data["exit_code"] == 0
    assert any(e["kind"] == "check" and e["evidence"]["max_p99_ms"] == 300 for e in data["events"])
    png = draw_timeline(record, tmp_path / "timeline.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_deploy_refuses_a_bad_version_before_changing_anything(make) -> None:
    target, pipeline, record = make()
    with pytest.raises(ConfigError, match=r"green_version = '\.\./x' is invalid"):
        pipeline.deploy("../x")
    assert target.applied == [] and kinds(record) == [], "refused before the release started"


def test_deploy_refuses_when_the_live_colour_is_not_serving(make) -> None:
    target, pipeline, _record = make()
    target.healthy["blue"] = False
    with pytest.raises(TargetError, match="live colour blue is not healthy"):
        pipeline.deploy("2.0.0")
    assert target.applied == []


# -- where a rollback goes: the last promoted release, never an unchecked one -------------------


def test_a_rollback_after_a_release_stopped_before_its_switch_stays_where_it_is(make) -> None:
    target, pipeline, _record = make()
    pipeline.promoted.ensure("blue", "1.0.0")  # what deploy records before it changes anything
    target.apply({"green_version": "2.1.0", "warm_idle": True})  # ... then interrupted during smoke
    assert pipeline.rollback_target() is None, "never forward onto the unsmoked 2.1.0"
    pipeline.settle_idle()
    assert target.config().live_color == "blue" and target.config().warm_idle is False


def test_a_rollback_after_an_interrupted_bake_goes_back_to_the_promoted_release(make) -> None:
    target, pipeline, _record = make()
    pipeline.promoted.ensure("blue", "1.0.0")
    target.apply({"green_version": "2.1.0", "warm_idle": True, "live_color": "green"})  # switched, then stopped
    assert pipeline.rollback_target() == "blue"


def test_a_rollback_after_a_released_version_goes_to_the_one_before(make) -> None:
    _target, pipeline, _record = make(scale_down_delay_s=0)
    assert pipeline.deploy("2.0.0") == EXIT_OK
    assert [(p.color, p.version, p.how) for p in pipeline.promoted.history()] == [
        ("blue", "1.0.0", "live before the first change"),
        ("green", "2.0.0", "deploy"),
    ]
    assert pipeline.rollback_target() == "blue"
    pipeline.rollback("blue", None, reason="found a bug an hour later")
    # Again: 2.0.0 was rolled back, so there is nowhere further to go unless forced.
    assert pipeline.rollback_target() is None
    assert pipeline.rollback_target(force=True) == "green"


def test_a_gradual_switch_left_half_way_is_undone_to_the_promoted_colour(make) -> None:
    target, pipeline, _record = make(switch_steps=[25, 100])
    pipeline.promoted.ensure("blue", "1.0.0")
    target.apply({"green_version": "2.0.0", "warm_idle": True, "live_color": "green", "live_traffic_percent": 25})
    assert pipeline.rollback_target() == "blue"


def test_a_rollback_with_no_promoted_release_on_either_colour_holds(make) -> None:
    target, pipeline, record = make()
    pipeline.promoted.ensure("blue", "1.0.0")
    target.apply({"blue_version": "1.1.0", "green_version": "2.0.0", "live_color": "green"})
    with pytest.raises(ReleaseAborted, match="never promoted"):
        pipeline.rollback_target()
    assert kinds(record) == ["hold"] and target.config().live_color == "green"


def test_without_history_a_settled_stack_takes_its_live_release_as_promoted(make) -> None:
    target, pipeline, _record = make()
    assert pipeline.rollback_target() is None
    assert [(p.color, p.version) for p in pipeline.promoted.history()] == [("blue", "1.0.0")]
    target.apply({"warm_idle": True})
    pipeline.promoted.path.unlink()
    with pytest.raises(ReleaseAborted, match="cannot be told"):
        pipeline.rollback_target()
