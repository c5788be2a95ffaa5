"""The migration runner's command line (the runner itself: :mod:`components.migration_runner`).

``python -m scripts.migrate --stack dev`` applies a local stack's pending migrations
(its ``migrations_dir``, database URL and versions read from the stack);
``--database-url URL --blue-version 1.0.0 --green-version 2.0.0 --dir DIR`` any database.
Exit 2 on a tampered history or an unreachable database.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg

from components.migration_runner import apply_migrations
from components.migrations import MigrationError
from scripts.arguments import stack_argument

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.migrate", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", type=stack_argument, help="a local stack: read database URL and versions from it")
    parser.add_argument("--database-url")
    parser.add_argument("--blue-version")
    parser.add_argument("--green-version")
    parser.add_argument("--dir", default=None, help="migrations directory (default: the stack's migrations_dir)")
    args = parser.parse_args(argv)
    try:
        if args.stack:
            from components.config import NO_MIGRATIONS, ConfigError, StackConfig
            from components.local.runtime import LocalEnvironment, LocalTargetError

            try:
                config = StackConfig.from_stack_file(args.stack, ROOT)
                url = LocalEnvironment(config, ROOT).database_url()
            except (ConfigError, LocalTargetError) as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            blue, green = args.blue_version or config.blue_version, args.green_version or config.green_version
            location = config.migrations_location(ROOT)
            if args.dir is None and location is None:
                print(f"stack {args.stack}: {NO_MIGRATIONS}")
                return 0
            directory = Path(args.dir) if args.dir else location
        else:
            url, blue, green = args.database_url, args.blue_version, args.green_version
            if not (url and blue and green and args.dir):
                parser.error("give --stack, or all of --database-url, --blue-version, --green-version, --dir")
            directory = Path(args.dir)
        report = apply_migrations(url, blue, green, directory, progress=lambda m: print(m, file=sys.stderr))
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except psycopg.OperationalError as exc:
        print(f"error: cannot reach the database: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
