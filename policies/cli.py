"""``python -m policies lint [PATHS | --stack S] [--format text|json|sarif]``.

With ``--stack`` (and no paths) it lints the stack's ``migrations_dir``.

Exit codes follow the project: 0 clean (warnings allowed), 1 errors found,
2 bad input (missing path, malformed migration header or name).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from components.migrations import MigrationError
from policies.analyzer import lint_paths
from policies.report import FORMATS, render, summary
from policies.rules import RULES

DEFAULT_PATHS = ("migrations",)
ROOT = Path(__file__).resolve().parent.parent


class StackFileError(RuntimeError):
    """``--stack`` named a stack whose file is missing or invalid."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m policies", description="Migration safety checks for bluegreen.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    lint = commands.add_parser("lint", help="lint migration files or directories")
    lint.add_argument(
        "paths", nargs="*", help="files or directories (default: the stack's migrations_dir, else migrations)"
    )
    lint.add_argument("--stack", help="lint this stack's migrations_dir (reads Pulumi.<stack>.yaml)")
    lint.add_argument("--project-dir", default=str(ROOT), help=argparse.SUPPRESS)
    lint.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")
    lint.add_argument("--list-rules", action="store_true", help="print every rule id with its recipe and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_rules:
        for rule in RULES.values():
            print(f"{rule.id:32} {rule.category:9} {rule.severity:8} {rule.title}")
        return 0
    try:
        paths = [Path(p) for p in args.paths] or _stack_paths(args)
        if not paths:
            from components.config import NO_MIGRATIONS  # already loaded by --stack

            print(f"stack {args.stack}: {NO_MIGRATIONS}")
            return 0
        result = lint_paths(paths)
    except (MigrationError, FileNotFoundError, StackFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(render(result, args.format))
    if args.format != "text":
        print(summary(result), file=sys.stderr)
    return 1 if result.errors else 0


def _stack_paths(args: argparse.Namespace) -> list[Path]:
    """The stack's ``migrations_dir`` (none when it is empty), or the default paths without --stack."""
    if not args.stack:
        return [Path(p) for p in DEFAULT_PATHS]
    from components.config import ConfigError, StackConfig  # only here: plain lint starts without it

    try:
        config = StackConfig.from_stack_file(args.stack, args.project_dir)
    except ConfigError as exc:
        raise StackFileError(str(exc)) from exc
    location = config.migrations_location(args.project_dir)
    return [location] if location is not None else []
