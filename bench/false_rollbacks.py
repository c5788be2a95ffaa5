"""Benchmark: healthy releases under noisy traffic must not be rolled back.

Each run deploys a new healthy version through the real ``deploy`` on a throwaway local
stack while a steady load runs. Every version carries background noise through the
example app's faults: a share of failed requests (default 0.5%) and occasional slow
ones (default 0.5% take 600 ms), against ``max_error_rate`` 0.02 and ``max_p99_ms`` 500.
The monitor streams (judged per batch of requests), so every release is judged a few
hundred times. Prints, per release, the outcome and the requests judged, then the
number of false rollbacks.

``python -m bench.false_rollbacks [--releases 20] [--rate 50] [--bake-s 10]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from components.config import StackConfig  # noqa: E402
from components.local.runtime import LocalEnvironment  # noqa: E402
from scripts.__main__ import main  # noqa: E402
from scripts.load import SteadyLoad  # noqa: E402
from scripts.targets import ENGINE_ENV  # noqa: E402
from tests.local.sandbox import scratch_project  # noqa: E402

STACK = "noise"


def versions(count: int) -> list[str]:
    return [f"3.0.{i}" for i in range(1, count + 1)]


def main_bench() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=20)
    parser.add_argument("--rate", type=float, default=50.0, help="steady load, requests/s")
    parser.add_argument("--error-rate", type=float, default=0.005, help="background share of failed requests")
    parser.add_argument("--slow-rate", type=float, default=0.005, help="background share of 600 ms requests")
    parser.add_argument("--bake-s", type=int, default=10)
    args = parser.parse_args()
    os.environ[ENGINE_ENV] = "runtime"
    noise = {"error_rate": args.error_rate, "latency_ms": 600, "slow_rate": args.slow_rate}
    console = Console()
    rows = []
    with scratch_project(STACK) as project:
        project.write(
            monitor={
                "max_error_rate": 0.02,
                "max_p99_ms": 500,
                "window_s": 5,
                "interval_s": 0.25,
                "bake_s": args.bake_s,
                "on_no_data": "hold",
            },
            scale_down_delay_s=0,
            local={"app_workers": 2, "app_threads": 8, "faults": {v: noise for v in versions(args.releases)}},
        )
        project.environment().up()
        for index, version in enumerate(versions(args.releases), start=1):
            env = LocalEnvironment(StackConfig.from_stack_file(STACK, project.root), project.root)
            report = project.root / f"release-{index}.json"
            with SteadyLoad(env.live_url, rate=args.rate, connections=8) as load:
                code = main(["deploy", *project.cli_args(), "--version", version, "--report", str(report)])
            record = json.loads(report.read_text())
            judged = sum(1 for e in record["events"] if e["kind"] == "check")
            rows.append((index, version, record["outcome"], code, load.stats.sent, load.stats.failed, judged))
            console.print(rows[-1])
            time.sleep(0.5)
    table = Table(
        title=f"false rollbacks: {args.releases} healthy releases at {args.rate:g} req/s with "
        f"{args.error_rate:.1%} failed and {args.slow_rate:.1%} slow requests "
        f"(max_error_rate 0.02, max_p99_ms 500, bake {args.bake_s}s)",
        title_justify="left",
    )
    for column in ("release", "version", "outcome", "exit", "requests", "failed", "checks recorded"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)
    rolled = sum(1 for row in rows if row[2] != "released")
    console.print(f"rollbacks (or other non-release outcomes): {rolled} of {len(rows)}")
    return 0 if rolled == 0 else 1


if __name__ == "__main__":
    sys.exit(main_bench())
