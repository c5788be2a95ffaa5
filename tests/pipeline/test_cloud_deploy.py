"""The whole ``deploy`` on AWS, GCP and Azure, through ``PulumiStackTarget`` and a fake Automation API.

Per cloud: health, smoke, switch, verification, monitoring and rollback run against the
cloud's SDKs faked at their API boundary (moto for AWS; for GCP and Azure, clients answering
with the SDKs' own response types: tests/pipeline/fake_clouds.py), and the stack's URLs
point at an app served on 127.0.0.1 that answers as the colour the cloud's front ends send
each request to. A good release promotes; a failing one rolls back; a switch the load
balancer never shows rolls back, or, with the old colour dead, stays live and watched.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from moto import mock_aws
from rich.console import Console

from scripts.metrics import azure_monitor as azure_source
from scripts.metrics import cloud_monitoring, cloudwatch
from scripts.pipeline import EXIT_FAILED, EXIT_OK, Pipeline, PipelineOptions
from scripts.record import RunRecord
from scripts.targets.pulumi_stack import PulumiStackTarget
from tests.pipeline.fake_clouds import AppServer, AwsCloud, AzureCloud, Cloud, GcpCloud, Traffic
from tests.pipeline.fake_pulumi import FakePulumiCommand

ROOT = Path(__file__).resolve().parents[2]
CLOUDS = {"aws": AwsCloud, "gcp": GcpCloud, "azure": AzureCloud}
# moto computes no percentiles, so AWS's p99 is missing: no data counts as healthy there, and
# a breach is an error-rate breach on every cloud.
MONITOR = {"max_error_rate": 0.05, "max_p99_ms": 300, "window_s": 1, "interval_s": 0.2, "bake_s": 1}
VERIFY_TIMEOUT_S = 1.5
FAILING = Traffic(1000, 300, 40.0)


@dataclass
class World:
    name: str
    cloud: Cloud
    fake: FakePulumiCommand
    target: PulumiStackTarget
    pipeline: Pipeline
    record: RunRecord

    def config(self) -> dict[str, str]:
        return {k.split(":", 1)[1]: v["value"] for k, v in self.fake.config.items()}

    def kinds(self) -> list[str]:
        return [e.kind for e in self.record.events]

    def notes(self, kind: str) -> list[str]:
        return [e.message for e in self.record.events if e.kind == kind]


@pytest.fixture
def smoke_file(tmp_path: Path) -> Path:
    path = tmp_path / "smoke.yaml"
    path.write_text(
        "settings: {timeout_s: 3, attempts: 2, backoff_s: 0.05, max_backoff_s: 0.1}\n"
        "checks:\n  - name: version\n    path: /healthz\n    expect: {status: 200, fields: {version: '{version}'}}\n"
    )
    return path


@pytest.fixture(params=sorted(CLOUDS))
def world(request: pytest.FixtureRequest, tmp_path: Path, smoke_file: Path) -> Iterator[World]:
    name = request.param
    with contextlib.ExitStack() as stack:
        if name == "aws":
            stack.enter_context(mock_aws())
        cloud = CLOUDS[name]()
        app = AppServer(cloud)
        stack.callback(app.close)
        (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
        config = {
            "bluegreen:cloud": name,
            "bluegreen:live_color": "blue",
            "bluegreen:blue_version": "1.0.0",
            "bluegreen:green_version": "1.0.0",
            "bluegreen:scale_down_delay_s": 0,
            "bluegreen:migrations_dir": "",
            "bluegreen:monitor": {**MONITOR, "on_no_data": "pass" if name == "aws" else "hold"},
        }
        fake = FakePulumiCommand(
            config,
            metrics=cloud.metrics,
            stack_file=tmp_path / "Pulumi.prod.yaml",
            urls=(app.url("live"), app.url("preview")),
            on_up=cloud.apply,
        )
        target = PulumiStackTarget("prod", tmp_path, pulumi_command=fake, **cloud.options())
        record = RunRecord("prod", "deploy", Console(file=io.StringIO(), width=200))
        options = PipelineOptions(smoke_file, verify_timeout_s=VERIFY_TIMEOUT_S, verify_requests=10)
        yield World(name, cloud, fake, target, Pipeline(target, record, options), record)


def test_a_good_release_is_verified_promoted_and_the_old_colour_scaled_down(world: World) -> None:
    assert world.pipeline.deploy("2.0.0") == EXIT_OK, world.record.events
    assert world.record.outcome == "released"
    config = world.config()
    assert (config["live_color"], config["green_version"], config["warm_idle"]) == ("green", "2.0.0", "false")
    kinds = world.kinds()
    assert kinds.index("healthy") < kinds.index("smoke") < kinds.index("switch") < kinds.index("verify")
    assert kinds.index("verify") < kinds.index("check") < kinds.index("promote")
    verify = next(e for e in world.record.events if e.kind == "verify")
    assert verify.evidence["verified"] is True and verify.evidence["route"] == {"blue": 0, "green": 100}
    # No header from the cloud's load balancer: the answers through the live URL name their colour.
    assert verify.evidence["answers"] == {"green": 10}
    healthy = next(e for e in world.record.events if e.kind == "healthy")
    assert healthy.evidence["healthy"] == healthy.evidence["total"] > 0
    assert [(p.color, p.version) for p in world.pipeline.promoted.history()][-1] == ("green", "2.0.0")


def test_a_failing_release_is_rolled_back_on_its_error_rate(world: World) -> None:
    world.cloud.profile["green"] = FAILING
    assert world.pipeline.deploy("2.1.0") == EXIT_FAILED
    assert world.record.outcome == "rolled back"
    assert "error rate 0.3000" in world.record.summary["reason"]
    config = world.config()
    assert (config["live_color"], config["warm_idle"]) == ("blue", "false")
    assert world.cloud.route == {"blue": 100, "green": 0}
    rollback = next(e for e in world.record.events if e.kind == "rollback")
    assert rollback.evidence["evidence"]["check"]["errors"] == 300
    assert world.pipeline.rolled_back.get("2.1.0") is not None


def test_a_switch_the_load_balancer_never_shows_is_rolled_back(world: World) -> None:
    world.cloud.route_stuck, world.cloud.lag_s = True, None  # neither the API nor the front ends move
    assert world.pipeline.deploy("2.0.0") == EXIT_FAILED
    assert world.record.outcome == "rolled back"
    assert f"not verified within {VERIFY_TIMEOUT_S:g}s" in world.record.summary["reason"]
    assert "routes 0% of prod to green" in world.record.summary["reason"]
    config = world.config()
    assert (config["live_color"], config["warm_idle"]) == ("blue", "false"), "rolled back, nothing left warm"
    assert "promote" not in world.kinds()
    failed = next(e for e in world.record.events if e.kind == "verify" and not e.evidence["verified"])
    assert failed.evidence["timeout_s"] == VERIFY_TIMEOUT_S


def test_a_timeout_with_the_old_colour_dead_keeps_the_release_live_and_watched(world: World) -> None:
    """No rollback onto a dead colour: the new one keeps prod, is monitored, and is left for a person."""
    world.cloud.route_stuck = True  # the API never shows it, but the front ends do move
    world.cloud.dies_on_switch = "blue"
    assert world.pipeline.deploy("2.0.0") == EXIT_FAILED
    assert world.record.outcome == "switched, not verified"
    config = world.config()
    assert (config["live_color"], config["warm_idle"]) == ("green", "true"), "both colours stay warm"
    hold = world.notes("hold")
    assert "NOT rolling back: blue is not healthy" in hold[0] and "green keeps prod and is monitored" in hold[0]
    kinds = world.kinds()
    assert kinds.index("hold") < kinds.index("check"), "monitored after the timeout"
    assert "rollback" not in kinds and "promote" not in kinds
    assert "Not promoted" in world.record.summary["reason"] and "run monitor" in world.record.summary["reason"]
    assert ("green", "2.0.0") not in [(p.color, p.version) for p in world.pipeline.promoted.history()]


def test_a_timeout_with_the_old_colour_dead_still_acts_on_a_breach(world: World) -> None:
    world.cloud.route_stuck = True
    world.cloud.dies_on_switch = "blue"
    world.cloud.profile["green"] = FAILING
    assert world.pipeline.deploy("2.1.0") == EXIT_FAILED
    assert world.record.outcome == "aborted"
    hold = world.notes("hold")
    assert any("NOT rolling back: blue is unhealthy" in note for note in hold), hold
    assert world.config()["live_color"] == "green", "traffic stays where it is: blue cannot serve"


@pytest.mark.parametrize("name", ["gcp"])
def test_gcp_front_ends_that_lag_the_url_map_are_waited_for(tmp_path: Path, smoke_file: Path, name: str) -> None:
    """The URL map reads back at once; answers through the live URL show when the front ends follow."""
    cloud = GcpCloud(lag_s=0.8)
    app = AppServer(cloud)
    try:
        (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
        fake = FakePulumiCommand(
            {
                "bluegreen:cloud": name,
                "bluegreen:scale_down_delay_s": 0,
                "bluegreen:migrations_dir": "",
                "bluegreen:monitor": MONITOR,
            },
            metrics=cloud.metrics,
            stack_file=tmp_path / "Pulumi.prod.yaml",
            urls=(app.url("live"), app.url("preview")),
            on_up=cloud.apply,
        )
        target = PulumiStackTarget("prod", tmp_path, pulumi_command=fake, **cloud.options())
        record = RunRecord("prod", "deploy", Console(file=io.StringIO(), width=200))
        pipeline = Pipeline(target, record, PipelineOptions(smoke_file, verify_timeout_s=5, verify_requests=10))
        assert pipeline.deploy("2.0.0") == EXIT_OK
        verify = next(e for e in record.events if e.kind == "verify")
        assert verify.evidence["seconds"] >= 0.5, "verified only once the front ends answered as green"
    finally:
        app.close()


@pytest.mark.parametrize(
    "cloud, seconds",
    [
        ("aws", cloudwatch.VERIFY_TIMEOUT_S),
        ("gcp", cloud_monitoring.VERIFY_TIMEOUT_S),
        ("azure", azure_source.VERIFY_TIMEOUT_S),
    ],
)
def test_the_verification_timeout_is_the_clouds_own(tmp_path: Path, cloud: str, seconds: float) -> None:
    """Without an override the pipeline waits as long as the cloud's propagation takes."""
    with mock_aws() if cloud == "aws" else contextlib.nullcontext():
        fake_cloud = CLOUDS[cloud]()
        (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
        fake = FakePulumiCommand({"bluegreen:cloud": cloud}, fake_cloud.metrics, tmp_path / "Pulumi.prod.yaml")
        target = PulumiStackTarget("prod", tmp_path, pulumi_command=fake, **fake_cloud.options())
        pipeline = Pipeline(target, RunRecord("prod", "t", Console(file=io.StringIO())), PipelineOptions(Path("x")))
        assert target.verify_timeout_s() == pipeline.verify_timeout_s() == seconds
    assert cloudwatch.VERIFY_TIMEOUT_S < cloud_monitoring.VERIFY_TIMEOUT_S < azure_source.VERIFY_TIMEOUT_S
