"""Benchmark: how fast a bad release is rolled back on the local target, at a steady request rate.

For each run a faulty version goes through the real ``deploy`` (smoke passes, then the
version fails a share of requests once live) while a steady load runs against the
live route. Measured from the load generator's side:

- reaction: first failed request of the bad release -> the last answer it served
  (after which 100% of traffic is back on the old colour);
- failed requests in between, and all requests in between;
- detection: first failed request -> the monitor's rollback decision (from the run record);
- the rollback's apply time (``set map`` on HAProxy plus the stack file write; on the
  engine path, HAProxy first plus the reconciling ``pulumi up``).

Runs in a throwaway project root with free ports (tests/local/sandbox.py); nothing of
the repository's dev stack is touched. ``python -m bench.rollback_reaction [--runs 5]
[--rate 50] [--path runtime|pulumi]``: ``pulumi`` drives the stack through the Pulumi
CLI and the Automation API (``make pulumi`` first), ``runtime`` through the local runtime.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from components.config import StackConfig  # noqa: E402
from components.local.runtime import LocalEnvironment  # noqa: E402
from scripts.__main__ import main  # noqa: E402
from scripts.load import SteadyLoad, rollback_reaction  # noqa: E402
from scripts.targets import ENGINE_ENV  # noqa: E402
from scripts.targets.local_engine import LocalEngineTarget  # noqa: E402
from tests.local.sandbox import scratch_project  # noqa: E402

STACK = "bench"
FAULTY = ("2.1.0", "2.1.1")  # alternate, so the idle colour restarts with a fresh fault clock


def stack_values(args: argparse.Namespace) -> dict[str, object]:
    faults = {v: {"error_rate": args.error_rate, "after_s": args.fault_after_s} for v in FAULTY}
    return {
        "monitor": {
            "max_error_rate": args.max_error_rate,
            "max_p99_ms": 1000,
            "window_s": args.window_s,
            "interval_s": args.interval_s,
            "bake_s": 60,
            "on_no_data": "hold",
        },
        "scale_down_delay_s": 0,
        "local": {"app_workers": 2, "app_threads": 4, "faults": faults},
    }


def one_run(root: Path, version: str, rate: float, index: int) -> dict[str, float | int | str]:
    env = LocalEnvironment(StackConfig.from_stack_file(STACK, root), root)
    report = root / f"run-{index}.json"
    old_color = env.config.live_color
    bad_color = env.config.idle_color
    with SteadyLoad(env.live_url, rate=rate, connections=8) as load:
        time.sleep(1.0)
        deploy = ["deploy", "--stack", STACK, "--project-dir", str(root), "--version", version]
        code = main([*deploy, "--report", str(report)])
        time.sleep(1.0)
    reaction = rollback_reaction(load.stats, bad_color, after_s=0)
    record = json.loads(report.read_text())
    rollback = next((e for e in record["events"] if e["kind"] == "rollback"), None)
    if code != 1 or reaction is None or rollback is None:
        raise SystemExit(f"run {index}: expected an automatic rollback, got exit {code} ({record['outcome']})")
    decided = datetime.fromisoformat(rollback["at"]).timestamp() - rollback["evidence"]["seconds"]
    first_failure_wall = load.started_wall + reaction["first_failure_s"]
    return {
        "run": index,
        "version": version,
        "from": bad_color,
        "back_to": old_color,
        "reaction_s": reaction["reaction_s"],
        "failed": reaction["failed_in_between"],
        "requests": reaction["requests_in_between"],
        "detection_s": round(decided - first_failure_wall, 3),
        "apply_s": rollback["evidence"]["seconds"],
        "sent": load.stats.sent,
        "failed_total": load.stats.failed,
    }


def main_bench() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=50.0, help="steady load, requests/s")
    parser.add_argument("--error-rate", type=float, default=0.3, help="share of requests the bad release fails")
    parser.add_argument("--fault-after-s", type=float, default=6.0, help="faults start this long after process start")
    parser.add_argument("--max-error-rate", type=float, default=0.02)
    parser.add_argument("--window-s", type=int, default=5)
    parser.add_argument("--interval-s", type=float, default=1.0, help="the monitor's longest pause (it streams)")
    parser.add_argument("--path", choices=("runtime", "pulumi"), default="runtime", help="how the stack is applied")
    args = parser.parse_args()
    os.environ[ENGINE_ENV] = args.path
    console = Console()
    results = []
    with scratch_project(STACK, pulumi_project=args.path == "pulumi") as project:
        project.write(**stack_values(args))
        console.print(f"bringing up a local stack in {project.root} through the {args.path} path")
        if args.path == "pulumi":
            LocalEngineTarget(STACK, project.root).apply({}, progress=lambda _line: None)
        else:
            project.environment().up()
        for index in range(1, args.runs + 1):
            results.append(one_run(project.root, FAULTY[(index - 1) % 2], args.rate, index))
            console.print(results[-1])
    table = Table(
        title=f"rollback reaction ({args.path} path) at {args.rate:g} req/s: "
        f"bad release fails {args.error_rate:.0%} of requests; "
        f"monitor every {args.interval_s}s over {args.window_s}s, max_error_rate {args.max_error_rate:g}",
        title_justify="left",
    )
    for column in ("run", "reaction s", "failed", "requests", "detection s", "rollback apply s"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(*(str(r[k]) for k in ("run", "reaction_s", "failed", "requests", "detection_s", "apply_s")))
    for label, fn in (("median", statistics.median), ("max", max)):
        table.add_row(
            label,
            *(f"{fn([float(r[k]) for r in results]):.3f}" for k in ("reaction_s", "failed", "requests")),
            *(f"{fn([float(r[k]) for r in results]):.3f}" for k in ("detection_s", "apply_s")),
        )
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main_bench())
