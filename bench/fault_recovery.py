"""Kill a part of a running local stack under steady load; count what failed until it served again.

    python -m bench.fault_recovery [--runs 3] [--rate 40] [--faults haproxy,app,postgres]

For each fault and each mode, a throwaway stack (its own project root under /tmp, free
ports) is brought up with the real ``up`` command, a steady load runs against the live
URL, and after a warm-up the part is killed by pid with SIGKILL:

- ``haproxy``: the HAProxy master and its worker;
- ``app``: the live colour's gunicorn master and its workers;
- ``postgres``: the PostgreSQL postmaster (the load then writes orders, so it needs the
  database).

Modes: ``supervised`` (the default stack: the supervisor restarts the part) and
``unsupervised`` (``bluegreen:local supervise: false``: nothing comes back until a
person runs ``up``, which this benchmark does ``--person-after-s`` after the kill).
Measured from the load generator's side: failed requests, and the outage from the first
failed request to the answer of the first request that succeeded after the last
failure; when the part was back (a new process recorded; for an app, UP in HAProxy's
check); the slowest answer (HAProxy retries a refused connection, so a short app
outage shows as latency rather than as errors). Everything is stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from components.local.processes import ProcessRecord  # noqa: E402
from components.local.runtime import LocalEnvironment  # noqa: E402
from scripts.__main__ import main as cli  # noqa: E402
from scripts.load import LoadStats, SteadyLoad  # noqa: E402
from tests.local.sandbox import children, scratch_project  # noqa: E402

FAULTS = ("haproxy", "app", "postgres")
MODES = ("unsupervised", "supervised")


def recorded(env: LocalEnvironment, fault: str, color: str) -> ProcessRecord | None:
    if fault == "haproxy":
        return env.haproxy.record()
    if fault == "app":
        return env.apps[color].record()
    return env.postgres.record()


def back(env: LocalEnvironment, fault: str, color: str, old: ProcessRecord) -> bool:
    """A new process runs in place of ``old`` (for an app: and HAProxy's check sees it UP)."""
    record = recorded(env, fault, color)
    if record is None or record == old:
        return False
    return fault != "app" or env.haproxy.health(color) == "UP"


def outage(stats: LoadStats) -> dict[str, Any]:
    failures = stats.failures()
    slowest = max((a.latency_ms for a in stats.answers), default=0.0)
    if not failures:
        return {"failed": 0, "outage_s": 0.0, "max_latency_ms": round(slowest), "recovered": True}
    last = failures[-1]
    back = next((a for a in stats.answers if a.ok and a.sent_s > last.sent_s), None)
    end = back.done_s if back else last.done_s
    return {
        "failed": len(failures),
        "outage_s": round(end - failures[0].sent_s, 2),
        "max_latency_ms": round(slowest),
        "recovered": back is not None,
        "kinds": dict(stats.summary()["failures"]),
    }


def quiet_cli(args: list[str]) -> int:
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        return cli(args)


def one_run(fault: str, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    with scratch_project("bench") as project:
        project.write(local={"app_workers": args.workers, "app_threads": 4, "supervise": mode == "supervised"})
        if quiet_cli(["up", *project.cli_args()]) != 0:
            raise RuntimeError("up failed")
        env = project.environment()
        writes = 0.5 if fault == "postgres" else 0.0
        load = SteadyLoad(env.live_url, rate=args.rate, connections=8, write_ratio=writes).start()
        color = env.status()["live_color"]
        try:
            time.sleep(args.warmup_s)
            old = recorded(env, fault, color)
            if old is None:
                raise RuntimeError(f"{fault}: nothing recorded as running")
            killed_at = load.now_s()
            for pid in [*(children(old.pid) if fault != "postgres" else []), old.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if mode == "unsupervised":
                time.sleep(args.person_after_s)
                quiet_cli(["up", *project.cli_args()])
            while not back(env, fault, color, old) and load.now_s() < killed_at + args.observe_s:
                time.sleep(0.02)
            back_s = load.now_s() - killed_at
            time.sleep(max(0.0, killed_at + args.observe_s - load.now_s()))
        finally:
            stats = load.stop()
        result = outage(stats.between(killed_at - 0.5, float("inf")))
        result["back_s"] = round(back_s, 2)
        status = env.status()
        part = {"haproxy": status["haproxy"], "postgres": status["postgres"]}.get(fault)
        part = part or status["colors"][status["live_color"] or "blue"]
        result["restarts"] = part["restarts"]["count"]
        result["sent"] = stats.sent
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fault_recovery", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per fault and mode (default 3)")
    parser.add_argument("--rate", type=float, default=40, help="requests per second (default 40)")
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated: {', '.join(FAULTS)}")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated: {', '.join(MODES)}")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per colour (default 2)")
    parser.add_argument("--warmup-s", type=float, default=3.0)
    parser.add_argument("--person-after-s", type=float, default=10.0, help="unsupervised: when `up` is run")
    parser.add_argument("--observe-s", type=float, default=15.0, help="load kept this long after the kill")
    parser.add_argument("--json", action="store_true", help="print every run as JSON")
    args = parser.parse_args(argv)
    console = Console(width=max(Console().width, 120))
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for fault in args.faults.split(","):
        for mode in args.modes.split(","):
            for run in range(1, args.runs + 1):
                with console.status(f"{fault}, {mode}: run {run}/{args.runs}"):
                    result = one_run(fault, mode, args)
                results.setdefault((fault, mode), []).append(result)
                if args.json:
                    print(json.dumps({"fault": fault, "mode": mode, "run": run, **result}))
    table = Table(title=f"SIGKILL under {args.rate:.0f} req/s ({args.runs} runs each: median, min-max)")
    for column in ("fault", "mode", "failed requests", "outage s", "part back after s", "slowest answer ms"):
        table.add_column(column)

    def spread(values: list[float]) -> str:
        return f"{statistics.median(values):g} ({min(values):g}-{max(values):g})"

    for (fault, mode), runs in results.items():
        table.add_row(
            fault,
            mode if mode == "supervised" else f"{mode}, up at +{args.person_after_s:g} s",
            spread([r["failed"] for r in runs]),
            spread([r["outage_s"] for r in runs]),
            spread([r["back_s"] for r in runs]),
            spread([r["max_latency_ms"] for r in runs]),
        )
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
