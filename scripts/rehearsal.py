"""Rehearse pending migrations against the live release before they touch the shared database.

Linters read SQL; the rehearsal runs it. The pending migrations are applied to a
scratch database (locally: a copy of the shared database, data included; anywhere
else: a throwaway PostgreSQL built by applying every migration the shared database
already has), the version that is live now is started against it, and its smoke
checks run after every statement. A check that fails at the end of a file is a
breakage; the statement blamed is the one after which the check last stopped
passing, so a rename followed by a compatibility view in the same file is judged by
the file's end state, not by the instant in between. Nothing here writes to the
shared database; the scratch database and the app process are removed at the end.

The deploy pipeline calls :func:`check_pending_migrations` (lint, then rehearsal)
before it applies migrations, and stops with exit 1 on any breakage.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

from components.config import NO_MIGRATIONS, StackConfig
from components.local.apps import app_launch
from components.migration_runner import apply_migrations, verify_history
from components.migrations import Migration, load_migrations
from policies.analyzer import analyze, statements_of
from scripts.smoke import SmokeRunner, SmokeSuite, load_suite
from scripts.targets import SharedDatabase

Progress = Callable[[str], None]
DATABASE_URL_ENV = "BLUEGREEN_DATABASE_URL"
APP_START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Breakage:
    """One smoke check that a statement broke (or a statement that failed outright)."""

    check: str
    detail: str
    file: str
    line: int
    statement: str

    def describe(self) -> str:
        statement = " ".join(self.statement.split())[:140]
        return f"{self.file}:{self.line}: `{statement}` broke check '{self.check}': {self.detail}"


@dataclass
class RehearsalResult:
    live: str
    pending: list[str] = field(default_factory=list)
    breakages: list[Breakage] = field(default_factory=list)
    problem: str | None = None  # the rehearsal itself could not judge (baseline failed, app would not start)
    statements: int = 0

    @property
    def passed(self) -> bool:
        return not self.breakages and self.problem is None

    def summary(self) -> str:
        if self.problem:
            return f"rehearsal inconclusive: {self.problem}"
        if not self.pending:
            return "rehearsal: no pending migrations"
        verdict = "passed" if self.passed else f"FAILED ({len(self.breakages)} breakage(s))"
        return (
            f"rehearsal {verdict}: {len(self.pending)} pending migration(s), {self.statements} statement(s) "
            f"applied to a scratch copy with the live release ({self.live}) running its smoke checks"
        )


# -- which migrations are pending ---------------------------------------------------------


def pending_migrations(
    migrations: Sequence[Migration], applied: Mapping[str, str], blue: str, green: str
) -> list[Migration]:
    """What the runner (scripts/migrate.py) would apply now: in order, up to the first contract that must wait."""

    verify_history(migrations, dict(applied))
    pending = []
    for migration in migrations:
        if migration.name in applied:
            continue
        if not migration.may_run_with(blue, green):
            break
        pending.append(migration)
    return pending


def applied_in(database_url: str) -> dict[str, str]:
    """Name -> checksum of what a database has applied (read only; no history table means none)."""
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        exists = conn.execute("SELECT to_regclass('bluegreen_migrations') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return {}
        return dict(conn.execute("SELECT name, checksum FROM bluegreen_migrations").fetchall())


# -- scratch databases ---------------------------------------------------------------------


def _pg_tool(name: str) -> str:
    """A client tool from the server's own bin directory first (pg_dump must not be older than the server)."""
    from components.local.postgres import PG_BIN_DIRS, find_pg_bin

    for directory in (find_pg_bin(), *PG_BIN_DIRS):
        if (directory / name).is_file():
            return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found in /usr/lib/postgresql/*/bin or PATH (Debian package postgresql-client)")
    return found


def _without_password(database_url: str) -> tuple[str, dict[str, str]]:
    """The connection string minus its password, and an environment that carries it (``PGPASSWORD``).

    Any local user can read a process's command line (``ps``, /proc/<pid>/cmdline); only
    its owner can read its environment.
    """
    params = psycopg.conninfo.conninfo_to_dict(database_url)
    password = params.pop("password", None)
    environment = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    if password is not None:
        environment["PGPASSWORD"] = str(password)
    return psycopg.conninfo.make_conninfo(**params), environment


def _run_tool(command: list[str], database_url: str, stdin: str | None, what: str) -> str:
    """A PostgreSQL client tool on ``database_url`` (its ``--dbname``), the password kept off argv."""
    conninfo, environment = _without_password(database_url)
    done = subprocess.run(
        [_pg_tool(command[0]), *command[1:], "--dbname", conninfo],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env=environment,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed while copying the shared database: {done.stderr.strip()}")
    return done.stdout


SCRATCH_PREFIX = "bluegreen_rehearsal_"


def _drop_leftovers(admin: psycopg.Connection, progress: Progress) -> None:
    """Scratch copies a killed rehearsal left behind (a copy of production data): dropped first.

    One deploy per stack at a time (the stack lock), so no other rehearsal of this
    cluster can be using one.
    """
    pattern = SCRATCH_PREFIX.replace("_", r"\_") + "%"
    rows = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [pattern]).fetchall()
    for (leftover,) in rows:
        progress(f"dropping scratch database {leftover}, left by an interrupted rehearsal")
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(leftover)))


@contextlib.contextmanager
def copy_of(database_url: str, admin_url: str, owner: str, progress: Progress) -> Iterator[str]:
    """A new database in the same cluster holding a copy (schema and data) of ``database_url``."""
    name = f"{SCRATCH_PREFIX}{os.getpid()}_{int(time.time() * 1000) % 10**9}"
    scratch_url = str(psycopg.conninfo.make_conninfo(database_url, dbname=name))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        _drop_leftovers(admin, progress)
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner)))
    try:
        progress(f"copying the shared database into scratch database {name}")
        dump = _run_tool(["pg_dump", "--no-owner", "--no-privileges"], database_url, None, "pg_dump")
        _run_tool(["psql", "--quiet", "--no-psqlrc", "-v", "ON_ERROR_STOP=1"], scratch_url, dump, "restore")
        yield scratch_url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def built_from_history(applied: Sequence[Migration], config: StackConfig, progress: Progress) -> Iterator[str]:
    """A throwaway PostgreSQL cluster with every already-applied migration, for targets whose database
    cannot be copied from here (clouds)."""
    from components.local.postgres import PostgresCluster
    from components.local.state import StateDir

    root = Path(tempfile.mkdtemp(prefix="bg-rehearsal-"))
    root.chmod(0o711)  # the postgres user must reach its data directory when we are root
    cluster = PostgresCluster(StateDir(root, "rehearsal"), config.db.name, config.db.username)
    try:
        url = cluster.start(progress).url
        directory = root / "applied"
        directory.mkdir()
        for migration in applied:
            (directory / migration.name).write_text(migration.sql)
        if applied:
            progress(f"building a scratch database from {len(applied)} applied migration(s)")
            apply_migrations(url, "999999", "999999", directory, progress)
        yield url
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


# -- the live release against the scratch database ---------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def live_release(
    command: str, environment: Mapping[str, str], port: int, cwd: Path, health_path: str, log: Path
) -> Iterator[str]:
    """Start the live version's command against the scratch database; yield its base URL."""
    env, argv = app_launch(command, environment, cwd, command_wins=False)  # the scratch DATABASE_URL wins
    with log.open("w") as out:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + APP_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the live release exited ({process.returncode}): {log.read_text()[-800:]}")
            try:
                if httpx.get(base_url + health_path, timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the live release did not answer {health_path} within {APP_START_TIMEOUT_S:g}s")
            time.sleep(0.2)
        yield base_url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def _smoke(runner: SmokeRunner) -> tuple[set[str], dict[str, str]]:
    """The checks that passed, and check name -> why for those that ran and failed."""
    report = runner.run()
    passed = {r.name for r in report.results if r.passed}
    failing = {}
    for r in report.results:
        if not r.passed and r.attempts > 0:
            body = " ".join(str((r.response or {}).get("body") or "").split())
            failing[r.name] = f"{r.detail}; the app answered {body[:200]}" if body else r.detail
    return passed, failing


def rehearse(
    scratch_url: str,
    pending: Sequence[Migration],
    base_url: str,
    live: str,
    live_version: str,
    suite: SmokeSuite,
    progress: Progress,
    directory: str = "migrations",
) -> RehearsalResult:
    """Apply ``pending`` statement by statement to the scratch database the live release uses.

    ``directory`` is how breakages name the files (the stack's ``migrations_dir``).
    """
    result = RehearsalResult(live=f"{live} {live_version}", pending=[m.name for m in pending])
    _passed, baseline = _smoke(SmokeRunner(suite, base_url, live, live_version))
    if baseline:
        result.problem = f"the live release fails its smoke checks before any migration: {baseline}"
        return result
    quick = dataclasses.replace(
        suite, settings=dataclasses.replace(suite.settings, attempts=1, timeout_s=max(10.0, len(suite.checks) * 5.0))
    )
    last_pass: dict[str, int] = {}
    applied: list[tuple[Migration, int, str]] = []  # (file, line, statement) in the order they ran
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        for migration in pending:
            progress(f"rehearsing {migration.name}")
            statements = [s for s in statements_of(migration.sql) if not s.context]
            for statement in statements:
                try:
                    conn.execute(statement.sql)
                except psycopg.Error as exc:
                    detail = f"the statement itself failed: {str(exc).strip()}"
                    where = f"{directory}/{migration.name}"
                    result.breakages.append(Breakage("apply", detail, where, statement.line, statement.sql))
                    return result
                applied.append((migration, statement.line, statement.sql))
                result.statements += 1
                passed, failing = _smoke(SmokeRunner(quick, base_url, live, live_version))
                for name in passed:
                    last_pass[name] = len(applied)
                if statement is statements[-1] and failing:
                    for check, detail in failing.items():
                        culprit, line, text = applied[last_pass.get(check, 0)]
                        result.breakages.append(Breakage(check, detail, f"{directory}/{culprit.name}", line, text))
                    return result
    return result


# -- the gate the pipeline runs -----------------------------------------------------------


@dataclass
class GateResult:
    passed: bool
    lines: list[str]


def lint_problems(migrations: Sequence[Migration]) -> list[str]:
    return [
        f"{f.file}:{f.line}: [{f.rule}] {f.message}. Safe recipe: {f.recipe}" for f in analyze(list(migrations)).errors
    ]


def check_pending_migrations(
    project_dir: Path,
    config: StackConfig,
    smoke_file: Path,
    versions: Mapping[str, str],
    shared: SharedDatabase | None,
    progress: Progress,
) -> GateResult:
    """Lint every migration, then rehearse the pending ones with the live release."""
    directory = config.migrations_location(project_dir)
    if directory is None:
        return GateResult(True, [NO_MIGRATIONS])
    if not directory.is_dir():
        return GateResult(True, [f"no migrations directory {directory}"])
    migrations = load_migrations(directory)  # a bad header, name or number: MigrationError, exit 2
    problems = lint_problems(migrations)
    if problems:
        return GateResult(False, ["lint refused the migrations:", *problems])
    if shared is None:
        return GateResult(
            True,
            [f"lint clean; rehearsal skipped: the stack's database is not reachable (set {DATABASE_URL_ENV})"],
        )
    if not config.app_command:
        return GateResult(True, ["lint clean; rehearsal skipped: no app_command to start the live release here"])
    live = config.live_color
    live_version = versions[live]
    suite = load_suite(smoke_file)
    with tempfile.TemporaryDirectory(prefix="bg-rehearsal-log-") as logs:
        log = Path(logs) / "live-release.log"
        try:
            with contextlib.ExitStack() as stack:
                applied = applied_in(shared.url)
                pending = pending_migrations(migrations, applied, versions["blue"], versions["green"])
                if not pending:
                    return GateResult(True, ["lint clean; rehearsal: no pending migrations"])
                if shared.admin_url:
                    scratch = stack.enter_context(copy_of(shared.url, shared.admin_url, config.db.username, progress))
                else:
                    history = [m for m in migrations if m.name in applied]
                    scratch = stack.enter_context(built_from_history(history, config, progress))
                environment = dict(shared.app_environment)
                environment["DATABASE_URL"] = scratch
                port = free_port()
                command = config.app_command_for(live, port, _python())
                base_url = stack.enter_context(
                    live_release(command, environment, port, project_dir, config.health_path, log)
                )
                result = rehearse(
                    scratch, pending, base_url, live, live_version, suite, progress, config.migrations_dir
                )
        except (RuntimeError, psycopg.Error, OSError) as exc:
            return GateResult(False, [f"rehearsal could not run: {exc}"])
    lines = [result.summary(), *(b.describe() for b in result.breakages)]
    return GateResult(result.passed, lines)


def _python() -> str:
    import sys

    return sys.executable
