"""The Automation API target with a fake PulumiCommand: set-config then up, restore on failure, lock."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from components.config import ConfigError
from scripts.lock import StackLock, StackLockedError
from scripts.targets import TargetError
from scripts.targets.pulumi_stack import PulumiStackTarget, config_paths, config_text
from tests.pipeline.fake_pulumi import FakePulumiCommand

ROOT = Path(__file__).resolve().parents[2]
PROD = {"bluegreen:cloud": "aws", "bluegreen:live_color": "blue", "bluegreen:green_version": "1.4.2"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory of its own: the fake CLI writes the stack file there, as the real one does."""
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    return tmp_path


def fake_cli(project: Path, config: dict[str, str] = PROD) -> FakePulumiCommand:
    return FakePulumiCommand(config, stack_file=project / "Pulumi.prod.yaml")


def target(fake: FakePulumiCommand) -> PulumiStackTarget:
    assert fake.stack_file is not None
    return PulumiStackTarget("prod", fake.stack_file.parent, pulumi_command=fake)


def test_switch_sets_config_then_runs_up(project: Path) -> None:
    fake = fake_cli(project)
    seen: list[str] = []
    outputs = target(fake).apply({"live_color": "green"}, progress=seen.append)
    set_call, up_call = fake.commands("config", "up")
    assert set_call[:2] == ["config", "set-all"] and "bluegreen:live_color=green" in set_call
    assert up_call[:3] == ["up", "--yes", "--skip-preview"] and "prod" in up_call
    assert outputs["live_color"] == "green" and outputs["idle_color"] == "blue"
    assert fake.config["bluegreen:live_color"]["value"] == "green"
    assert any("live_color=green" in line for line in seen)


def test_failed_up_restores_the_previous_colour_and_reapplies_it(project: Path) -> None:
    fake = fake_cli(project)
    fake.fail_up = 1
    with pytest.raises(TargetError, match="previous config restored \\(stack re-applied with it\\)") as caught:
        target(fake).apply({"live_color": "green", "warm_idle": True})
    assert "listener rule conflict" in str(caught.value)
    assert fake.config["bluegreen:live_color"]["value"] == "blue"
    assert "bluegreen:warm_idle" not in fake.config  # was unset before: removed again
    steps = [c[:2] for c in fake.commands("config", "up")]
    assert steps == [["config", "set-all"], ["up", "--yes"], ["config", "set-all"], ["config", "rm"], ["up", "--yes"]]
    assert fake.applied[-1]["live_color"] == "blue"


def test_failed_reconverge_says_so(project: Path) -> None:
    fake = fake_cli(project)
    fake.fail_up = 2
    with pytest.raises(TargetError, match="re-applying it failed too"):
        target(fake).apply({"live_color": "green"})
    assert fake.config["bluegreen:live_color"]["value"] == "blue"


def test_invalid_change_touches_nothing(project: Path) -> None:
    fake = fake_cli(project)
    with pytest.raises(ConfigError, match="bluegreen:live_color = 'purple'"):
        target(fake).apply({"live_color": "purple"})
    assert fake.commands("config", "up") == []


def test_config_and_outputs_are_read_through_the_cli(project: Path) -> None:
    fake = fake_cli(project)
    t = target(fake)
    assert t.config().cloud == "aws" and t.config().green_version == "1.4.2"
    assert t.outputs()["preview_url"] == "https://app.example.com:8443"


def _hold_lock(root: str, ready, release) -> None:
    with StackLock(root, "prod", "deploy --version 2.0.0"):
        ready.set()
        release.wait(10)


def test_lock_refuses_a_second_deploy_with_who_holds_it(tmp_path) -> None:
    context = multiprocessing.get_context("fork")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(str(tmp_path), ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(StackLockedError) as caught, StackLock(tmp_path, "prod", "rollback"):
            pass
        message = str(caught.value)
        assert f"pid {holder.pid} running 'deploy --version 2.0.0'" in message
        assert "only one deploy" in message
    finally:
        release.set()
        holder.join(10)
    with StackLock(tmp_path, "prod", "rollback"):  # free again once the holder is gone
        pass
    with StackLock(tmp_path, "dev", "deploy"), StackLock(tmp_path, "prod", "deploy"):
        pass  # stacks lock independently


def test_shared_database_is_reachable_only_through_bluegreen_database_url(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = target(fake_cli(project))
    monkeypatch.delenv("BLUEGREEN_DATABASE_URL", raising=False)
    assert t.shared_database("blue") is None, "cloud databases are private: no URL, no rehearsal"
    monkeypatch.setenv("BLUEGREEN_DATABASE_URL", "postgresql://app@db.internal/app")
    shared = t.shared_database("green")
    assert shared is not None and shared.url == "postgresql://app@db.internal/app"
    assert shared.admin_url is None, "the rehearsal rebuilds from history instead of copying"
    assert shared.app_environment == {"APP_VERSION": "1.4.2", "APP_COLOR": "green"}


def test_lists_and_mappings_are_set_as_paths_replacing_the_whole_key(project: Path) -> None:
    fake = fake_cli(project, {**PROD, "bluegreen:preview_cidrs": '["10.0.0.0/8"]'})
    target(fake).apply({"preview_cidrs": ["10.1.0.0/16", "10.2.0.0/16"], "monitor": {"bake_s": 30}})
    calls = fake.commands("config")
    assert calls[0][:3] == ["config", "rm", "bluegreen:preview_cidrs"]  # a shorter list keeps no old tail
    assert "--path" in calls[1] and "bluegreen:preview_cidrs[1]=10.2.0.0/16" in calls[1]
    assert "--path" in calls[2] and "bluegreen:monitor.bake_s=30" in calls[2]
    assert config_paths("k", {"faults": {"2.1.0": {"after_s": 8}}, "on": True}) == {
        'k.faults["2.1.0"].after_s': "8",
        "k.on": "true",
    }
    assert config_paths("k", []) == {"k": "[]"} and config_text(3) == "3"


@pytest.mark.parametrize("cloud, window_s, bake_s", [("aws", 120, 300), ("gcp", 300, 600), ("azure", 300, 600)])
def test_each_cloud_sizes_the_monitor_for_its_metrics_lag(
    project: Path, cloud: str, window_s: int, bake_s: int
) -> None:
    """Cloud metrics come per minute and minutes late: the cloud's window and bake unless the stack sets them."""
    fake = FakePulumiCommand({**PROD, "bluegreen:cloud": cloud}, stack_file=project / "Pulumi.prod.yaml")
    monitor = target(fake).config().monitor
    assert (monitor.window_s, monitor.bake_s, monitor.interval_s) == (window_s, bake_s, 5.0)
    own = FakePulumiCommand(
        {**PROD, "bluegreen:cloud": cloud, "bluegreen:monitor": {"window_s": 90}},
        stack_file=project / "Pulumi.prod.yaml",
    )
    assert (target(own).config().monitor.window_s, target(own).config().monitor.bake_s) == (90, bake_s)
    assert "window_s" not in (project / "Pulumi.prod.yaml").read_text().replace("window_s: 90", ""), "never written"
