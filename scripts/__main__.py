"""The command line: ``bluegreen <command> --stack S`` (or ``python -m scripts <command> ...``).

``make setup`` installs the ``bluegreen`` command into the virtualenv (pyproject.toml);
``python -m scripts`` is the same program.

Each command group registers its subcommands here; exit codes follow DESIGN.md:
0 success, 1 checks failed or rolled back, 2 bad input or environment.
"""

from __future__ import annotations

import argparse
import sys

from scripts import local_cli, pipeline_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bluegreen", description="bluegreen deployment commands")
    subparsers = parser.add_subparsers(dest="command", required=True)
    local_cli.add_commands(subparsers)
    pipeline_cli.add_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
