"""Apply the pending migrations in order, each in its own transaction.

Every applied file is recorded with its checksum in ``bluegreen_migrations``; a file
changed after it was applied stops the run before anything else happens. A contract
step runs only when :meth:`Migration.may_run_with` allows it for the versions both
colours run; otherwise it stays pending, and so does every file after it (order is
part of the contract).

Statements that PostgreSQL refuses inside a transaction block (``CREATE INDEX
CONCURRENTLY``, a ``DO`` block that ``COMMIT``\\ s between batches) go in a file whose
header is followed by ``-- bluegreen-run: no-transaction``. Such a file runs statement
by statement in autocommit mode and is recorded only after its last statement, so it
must be written to be safe to run again (``IF NOT EXISTS``, idempotent batches).

Both the local target (``components/local``) and the pipeline (``scripts/``) apply
migrations through here; ``python -m scripts.migrate`` is its command line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pglast
import psycopg

from components.migrations import Migration, MigrationError, load_migrations, parse_version

NO_TRANSACTION = re.compile(r"^\s*--\s*bluegreen-run:\s*no-transaction\s*$", re.MULTILINE)
LOCK_KEY = 0x6275_6C65  # pg_advisory_lock key: one migrator per database at a time

HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS bluegreen_migrations (
    name text PRIMARY KEY,
    checksum text NOT NULL,
    kind text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass
class MigrationReport:
    """What one run did, for the caller's summary."""

    applied: list[str] = field(default_factory=list)
    already_applied: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    held_back_by: str | None = None

    def summary(self) -> str:
        parts = [f"{len(self.applied)} applied", f"{len(self.already_applied)} already applied"]
        if self.pending:
            parts.append(f"{len(self.pending)} pending ({self.held_back_by})")
        return ", ".join(parts)


def runs_outside_transaction(migration: Migration) -> bool:
    return bool(NO_TRANSACTION.search(migration.sql))


def applied_checksums(conn: psycopg.Connection) -> dict[str, str]:
    conn.execute(HISTORY_DDL)
    return dict(conn.execute("SELECT name, checksum FROM bluegreen_migrations").fetchall())


def verify_history(migrations: Sequence[Migration], applied: dict[str, str]) -> None:
    """A changed or vanished applied file means the database and the repository disagree."""
    by_name = {m.name: m for m in migrations}
    for name, checksum in sorted(applied.items()):
        migration = by_name.get(name)
        if migration is None:
            raise MigrationError(f"{name} was applied to this database but is missing from the migrations directory")
        if migration.checksum != checksum:
            raise MigrationError(
                f"{name} changed after it was applied (checksum {checksum[:12]} in the database, "
                f"{migration.checksum[:12]} on disk); never edit an applied migration, add a new file"
            )


class StackBehindDatabaseError(MigrationError):
    """The database applied a contract step that the versions the stack names cannot run with."""


def refuse_versions_behind(
    migrations: Sequence[Migration], applied: dict[str, str], blue_version: str, green_version: str
) -> None:
    """Before anything starts: a release older than an applied contract step cannot run at all.

    It happens when the stack file goes back in time (an old ``Pulumi.<stack>.yaml``
    restored from git) while the database keeps what later releases did to it.
    """
    behind = [m for m in migrations if m.name in applied and not m.may_run_with(blue_version, green_version)]
    if not behind:
        return
    newest = max(behind, key=lambda m: parse_version(m.after or "0"))
    raise StackBehindDatabaseError(
        f"the database has applied {', '.join(m.name for m in behind)} (contract step for releases >= "
        f"{newest.after}), which releases before {newest.after} cannot run with, but the stack names blue "
        f"{blue_version} and green {green_version}: the stack file is behind its database (an older copy "
        f"restored?). Set blue_version and green_version to {newest.after} or later (the release that made the "
        f"step due, or newer) and run the command again; nothing was started"
    )


def apply_migrations(
    database_url: str,
    blue_version: str,
    green_version: str,
    directory: Path | str,
    progress: Callable[[str], None] = lambda _msg: None,
    starting: tuple[str, str] | None = None,
) -> MigrationReport:
    """Apply what is pending and allowed; raise :class:`MigrationError` on a tampered history.

    ``starting``: the (blue, green) versions about to be started, when they differ from
    what runs now; refused (:class:`StackBehindDatabaseError`) like the running ones if
    the database is already past them.
    """
    migrations = load_migrations(directory)
    report = MigrationReport()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        try:
            applied = applied_checksums(conn)
            verify_history(migrations, applied)
            for blue, green in filter(None, (starting, (blue_version, green_version))):
                refuse_versions_behind(migrations, applied, blue, green)
            for index, migration in enumerate(migrations):
                if migration.name in applied:
                    report.already_applied.append(migration.name)
                    continue
                if not migration.may_run_with(blue_version, green_version):
                    report.pending = [m.name for m in migrations[index:] if m.name not in applied]
                    report.held_back_by = (
                        f"{migration.name} is a contract step for releases >= {migration.after}; "
                        f"blue runs {blue_version}, green runs {green_version}"
                    )
                    progress(f"holding back {migration.name}: {report.held_back_by}")
                    break
                progress(f"applying {migration.name} ({migration.kind})")
                _apply_one(conn, migration)
                report.applied.append(migration.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
    return report


def _apply_one(conn: psycopg.Connection, migration: Migration) -> None:
    record = "INSERT INTO bluegreen_migrations (name, checksum, kind) VALUES (%s, %s, %s)"
    values = [migration.name, migration.checksum, migration.kind]
    try:
        if runs_outside_transaction(migration):
            for statement in pglast.split(migration.sql):
                conn.execute(statement)
            conn.execute(record, values)
        else:
            with conn.transaction():
                conn.execute(migration.sql)
                conn.execute(record, values)
    except psycopg.Error as exc:
        raise MigrationError(f"{migration.name} failed and was rolled back: {exc}".strip()) from exc
