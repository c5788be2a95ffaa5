"""The command line: ``python -m scripts <command> --stack S``.

Each command group registers its subcommands here; exit codes follow DESIGN.md:
0 success, 1 checks failed or rolled back, 2 bad input or environment.
"""

from __future__ import annotations

import argparse
import sys

from scripts import local_cli, pipeline_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scripts", description="bluegreen deployment commands")
    subparsers = parser.add_subparsers(dest="command", required=True)
    local_cli.add_commands(subparsers)
    pipeline_cli.add_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
