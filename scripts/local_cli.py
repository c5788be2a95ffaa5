"""``up``, ``down`` and ``status`` for local stacks (``bluegreen up --stack dev``).

Exit codes: 0 done, 1 the environment did not come up (a part failed), 2 bad input or
a missing prerequisite (config error, missing haproxy/PostgreSQL, port in use). When
``up`` fails, what it started in that run is stopped again, so nothing is left half
running.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from components.config import ConfigError, StackConfig
from components.local.runtime import EnvironmentProblemError, LocalEnvironment, LocalTargetError
from components.local.supervisor import ensure_supervisor, stop_supervisor
from scripts.arguments import cli_name, stack_argument

if TYPE_CHECKING:
    from scripts.targets.local_engine import LocalEngineTarget

ROOT = Path(__file__).resolve().parent.parent
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _environment(args: argparse.Namespace, console: Console) -> LocalEnvironment:
    config = StackConfig.from_stack_file(args.stack, args.project_dir)
    if config.cloud != "local":
        raise ConfigError(
            f"stack {args.stack!r} has bluegreen:cloud = {config.cloud!r}; up/down/status here drive local stacks "
            "(cloud stacks are applied with the Pulumi CLI or the pipeline)"
        )
    return LocalEnvironment(config, args.project_dir, progress=lambda msg: console.log(msg))


def add_commands(subparsers: Any) -> None:
    for name, help_text in (
        ("up", "start PostgreSQL, migrations, both colours and HAProxy for a local stack"),
        ("down", "stop every process the stack started (data stays)"),
        ("status", "colours, versions, health as HAProxy sees it, which colour is live"),
    ):
        sub = subparsers.add_parser(name, help=help_text)
        sub.add_argument("--stack", type=stack_argument, required=True, help="stack name (reads Pulumi.<stack>.yaml)")
        sub.add_argument("--project-dir", default=str(ROOT), help=argparse.SUPPRESS)
        if name == "status":
            sub.add_argument("--json", action="store_true", help="print machine-readable JSON")
        sub.set_defaults(handler=globals()[f"cmd_{name}"])


def _engine_target(args: argparse.Namespace) -> LocalEngineTarget | None:
    """The stack through the Pulumi engine when that is this project's path (see scripts.targets)."""
    from scripts.targets import local_path

    if local_path(args.project_dir) != "pulumi":
        return None
    from scripts.targets.local_engine import LocalEngineTarget

    return LocalEngineTarget(args.stack, args.project_dir)


def _engine_command(args: argparse.Namespace, console: Console, verb: str) -> int | None:
    """``up``/``down`` as ``pulumi up``/``pulumi destroy``; None when the runtime path applies.

    Bringing a stack up or down outside the engine would leave its state claiming
    processes that run no more (or none that do), so with the CLI here both go through it.
    """
    from scripts.targets import TargetError

    try:
        target = _engine_target(args)
        if target is None:
            return None
        console.print(f"stack {args.stack}: {verb} through {target.path}")

        def show(line: str) -> None:
            if line.strip():
                console.log(escape(line))

        if verb == "up":
            target.apply({}, progress=show)
        else:
            # The supervisor goes first, so it cannot restart what the destroy stops.
            if stop_supervisor(_environment(args, console).state):
                console.print("supervisor stopped")
            target.destroy(progress=show)
    except (ConfigError, TargetError) as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        return EXIT_BAD_INPUT
    env = _environment(args, console)
    if verb == "up":
        console.print(f"supervisor: {escape(ensure_supervisor(env))}")
        _print_status(env.status(), console)
    else:
        console.print(f"stack {args.stack}: destroyed (processes stopped, database data kept)")
    return EXIT_OK


def cmd_up(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    try:
        env = _environment(args, console)
    except ConfigError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        return EXIT_BAD_INPUT
    through_engine = _engine_command(args, console, "up")
    if through_engine is not None:
        return through_engine
    was_running = _running_parts(env)
    try:
        with console.status(f"bringing stack {args.stack} up"):
            actions = env.up()
    except (EnvironmentProblemError, ConfigError) as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        _undo(env, was_running, console)
        return EXIT_BAD_INPUT
    except LocalTargetError as exc:
        console.print(f"[red]failed:[/] {escape(str(exc))}")
        _undo(env, was_running, console)
        if was_running:  # the stack that ran before stays supervised
            console.print(f"supervisor: {escape(ensure_supervisor(env))}")
        return EXIT_FAILED
    actions["supervisor"] = ensure_supervisor(env)
    table = Table(title=f"stack {args.stack}: up")
    table.add_column("part")
    table.add_column("result")
    for part, result in actions.items():
        table.add_row(part, ", ".join(result) if isinstance(result, list) else str(result) or "-")
    console.print(table)
    _print_status(env.status(), console)
    return EXIT_OK


def _running_parts(env: LocalEnvironment) -> bool:
    try:
        return bool(env.haproxy.running() or env.postgres.running() or any(a.record() for a in env.apps.values()))
    except Exception:
        return False


def _undo(env: LocalEnvironment, was_running: bool, console: Console) -> None:
    """A failed first ``up`` stops what it started; a failed re-apply leaves the running stack alone."""
    if was_running:
        console.print("the stack was already running before this command; left as it is")
        return
    stopped = env.down()
    if stopped:
        console.print(f"stopped what this run had started: {', '.join(stopped)}")


def cmd_down(args: argparse.Namespace) -> int:
    through_engine = _engine_command(args, Console(stderr=True), "down")
    if through_engine is not None:
        return through_engine
    return _run_simple(args, lambda env, console: _report_down(args.stack, env.down(), console))


def cmd_status(args: argparse.Namespace) -> int:
    def show(env: LocalEnvironment, console: Console) -> None:
        status = env.status()
        if args.json:
            print(json.dumps(status, indent=2))
        else:
            _print_status(status, Console())

    return _run_simple(args, show)


def _run_simple(args: argparse.Namespace, action: Callable[[LocalEnvironment, Console], None]) -> int:
    console = Console(stderr=True)
    try:
        action(_environment(args, console), console)
    except (ConfigError, LocalTargetError) as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        return EXIT_BAD_INPUT
    return EXIT_OK


def _report_down(stack: str, stopped: list[str], console: Console) -> None:
    console.print(f"stack {stack}: stopped {', '.join(stopped) if stopped else 'nothing (nothing was running)'}")


def _print_status(status: dict[str, Any], console: Console) -> None:
    table = Table(title=f"stack {status['stack']}")
    for column in ("colour", "role", "version", "port", "pid", "HAProxy health", "requests", "5xx"):
        table.add_column(column)
    for color, info in status["colors"].items():
        version = info["version"] or "-"
        if info["version"] and info["version"] != info["configured_version"]:
            version += f" (config: {info['configured_version']})"
        table.add_row(
            f"[{color}]{color}[/]",
            info["role"],
            version,
            str(info["port"]),
            str(info["pid"] or "-"),
            info["health"],
            str(info["requests"] if info["requests"] is not None else "-"),
            str(info["errors_5xx"] if info["errors_5xx"] is not None else "-"),
        )
    console.print(table)
    _print_supervision(status, console)
    if status["live_color"]:
        console.print(
            f"live: [bold]{status['live_color']}[/] at {status['live_url']}, preview: {status['preview_url']}"
        )
        if status["live_color"] != status["configured_live_color"]:
            console.print(f"[yellow]config says live_color {status['configured_live_color']}; run up to apply[/]")
    else:
        console.print(
            f"HAProxy is not running: the stack is down (start it: {cli_name()} up --stack {status['stack']})"
        )


def _print_supervision(status: dict[str, Any], console: Console) -> None:
    """Whether the supervisor runs, and every part it restarted, failed to restart or gave up on."""
    supervisor = status.get("supervisor") or {}
    if supervisor.get("running"):
        console.print(f"supervisor: running (pid {supervisor['pid']}, since {supervisor['started_at']})")
    elif not supervisor.get("enabled", True):
        console.print("supervisor: off (bluegreen:local supervise: false); crashed parts stay down")
    elif status["haproxy"]["running"] or status["postgres"]["running"]:
        console.print("[yellow]supervisor: not running; `up` starts it again[/]")
    parts = {c: i.get("restarts") for c, i in status["colors"].items()}
    parts |= {"haproxy": status["haproxy"].get("restarts"), "postgres": status["postgres"].get("restarts")}
    for part, info in parts.items():
        if not info or not (info["count"] or info["failed"] or info["gave_up"]):
            continue
        line = f"  {part}: restarted {info['count']}x" + (f", last at {info['last_at']}" if info["last_at"] else "")
        if info["last_cause"]:
            line += f"; last crash: {info['last_cause']}"
        if info["failed"]:
            error = " | ".join(filter(None, (info["last_error"] or "-").splitlines()))
            line += f"; {info['failed']} failed restart(s), the last: {error}"
        console.print(escape(line))
        if info["gave_up"]:
            console.print(f"  [red]{escape(part)}: gave up at {escape(info['gave_up'])}[/]")
