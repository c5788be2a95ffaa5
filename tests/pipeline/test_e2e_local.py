"""Releases on a real local stack under steady load: HAProxy, PostgreSQL and app processes on 127.0.0.1.

A good release switches with zero failed requests; a release whose new version fails
smoke is never switched to; a release that starts failing after the switch is rolled
back automatically; the database keeps every row written during the run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from components.local.runtime import LocalEnvironment
from scripts.__main__ import main
from scripts.load import LoadStats, SteadyLoad, rollback_reaction
from scripts.lock import StackLock
from scripts.targets import ENGINE_ENV
from tests.local.sandbox import LocalProject, scratch_project

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
MONITOR = {"max_error_rate": 0.02, "max_p99_ms": 1000, "window_s": 4, "interval_s": 1, "bake_s": 6}
SETTINGS = {"app_workers": 1, "app_threads": 4}


def fast_smoke_file(directory: Path) -> Path:
    """The repository's smoke.yaml with a short retry budget, so a failing check fails in seconds."""
    suite = yaml.safe_load((REPO / "examples/orders/smoke.yaml").read_text())
    suite["settings"].update(timeout_s=6, attempts=3, backoff_s=0.2, max_backoff_s=0.5)
    path = directory / "smoke-fast.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def start(project: LocalProject, **changes: Any) -> LocalEnvironment:
    project.write(**{"monitor": MONITOR, "scale_down_delay_s": 1, **changes})
    env = project.environment()
    env.up()
    return env


def deploy_under_load(project: LocalProject, env: LocalEnvironment, version: str, smoke: Path) -> tuple[int, LoadStats]:
    report = project.root / "report.json"
    args = ["deploy", *project.cli_args(), "--version", version, "--file", str(smoke), "--report", str(report)]
    with SteadyLoad(env.live_url, rate=40, connections=6, write_ratio=0.3) as load:
        time.sleep(1.0)
        code = main(args)
        time.sleep(1.5)
    return code, load.stats


def report_of(project: LocalProject) -> dict[str, Any]:
    return json.loads((project.root / "report.json").read_text())


def rows_missing(env: LocalEnvironment, order_ids: list[int]) -> list[int]:
    with psycopg.connect(env.database_url()) as conn:
        found = {r[0] for r in conn.execute("SELECT id FROM orders WHERE id = ANY(%s)", [order_ids])}
    return sorted(set(order_ids) - found)


def test_good_release_switches_with_zero_failed_requests(local_project: LocalProject, capsys) -> None:
    env = start(local_project)
    code, stats = deploy_under_load(local_project, env, "2.0.0", fast_smoke_file(local_project.root))

    assert code == 0
    assert stats.sent > 150 and stats.failed == 0, stats.summary()
    assert stats.by_color().keys() == {"blue", "green"}
    tail = stats.answers[-20:]
    assert {(a.color, a.version) for a in tail} == {("green", "2.0.0")}
    assert stats.order_ids() and rows_missing(env, stats.order_ids()) == []

    config = local_project.config()
    assert (config.live_color, config.green_version, config.warm_idle) == ("green", "2.0.0", False)
    record = report_of(local_project)
    assert record["outcome"] == "released" and record["exit_code"] == 0
    kinds = [e["kind"] for e in record["events"]]
    assert kinds.index("smoke") < kinds.index("switch") < kinds.index("promote")
    checks = [e for e in record["events"] if e["kind"] == "check"]
    assert checks and all(e["evidence"]["max_error_rate"] == 0.02 for e in checks)
    assert record["traffic"], "the run records traffic per colour for the timeline"

    capsys.readouterr()
    assert main(["status", *local_project.cli_args(), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    for key in ("live_color", "idle_color", "live_url", "preview_url", "blue_version", "green_version", "metrics"):
        assert key in status
    assert status["live_color"] == "green" and status["green_version"] == "2.0.0"
    assert status["health"]["green"]["ok"] and status["metrics"]["source"] == "haproxy"
    assert status["last_decision"]["kind"] == "promote"


def test_release_that_never_becomes_ready_is_never_switched_to(local_project: LocalProject) -> None:
    faults = {"2.1.0": {"fail_readiness": True}}
    env = start(local_project, local={**SETTINGS, "faults": faults}, startup_timeout_s=3)
    code, stats = deploy_under_load(local_project, env, "2.1.0", fast_smoke_file(local_project.root))

    assert code == 1
    assert stats.failed == 0 and set(stats.by_color()) == {"blue"}, stats.summary()
    config = local_project.config()
    assert (config.live_color, config.warm_idle) == ("blue", False)
    assert env.status()["live_color"] == "blue"
    record = report_of(local_project)
    assert record["outcome"] == "not healthy"
    assert "switch" not in [e["kind"] for e in record["events"]]
    assert "readiness" in record["summary"]["reason"] and "/readyz answered HTTP 503" in record["summary"]["reason"]
    assert rows_missing(env, stats.order_ids()) == []


def test_release_failing_smoke_is_never_switched_to(local_project: LocalProject) -> None:
    env = start(local_project)
    smoke = fast_smoke_file(local_project.root)
    suite = yaml.safe_load(smoke.read_text())
    suite["checks"].append(
        {"name": "a business rule it breaks", "path": "/healthz", "expect": {"fields": {"version": "0"}}}
    )
    smoke.write_text(yaml.safe_dump(suite))
    code, stats = deploy_under_load(local_project, env, "2.1.0", smoke)

    assert code == 1
    assert stats.failed == 0 and set(stats.by_color()) == {"blue"}, stats.summary()
    assert local_project.config().live_color == "blue" and not local_project.config().warm_idle
    record = report_of(local_project)
    assert record["outcome"] == "smoke failed"
    assert "switch" not in [e["kind"] for e in record["events"]]
    failed = next(e for e in record["events"] if e["kind"] == "smoke" and "passed" in e["evidence"])
    assert [f["name"] for f in failed["evidence"]["failed"]] == ["a business rule it breaks"]


def test_release_failing_after_switch_is_rolled_back_automatically(local_project: LocalProject, capsys) -> None:
    faults = {"2.1.0": {"error_rate": 0.5, "after_s": 5}}
    monitor = {**MONITOR, "bake_s": 20}
    env = start(local_project, local={**SETTINGS, "faults": faults}, monitor=monitor)
    code, stats = deploy_under_load(local_project, env, "2.1.0", fast_smoke_file(local_project.root))

    assert code == 1
    record = report_of(local_project)
    assert record["outcome"] == "rolled back"
    rollback = next(e for e in record["events"] if e["kind"] == "rollback")
    assert "error rate" in rollback["evidence"]["reason"] and rollback["evidence"]["seconds"] < 5
    assert rollback["evidence"]["evidence"]["check"]["error_rate"] > 0.02

    reaction = rollback_reaction(stats, "green", after_s=0)
    assert reaction is not None and 0 < reaction["failed_in_between"] < stats.sent / 4
    assert reaction["reaction_s"] < MONITOR["window_s"] + 5
    tail = stats.answers[-20:]
    assert {a.color for a in tail} == {"blue"} and all(a.ok for a in tail)
    assert local_project.config().live_color == "blue" and env.status()["live_color"] == "blue"
    assert local_project.config().warm_idle is False
    assert rows_missing(env, stats.order_ids()) == []

    # green still runs the rolled-back 2.1.0: switching onto it is refused unless forced.
    args = local_project.cli_args()
    capsys.readouterr()
    assert main(["status", *args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rolled_back"]["green"]["version"] == "2.1.0"
    assert main(["switch", *args, "--to", "green"]) == 2
    assert local_project.config().live_color == "blue"
    assert main(["switch", *args, "--to", "green", "--force"]) == 0
    assert local_project.config().live_color == "green"


def test_bad_smoke_file_is_exit_2_naming_the_line_and_changes_nothing(local_project: LocalProject, capsys) -> None:
    broken = local_project.root / "broken.yaml"
    broken.write_text("checks:\n  - name: a\n    path: healthz\n")
    before = (local_project.root / "Pulumi.t.yaml").read_text()
    code = main(["deploy", *local_project.cli_args(), "--version", "2.0.0", "--file", str(broken)])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{broken}:3:" in err.replace("\n", "") and "absolute URL path" in err.replace("\n", "")
    assert (local_project.root / "Pulumi.t.yaml").read_text() == before


def test_second_deploy_on_a_locked_stack_fails_fast(local_project: LocalProject, capsys) -> None:
    before = (local_project.root / "Pulumi.t.yaml").read_text()
    with StackLock(local_project.root, local_project.stack, "deploy --version 2.0.0"):
        started = time.monotonic()
        code = main(["deploy", *local_project.cli_args(), "--version", "3.0.0"])
        took = time.monotonic() - started
    assert code == 2 and took < 5
    err = " ".join(capsys.readouterr().err.split())
    assert "is locked by another run" in err and "deploy --version 2.0.0" in err
    assert (local_project.root / "Pulumi.t.yaml").read_text() == before


def test_gradual_switch_rollback_smoke_and_monitor_commands(local_project: LocalProject, capsys) -> None:
    env = start(local_project, switch_steps=[50, 100], monitor={**MONITOR, "window_s": 2, "bake_s": 2})
    smoke = str(fast_smoke_file(local_project.root))
    args = local_project.cli_args()
    assert main(["smoke", *args, "--file", smoke]) == 0  # the idle colour, through the preview route
    with SteadyLoad(env.live_url, rate=40, connections=6) as load:
        time.sleep(0.5)
        switched_at = load.now_s()
        assert main(["switch", *args, "--to", "green"]) == 0
        after_switch = load.now_s()
        assert main(["monitor", *args]) == 0
        assert main(["rollback", *args, "--reason", "test"]) == 0
        time.sleep(0.5)
    stats = load.stats
    assert stats.failed == 0, stats.summary()
    during = stats.between(switched_at, after_switch).by_color()
    assert during.get("blue", 0) > 10 and during.get("green", 0) > 10  # the 50% step served both
    assert {a.color for a in stats.answers[-10:]} == {"blue"}
    config = local_project.config()
    assert (config.live_color, config.live_traffic_percent) == ("blue", 100)
    with pytest.raises(SystemExit) as rejected:
        main(["smoke", *args, "--color", "purple"])
    assert rejected.value.code == 2
    capsys.readouterr()
    assert main(["status", *args, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["last_decision"]["kind"] == "rollback" and "test" in status["last_decision"]["message"]


@pytest.mark.parametrize("path", ["runtime", "pulumi"])
def test_demo_tells_the_whole_story(path: str, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's run command on a stack shaped like dev: a release goes live, the faulty one rolls back.

    On both paths: ``pulumi`` is what ``make demo`` takes where the CLI is (the project is
    a whole Pulumi project), ``runtime`` what it takes without one.
    """
    monkeypatch.setenv(ENGINE_ENV, path)
    with scratch_project(pulumi_project=path == "pulumi") as local_project:
        told = demo_story(local_project, capsys)
    assert ("through the Pulumi engine" in told) == (path == "pulumi")


def demo_story(local_project: LocalProject, capsys) -> str:
    """Run the demo on the project and check its story; what it printed."""
    dev = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())["config"]
    local_project.write(
        monitor=dev["bluegreen:monitor"],
        scale_down_delay_s=dev["bluegreen:scale_down_delay_s"],
        local={**SETTINGS, **dev["bluegreen:local"]},
    )
    assert main(["demo", *local_project.cli_args(), "--rate", "20"]) == 0
    out = " ".join(capsys.readouterr().err.split())
    assert "what happened" in out and "all still in the database" in out
    reports = local_project.root / "reports"
    assert {p.name for p in reports.iterdir()} >= {"deploy-2.0.0.json", "deploy-2.0.0.png", "deploy-2.1.0.png"}
    good = json.loads((reports / "deploy-2.0.0.json").read_text())
    bad = json.loads((reports / "deploy-2.1.0.json").read_text())
    assert (good["outcome"], bad["outcome"]) == ("released", "rolled back")
    assert local_project.config().live_color == "green"
    return out


def test_a_rollback_moves_traffic_only_so_a_dead_database_does_not_stop_it(local_project: LocalProject) -> None:
    env = start(local_project)
    args = local_project.cli_args()
    assert main(["switch", *args, "--to", "green"]) == 0
    env.postgres.stop()
    try:
        assert main(["rollback", *args, "--reason", "database down"]) == 0
        assert local_project.config().live_color == "blue"
        assert env.haproxy.current_routing().live_color == "blue"
    finally:
        env.up()


def test_a_release_failing_after_its_bake_is_rolled_back_by_the_guard(local_project: LocalProject) -> None:
    """Faults start after the bake (6 s) but while the old colour is still warm (scale_down_delay_s 30)."""
    faults = {"2.1.0": {"error_rate": 0.5, "after_s": 16}}
    env = start(local_project, local={**SETTINGS, "faults": faults}, scale_down_delay_s=30)
    code, stats = deploy_under_load(local_project, env, "2.1.0", fast_smoke_file(local_project.root))

    assert code == 1
    record = report_of(local_project)
    assert record["outcome"] == "rolled back after promotion", record["summary"]
    kinds = [e["kind"] for e in record["events"]]
    assert kinds.index("promote") < kinds.index("rollback")
    assert "breach" in record["summary"]["guard"]
    assert local_project.config().live_color == "blue" and env.status()["live_color"] == "blue"
    tail = stats.answers[-20:]
    assert {a.color for a in tail} == {"blue"} and all(a.ok for a in tail)
