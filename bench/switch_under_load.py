"""Switch blue <-> green N times while R req/s flow through the prod frontend.

    python -m bench.switch_under_load --rate 2000 --switches 200

Brings up a throwaway local stack (its own project root under /tmp, free ports),
runs an open-loop load generator against the prod frontend, switches with
``LocalEnvironment.switch`` (the same checks and ``set map`` the pipeline uses), and
prints requests sent, failed, wrong-colour-after-switch and switch latency (command
issued -> first response from the new colour) p50/p99. Everything it started is
stopped at the end.
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from components.config import other_color
from scripts.load import SteadyLoad, SwitchMark, analyze_switches
from tests.local.sandbox import scratch_project


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.switch_under_load", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000, help="requests per second (default 2000)")
    parser.add_argument("--switches", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between switches")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive client connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per colour")
    args = parser.parse_args(argv)
    console = Console()
    with scratch_project("bench") as project:
        config = project.write(local={"app_workers": args.workers, "app_threads": 8})
        env = project.environment(config)
        with console.status("bringing a scratch stack up"):
            env.up()
        load = SteadyLoad(env.live_url, rate=args.rate, connections=args.connections).start()
        marks: list[SwitchMark] = []
        switch_ms: list[float] = []
        try:
            time.sleep(1.0)
            color = env.status()["live_color"]
            with console.status("switching") as status:
                for number in range(1, args.switches + 1):
                    color = other_color(color)
                    begun = time.monotonic()
                    result = env.switch(color)
                    completed = time.monotonic()
                    marks.append(SwitchMark(color, begun, completed, result["routed_at"]))
                    switch_ms.append((completed - begun) * 1000)
                    status.update(f"switch {number}/{args.switches} -> {color}")
                    time.sleep(args.interval)
            time.sleep(0.5)
        finally:
            report = load.stop()
        analysis = analyze_switches(report, marks)
    table = Table(title=f"{args.switches} switches at {args.rate:.0f} req/s")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("requests sent", f"{analysis.sent}"),
        ("achieved rate", f"{report.achieved_rate:.0f} req/s"),
        ("failed", f"{analysis.failed}"),
        ("wrong colour after switch", f"{analysis.wrong_color_after_switch}"),
        ("switch latency p50 (to first new-colour response)", f"{analysis.percentile(50):.1f} ms"),
        ("switch latency p99", f"{analysis.percentile(99):.1f} ms"),
        ("switch command p50 (checks + set map + verify)", f"{analysis.percentile(50, switch_ms):.1f} ms"),
        (
            "route change -> first new-colour response p50/p99",
            f"{analysis.percentile(50, analysis.route_latencies_ms):.1f} / "
            f"{analysis.percentile(99, analysis.route_latencies_ms):.1f} ms",
        ),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if report.failed:
        console.print(f"failures by kind: {report.summary()['failures']}")
    return 0 if analysis.failed == 0 and analysis.wrong_color_after_switch == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
