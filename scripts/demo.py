"""``bluegreen demo --stack dev``: the whole story on one machine, under steady load.

1. bring the local stack up (HAProxy, PostgreSQL, both colours);
2. release a good version (default 2.0.0): smoke on the idle colour, switch, monitor;
3. release a deliberately faulty version (default 2.1.0, whose faults the stack's
   ``bluegreen:local.faults`` defines: it passes smoke, then starts failing once live),
   which the monitor rolls back;
4. print what happened: requests served and failed, switch and rollback times, and
   whether every order written during the run is still in the database.

Reports and timelines go to ``reports/``. Exit 0 when the good release went live and the
faulty one was rolled back, 1 otherwise, 2 for bad input (not a local stack, no faults).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import psycopg
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from components.config import ConfigError, StackConfig
from components.local.runtime import LocalTargetError
from components.text_files import read_utf8
from scripts.arguments import cli_name, stack_argument
from scripts.load import LoadStats, SteadyLoad, rollback_reaction
from scripts.pipeline import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from scripts.targets import TargetError, open_target
from scripts.targets.local import LocalTarget


def add_command(subparsers: Any, root: Path) -> None:
    demo = subparsers.add_parser("demo", help="local target: release a good version, then a faulty one that rolls back")
    demo.add_argument("--stack", type=stack_argument, required=True, help="a local stack (reads Pulumi.<stack>.yaml)")
    demo.add_argument("--project-dir", default=str(root), help=argparse.SUPPRESS)
    demo.add_argument("--version", default="2.0.0", help="the good release (default 2.0.0)")
    demo.add_argument("--faulty-version", default="2.1.0", help="the bad release (default 2.1.0)")
    demo.add_argument("--rate", type=float, default=30.0, help="steady load in requests/s (default 30)")
    demo.add_argument("--reports", type=Path, default=None, help="where reports go (default: reports/)")
    demo.add_argument(
        "--from",
        dest="source",
        type=stack_argument,
        default=None,
        help="run on a fresh copy of this stack (Pulumi.<stack>.yaml written from it, ports moved by "
        f"+{PORT_SHIFT}), from scratch each time; the source stack and its file are not touched",
    )
    demo.set_defaults(handler=cmd_demo)


PORT_SHIFT = 100  # the copy's ports, so the demo and the stack it copies can both run
PORT_KEYS = ("listen_port", "preview_port", "app_port")


def fresh_copy(source: str, stack: str, project_dir: Path, console: Console) -> None:
    """Pulumi.<stack>.yaml as a copy of ``source``'s, on a stack brought down and emptied first.

    The demo moves versions and the live colour and applies a contract migration: on a
    stack of its own (git-ignored) none of that touches the tracked stack file or the
    database of the stack a person works on, and every run tells the same story.
    """
    from components.local.postgres import cluster_dir
    from components.local.state import StateDir
    from scripts import local_cli

    if stack == source:
        raise ConfigError(f"--from {source} names the demo's own stack; give another --stack (make demo uses demo)")
    source_file = project_dir / f"Pulumi.{source}.yaml"
    doc = yaml.safe_load(read_utf8(source_file, ConfigError, "stack file")) or {}
    target_file = project_dir / f"Pulumi.{stack}.yaml"
    state = StateDir(project_dir, stack)
    if target_file.exists():
        console.rule(f"a previous demo's stack {stack}: down, and its data removed (the demo starts from scratch)")
        if local_cli.cmd_down(argparse.Namespace(stack=stack, project_dir=str(project_dir))) != 0:
            raise ConfigError(f"the previous demo's stack {stack} did not come down; run make down STACK={stack}")
        for directory in {cluster_dir(state), state.root}:
            shutil.rmtree(directory, ignore_errors=True)
    config = doc.get("config") or {}
    for key in PORT_KEYS:
        value = config.get(f"bluegreen:{key}")
        if isinstance(value, int):
            config[f"bluegreen:{key}"] = value + PORT_SHIFT
    header = (
        f"# Written by the demo from Pulumi.{source}.yaml (ports +{PORT_SHIFT}); git-ignored, rewritten on every\n"
        f"# run. Delete it (after `make down STACK={stack}`) to forget the demo.\n"
    )
    target_file.write_text(header + yaml.safe_dump({"config": config}, sort_keys=False))
    StackConfig.from_stack_file(stack, project_dir)  # valid, or exit 2 before anything starts


def cmd_demo(args: argparse.Namespace) -> int:
    from scripts.pipeline_cli import cmd_deploy

    console = Console(stderr=True)
    try:
        if args.source:
            fresh_copy(args.source, args.stack, Path(args.project_dir), console)
        target = LocalTarget(args.stack, args.project_dir)
        config = target.config()
        if config.cloud != "local":
            raise ConfigError(f"stack {args.stack!r} has bluegreen:cloud = {config.cloud!r}; the demo needs local")
        if args.faulty_version not in (config.cloud_settings.get("faults") or {}):
            raise ConfigError(
                f"bluegreen:local.faults has no entry for {args.faulty_version!r}; add e.g. "
                f'"{args.faulty_version}": {{error_rate: 0.3, after_s: 5}} so that release misbehaves once live'
            )
        if args.rate <= 0 or args.rate > 500:
            raise ConfigError(f"--rate {args.rate:g} is invalid: 1-500 requests/s")
        env = target.environment(progress=lambda line: console.log(line))
        applier = open_target(args.stack, args.project_dir)
        console.rule(f"bringing stack {args.stack} up through {applier.path}")
        if isinstance(applier, LocalTarget):
            env.up()
        else:
            applier.apply({}, progress=lambda line: console.log(escape(line)) if line.strip() else None)
    except (ConfigError, LocalTargetError, TargetError) as exc:
        console.print(f"[red]error:[/] {exc}")
        return EXIT_BAD_INPUT

    reports = args.reports or Path(args.project_dir) / "reports"
    runs: list[dict[str, Any]] = []
    with SteadyLoad(env.live_url, rate=args.rate, write_ratio=0.2) as load:
        console.print(f"steady load: {args.rate:g} requests/s on {env.live_url} (1 in 5 creates an order)")
        time.sleep(2.0)
        for name, version in (("release", args.version), ("faulty release", args.faulty_version)):
            console.rule(f"{name}: deploy --version {version}")
            begin = load.now_s()
            deploy_args = argparse.Namespace(
                stack=args.stack,
                project_dir=args.project_dir,
                version=version,
                file=None,
                report=reports / f"deploy-{version}.json",
                timeline=reports / f"deploy-{version}.png",
            )
            code = cmd_deploy(deploy_args)
            time.sleep(2.0)
            runs.append({"name": name, "version": version, "code": code, "begin": begin, "end": load.now_s()})
    stats = load.stats
    # Each release's window runs to the next one's start (the first from the load's start, the
    # last to its end), so the rows add up to the total.
    runs[0]["begin"] = 0.0
    for run, following in zip(runs, [*runs[1:], None], strict=True):
        run["end"] = following["begin"] if following else float("inf")
    missing = _rows_missing(env.database_url(), stats.order_ids())
    _print_story(console, runs, stats, missing, reports)
    again = (
        f"make demo (it starts from scratch; Pulumi.{args.source}.yaml was not touched)"
        if args.source
        else (f"{cli_name()} demo --stack {args.stack}")
    )
    console.print(
        f"the {args.stack} stack is still up on {env.live_url}: look with `{cli_name()} status --stack "
        f"{args.stack}`, stop it with `{cli_name()} down --stack {args.stack}` (make down STACK={args.stack}); "
        f"run the demo again with {again}"
    )
    good, bad = runs
    return EXIT_OK if good["code"] == EXIT_OK and bad["code"] == EXIT_FAILED and not missing else EXIT_FAILED


def _rows_missing(database_url: str, order_ids: list[int]) -> list[int]:
    with psycopg.connect(database_url) as conn:
        found = {r[0] for r in conn.execute("SELECT id FROM orders WHERE id = ANY(%s)", [order_ids])}
    return sorted(set(order_ids) - found)


def _switch_seconds(stats: LoadStats, to_version: str) -> float | None:
    """From the first answer of the new version to the last answer of another one while it was live."""
    new = [a for a in stats.answers if a.version == to_version]
    if not new:
        return None
    first, last = new[0].sent_s, new[-1].sent_s
    overlap = [a.done_s for a in stats.answers if a.version != to_version and first <= a.sent_s <= last]
    return max(0.0, max(overlap, default=first) - first)


def _moved(seconds: float) -> str:
    return "at once" if seconds < 0.001 else f"within {seconds * 1000:.0f} ms"


def _read_report(report: Path) -> dict[str, Any]:
    try:
        return json.loads(report.read_text())
    except (OSError, ValueError):
        return {}


def _switch_apply_seconds(record: dict[str, Any]) -> float | None:
    return next((e["evidence"].get("apply_s") for e in record.get("events", []) if e["kind"] == "switch"), None)


def _print_story(
    console: Console, runs: list[dict[str, Any]], stats: LoadStats, missing: list[int], reports: Path
) -> None:
    table = Table(title="what happened", title_justify="left")
    for column in ("release", "outcome", "requests served", "failed", "switch", "rollback"):
        table.add_column(column)
    for run in runs:
        window = stats.between(run["begin"], run["end"])
        record = _read_report(reports / f"deploy-{run['version']}.json")
        outcome = record.get("outcome") or "error"
        switch_s = _switch_seconds(window, run["version"])
        apply_s = _switch_apply_seconds(record)
        reaction = None
        if run["code"] == EXIT_FAILED:
            new_colors = {a.color for a in window.answers if a.version == run["version"]}
            reaction = next(
                (r for c in new_colors if (r := rollback_reaction(window, c, run["begin"])) is not None), None
            )
        table.add_row(
            f"{run['name']} {run['version']}",
            f"{outcome} (exit {run['code']})",
            str(window.sent),
            str(window.failed),
            "-" if switch_s is None else f"apply {apply_s}s, traffic moved {_moved(switch_s)}",
            "-"
            if reaction is None
            else f"{reaction['reaction_s']:.2f}s from first failed request to all traffic back, "
            f"{reaction['failed_in_between']} failed",
        )
    console.print(table)
    console.print(
        "traffic moved: from the first answer of the new release to the last of the old one while it was live "
        "(at once: none came after); rollback: from the first failed request to all traffic back"
    )
    console.print(
        f"total: {stats.sent} requests, {stats.failed} failed; {len(stats.order_ids())} orders written, "
        f"{'all still in the database' if not missing else f'{len(missing)} MISSING from the database'}"
    )
    console.print(f"reports and timelines: {reports}/deploy-*.json, deploy-*.png")
