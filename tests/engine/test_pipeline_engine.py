"""The pipeline on a local stack through the Automation API (``LocalEngineTarget``), for real.

The same commands as tests/pipeline/test_e2e_local.py, on a project the CLI can run:
``deploy`` of a good release, of a faulty one that is rolled back, and ``rollback``.
After each, ``pulumi preview`` must report no change: the routing-first rollback left
the stack reconciled.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import yaml

from components.config import StackConfig
from scripts.__main__ import main
from scripts.load import SteadyLoad, rollback_reaction
from scripts.targets import TargetError, open_target
from scripts.targets.local_engine import LocalEngineTarget
from tests.engine.conftest import Cli
from tests.engine.test_policy_pack import BREAKING_EXPAND, own_migrations
from tests.pipeline.test_e2e_local import MONITOR, SETTINGS, fast_smoke_file

pytestmark = pytest.mark.e2e


def deploy(cli: Cli, version: str, rate: float = 40) -> tuple[int, dict, object]:
    report = cli.root / f"report-{version}.json"
    args = ["deploy", *cli.project.cli_args(), "--version", version, "--report", str(report)]
    args += ["--file", str(fast_smoke_file(cli.root))]
    with SteadyLoad(cli.outputs()["live_url"], rate=rate, connections=6, write_ratio=0.2) as load:
        time.sleep(1.0)
        code = main(args)
        time.sleep(1.0)
    return code, json.loads(report.read_text()), load.stats


def test_releases_and_rollbacks_through_the_automation_api(new_stack: Callable[..., Cli], capsys) -> None:
    faults = {"2.1.0": {"error_rate": 0.5, "after_s": 6}}
    cli = new_stack(monitor={**MONITOR, "bake_s": 20}, scale_down_delay_s=1, local={**SETTINGS, "faults": faults})
    cli.up()
    target = open_target(cli.project.stack, cli.root)
    assert isinstance(target, LocalEngineTarget)

    code, record, stats = deploy(cli, "2.0.0")
    assert code == 0 and record["outcome"] == "released", record.get("summary")
    assert stats.failed == 0, stats.summary()
    assert any("Pulumi engine" in e["message"] for e in record["events"] if e["kind"] == "target")
    assert cli.outputs()["live_color"] == "green" and cli.outputs()["green_version"] == "2.0.0"
    cli.run("preview", "--non-interactive", "--expect-no-changes")

    # A rollback by hand: routing first, then the stack reconciled.
    with SteadyLoad(cli.outputs()["live_url"], rate=40, connections=4) as load:
        time.sleep(0.5)
        assert main(["rollback", *cli.project.cli_args(), "--reason", "by hand"]) == 0
        time.sleep(0.5)
    assert load.stats.failed == 0 and {a.color for a in load.stats.answers[-10:]} == {"blue"}
    assert cli.outputs()["live_color"] == "blue"
    cli.run("preview", "--non-interactive", "--expect-no-changes")

    # A release that fails after the switch is rolled back automatically, on the engine path too.
    code, record, stats = deploy(cli, "2.1.0")
    assert code == 1 and record["outcome"] == "rolled back", record.get("summary")
    reaction = rollback_reaction(stats, "green", after_s=0)
    assert reaction is not None and reaction["failed_in_between"] > 0
    print(f"engine path rollback reaction: {reaction}")
    assert {a.color for a in stats.answers[-10:]} == {"blue"} and all(a.ok for a in stats.answers[-10:])
    assert cli.outputs()["live_color"] == "blue"
    cli.run("preview", "--non-interactive", "--expect-no-changes")
    capsys.readouterr()


def test_the_pipeline_up_runs_the_policy_pack_and_a_refused_up_restores_the_stack_config(
    new_stack: Callable[..., Cli],
) -> None:
    cli = new_stack()
    own_migrations(cli)
    cli.up()
    stack_file = cli.root / f"Pulumi.{cli.project.stack}.yaml"
    before = yaml.safe_load(stack_file.read_text())["config"]
    (cli.root / "migrations" / "005_drop_item.sql").write_text(BREAKING_EXPAND)

    target = LocalEngineTarget(cli.project.stack, cli.root)
    with pytest.raises(TargetError) as refused:
        target.apply({"preview_cidrs": ["127.0.0.1/32", "127.0.0.2/32"], "capacity": 2})
    assert "migrations-backward-compatible" in str(refused.value)
    after = yaml.safe_load(stack_file.read_text())["config"]
    # The same keys (no project default written in), the same values (a list stays a list).
    assert set(after) == set(before), set(after) ^ set(before)
    assert (
        target.config()
        == cli.project.config()
        == StackConfig.parse(
            {k.split(":", 1)[1]: v for k, v in before.items() if k.startswith("bluegreen:")}, cli.project.stack
        )
    )
