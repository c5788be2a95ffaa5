"""``smoke``, ``switch``, ``monitor``, ``rollback``, ``deploy`` and ``status`` (``bluegreen ...``).

Exit codes (DESIGN.md): 0 success, 1 checks failed or rolled back, 2 bad input or
environment (bad config or smoke file, a locked stack, an apply that failed, a
missing metrics source). Commands that change a stack hold the stack lock.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from components.config import COLORS, ConfigError, StackConfig
from components.migrations import MigrationError
from scripts import demo
from scripts.arguments import cli_name, stack_argument
from scripts.decision import PROMOTE, ROLLBACK
from scripts.live_view import live_release_view
from scripts.lock import StackLock, StackLockedError, abandoned
from scripts.metrics import MetricsSourceError
from scripts.pipeline import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, Pipeline, PipelineOptions, ReleaseAborted
from scripts.pipeline import print_summary as print_run_summary
from scripts.record import RunRecord, TrafficRecorder, load_last_decision, utc_now
from scripts.releases import KnownBadReleaseError, ReleaseFileError, RolledBackVersions
from scripts.smoke import SmokeFileError
from scripts.targets import Target, TargetError, open_target
from scripts.targets.local import LocalTarget


class OutputPathError(ValueError):
    """``--report`` or ``--timeline`` names a file that cannot be written."""


ROOT = Path(__file__).resolve().parent.parent
EXIT_INTERRUPTED = 130  # the shell's code for a command ended by SIGINT
BAD_INPUT = (
    ConfigError,
    SmokeFileError,
    StackLockedError,
    MetricsSourceError,
    TargetError,
    MigrationError,
    KnownBadReleaseError,
    ReleaseFileError,
    OutputPathError,
)


def add_commands(subparsers: Any) -> None:
    def command(name: str, help_text: str, handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        sub = subparsers.add_parser(name, help=help_text)
        sub.add_argument("--stack", type=stack_argument, required=True, help="stack name (reads Pulumi.<stack>.yaml)")
        sub.add_argument("--project-dir", default=str(ROOT), help=argparse.SUPPRESS)
        sub.set_defaults(handler=handler)
        return sub

    smoke = command("smoke", "run the YAML smoke checks against a colour's route", cmd_smoke)
    smoke.add_argument("--color", choices=COLORS, help="colour to check (default: the idle colour)")
    smoke.add_argument("--file", default=None, help="smoke checks file (default: the stack's smoke_file)")
    switch = command("switch", "set live_color and apply, then verify traffic moved", cmd_switch)
    switch.add_argument("--to", required=True, choices=COLORS, help="the colour to make live")
    monitor = command("monitor", "watch the live colour; roll back on breach", cmd_monitor)
    rollback = command("rollback", "flip live_color back at once (no pre-switch checks)", cmd_rollback)
    rollback.add_argument("--reason", default="requested by hand", help="recorded with the rollback")
    for sub in (switch, rollback):
        sub.add_argument("--force", action="store_true", help="go to the colour even if it runs a rolled-back version")
    deploy = command("deploy", "release a version: migrate, idle gets it, smoke, switch, monitor", cmd_deploy)
    deploy.add_argument("--version", required=True, help="the version (image tag / app version) to release")
    deploy.add_argument("--file", default=None, help="smoke checks file (default: the stack's smoke_file)")
    # ``status`` (with --json) comes from the local CLI; one handler serves every target: the
    # local runtime's view plus the contract outputs, health and the last decision.
    subparsers.choices["status"].set_defaults(handler=cmd_status)
    demo.add_command(subparsers, ROOT)
    for sub in (deploy, switch, monitor, rollback):
        sub.add_argument("--report", type=Path, help="write the run's record (decisions, evidence) as JSON")
        sub.add_argument("--timeline", type=Path, help="draw request/error rate and p99 per colour as PNG")


def _fail(console: Console, exc: BaseException) -> int:
    console.print(f"[red]error:[/] {escape(str(exc))}")
    return EXIT_BAD_INPUT


def _smoke_file(args: argparse.Namespace) -> Path:
    """``--file``, else the stack's ``smoke_file`` (relative to the project directory)."""
    if getattr(args, "file", None):
        return Path(args.file)
    configured = StackConfig.from_stack_file(args.stack, args.project_dir).smoke_file
    return Path(args.project_dir) / configured


class _Run:
    """Target, record, pipeline and lock for one command, with the shared error handling."""

    def __init__(self, args: argparse.Namespace, command: str, console: Console, live_view: bool = False) -> None:
        self.args = args
        self.live_view = live_view
        self.console = console
        self.record = RunRecord(args.stack, command, console)
        self.lock = StackLock(args.project_dir, args.stack, command)
        self.outputs_writable = False  # --report / --timeline, once checked

    def run(self, body: Callable[[Target, Pipeline], int], locked: bool = True) -> int:
        # SIGTERM (a CI job cancelled, systemd stopping us) ends the run as Ctrl-C does: recorded.
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            for option in ("report", "timeline"):
                _refuse_unwritable(getattr(self.args, option, None), option)
            self.outputs_writable = True
            if locked:
                self.lock.acquire()
            try:
                target = open_target(self.args.stack, self.args.project_dir)
                self.record.note("target", f"stack {self.args.stack}: changes go through {target.path}")
                pipeline = Pipeline(target, self.record, PipelineOptions(_smoke_file(self.args)))
                recorder = _recorder(target, self.record, self.args)
                with contextlib.ExitStack() as running:
                    if recorder is not None:
                        running.enter_context(recorder)
                    if self.live_view:
                        running.enter_context(
                            live_release_view(self.record, target.config(), f"{self.record.command} on {target.stack}")
                        )
                    code = body(target, pipeline)
            finally:
                self.lock.release()
        except BAD_INPUT as exc:
            self.record.finish("error", EXIT_BAD_INPUT, error=str(exc))
            code = _fail(self.console, exc)
        except ReleaseAborted as exc:
            self.record.finish("aborted", EXIT_FAILED, reason=str(exc))
            code = EXIT_FAILED
        except KeyboardInterrupt:
            stack = self.args.stack
            self.record.note(
                "interrupted",
                f"interrupted: nothing more was changed. To go back to the last promoted release (and put the "
                f"idle colour back to idle capacity), run: {cli_name()} rollback --stack {stack}; "
                f"to try the release again: {cli_name()} {self.record.command}",
            )
            self.record.finish("interrupted", EXIT_INTERRUPTED)
            code = EXIT_INTERRUPTED
        finally:
            signal.signal(signal.SIGTERM, previous)
        if self.record.exit_code is None:
            self.record.finish("done" if code == EXIT_OK else "failed", code)
        self._write_outputs()
        return code

    def _write_outputs(self) -> None:
        args = self.args
        self.record.save_last_decision(Path(args.project_dir).resolve() / ".bluegreen" / args.stack)
        if not self.outputs_writable:
            return
        if getattr(args, "report", None):
            self.record.write_json(args.report)
            self.console.print(f"report: {args.report}")
        if getattr(args, "timeline", None):
            from scripts.timeline import draw_timeline

            draw_timeline(self.record, args.timeline)
            self.console.print(f"timeline: {args.timeline}")


def _refuse_unwritable(path: Path | None, option: str) -> None:
    """Before anything changes: a report that cannot be written is found now, not after the release."""
    if path is None:
        return
    if path.is_dir():
        raise OutputPathError(f"--{option} {path}: is a directory; give a file name, e.g. {path / 'run.json'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a"):
            pass
    except OSError as exc:
        raise OutputPathError(f"--{option} {path}: cannot be written ({exc.strerror})") from None


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _recorder(target: Target, record: RunRecord, args: argparse.Namespace) -> TrafficRecorder | None:
    if not getattr(args, "timeline", None) and not getattr(args, "report", None):
        return None
    period = max(1.0, float(target.config().monitor.interval_s))
    return TrafficRecorder(target.metrics(), record, period_s=period)


def cmd_smoke(args: argparse.Namespace) -> int:
    console = Console(stderr=True)

    def body(target: Target, pipeline: Pipeline) -> int:
        color = args.color or target.config().idle_color
        return EXIT_OK if pipeline.smoke(color).passed else EXIT_FAILED

    return _Run(args, "smoke", console).run(body, locked=False)


def cmd_switch(args: argparse.Namespace) -> int:
    def body(target: Target, pipeline: Pipeline) -> int:
        config = target.config()
        if config.live_color == args.to and not config.gradual_switch_in_progress:
            pipeline.record.note("switch", f"{args.to} is already live at 100%; nothing to do")
            return EXIT_OK
        pipeline.refuse_known_bad(args.to, force=args.force)
        health = target.health(args.to)
        if not health.ok:
            pipeline.record.note("abort", f"not switching: {health.detail}")
            return EXIT_FAILED
        # A manual switch promotes nothing: a rollback after it returns to what is live now.
        pipeline.promoted.ensure(config.live_color, config.version_of(config.live_color))
        switched, _, _ = pipeline.switch(args.to)
        return EXIT_OK if switched else EXIT_FAILED

    return _run_with_summary(args, f"switch --to {args.to}", body)


def cmd_monitor(args: argparse.Namespace) -> int:
    def body(target: Target, pipeline: Pipeline) -> int:
        config = target.config()
        # While the old colour is warm a rollback costs nothing: guard for as long as it stays so.
        bake = max(config.monitor.bake_s, config.scale_down_delay_s) if config.warm_idle else None
        if bake is not None:
            pipeline.record.note("guard", f"{config.idle_color} is warm: watching {config.live_color} for {bake}s")
        result = pipeline.monitor(config.live_color, utc_now(), bake_s=bake)
        if result.decision.action == ROLLBACK:
            to = pipeline.rollback_target()
            if to is None:
                pipeline.record.note(
                    "hold",
                    f"{config.live_color} runs the last promoted release: there is nothing to roll back to; "
                    f"act by hand ({result.decision.reason})",
                )
                return EXIT_FAILED
            pipeline.rollback(to, result.decision)
            pipeline.record.finish("rolled back", EXIT_FAILED, reason=result.decision.reason)
            return EXIT_FAILED
        if result.decision.action == PROMOTE:
            pipeline.record.note("promote", result.decision.reason, **result.decision.to_dict())
            pipeline.promoted.record(config.live_color, config.version_of(config.live_color), "monitor")
            pipeline.record.finish("promoted", EXIT_OK, reason=result.decision.reason)
            return EXIT_OK
        pipeline.record.note("hold", result.decision.reason, **result.decision.to_dict())
        pipeline.record.finish("inconclusive", EXIT_FAILED, reason=result.decision.reason)
        return EXIT_FAILED

    return _run_with_summary(args, "monitor", body)


def cmd_rollback(args: argparse.Namespace) -> int:
    def body(target: Target, pipeline: Pipeline) -> int:
        to = pipeline.rollback_target(force=args.force)
        if to is None:
            config = target.config()
            live = config.live_color
            pipeline.record.note(
                "rollback",
                f"nothing to roll back to: {live} serves all traffic with {config.version_of(live)}, a promoted "
                f"release, and no colour runs an earlier one that was not rolled back",
            )
            pipeline.settle_idle()
            return EXIT_OK
        pipeline.refuse_known_bad(to, force=args.force)
        pipeline.rollback(to, None, reason=args.reason)
        return EXIT_OK

    return _run_with_summary(args, "rollback", body)


def cmd_deploy(args: argparse.Namespace) -> int:
    return _run_with_summary(args, f"deploy --version {args.version}", lambda _t, p: p.deploy(args.version))


def _run_with_summary(args: argparse.Namespace, command: str, body: Callable[[Target, Pipeline], int]) -> int:
    """Run a stack-changing command under the lock, then print the summary table."""
    console = Console(stderr=True)
    run = _Run(args, command, console, live_view=command.startswith(("deploy", "monitor")))
    code = run.run(body)
    print_run_summary(run.record, console)
    return code


def cmd_status(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    try:
        target = open_target(args.stack, args.project_dir)
        document = status_document(target, Path(args.project_dir))
    except BAD_INPUT as exc:
        return _fail(console, exc)
    if args.json:
        print_json(document)
        return EXIT_OK
    out = Console()
    if "colors" in document:
        from scripts.local_cli import _print_status

        _print_status(document, out)
    else:
        table = Table(title=f"stack {args.stack}")
        for column in ("colour", "role", "version", "health"):
            table.add_column(column)
        for color in COLORS:
            role = "live" if document["live_color"] == color else "idle"
            table.add_row(color, role, str(document[f"{color}_version"]), document["health"][color]["detail"])
        out.print(table)
        out.print(f"live: {document['live_color']} at {document['live_url']}, preview: {document['preview_url']}")
    last = document.get("last_decision")
    if last:
        out.print(f"last decision ({last['at']}, {last['command']}): {last['kind']}: {last['message']}")
    if document.get("interrupted"):
        dead = document["interrupted"]
        out.print(
            f"[yellow]a run of {escape(str(dead.get('command')))} (pid {dead.get('pid')}, since {dead.get('since')}) "
            f"ended without finishing[/]: {cli_name()} rollback --stack {args.stack} goes back to the last "
            "promoted release"
        )
    for color, bad in document["rolled_back"].items():
        out.print(
            f"[yellow]{color} runs {escape(bad['version'])}, rolled back at {bad['at']} because "
            f"{escape(bad['reason'])}[/]: "
            "switch/rollback onto it need --force"
        )
    return EXIT_OK


def status_document(target: Target, project_dir: Path) -> dict[str, Any]:
    """``status --json``: the stack outputs, each colour's health, and the last decision.

    A local stack adds what its runtime reports (processes, HAProxy, PostgreSQL); there
    ``live_color`` is the route HAProxy really holds (None when the stack is down).
    """
    document: dict[str, Any] = dict(target.outputs())
    # Secret outputs (the preview header's value, the database endpoint) are never printed.
    for key in getattr(target, "secret_outputs", set)():
        document[key] = "[secret]"
    if isinstance(target, LocalTarget):
        document.update(target.environment().status())
    health = {}
    for color in COLORS:
        h = target.health(color)
        health[color] = {"ok": h.ok, "healthy": h.healthy, "total": h.total, "detail": h.detail}
    document["health"] = health
    document["path"] = target.path
    document["last_decision"] = load_last_decision(project_dir.resolve() / ".bluegreen" / target.stack)
    document["interrupted"] = abandoned(project_dir, target.stack)
    config = target.config()
    known_bad = RolledBackVersions(project_dir, target.stack)
    document["rolled_back"] = {
        color: asdict(bad) for color in COLORS if (bad := known_bad.get(config.version_of(color))) is not None
    }
    return document


def print_json(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
