"""The migration gate before a deploy: lint, then a rehearsal on real PostgreSQL with the live release.

The end-to-end cases run a real local stack (HAProxy, PostgreSQL, app processes on
127.0.0.1) whose migrations directory is a copy of the example service's first three
files plus the file under test, so the live release (1.0.0, which reads and writes
``orders.total_cents``) meets exactly one pending change.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from components.config import StackConfig
from components.local.runtime import LocalEnvironment
from scripts.__main__ import main
from scripts.rehearsal import check_pending_migrations, pending_migrations
from scripts.targets import SharedDatabase
from scripts.targets.local import LocalTarget
from tests.local.sandbox import LocalProject, scratch_project
from tests.pipeline.test_e2e_local import MONITOR, deploy_under_load, fast_smoke_file

REPO = Path(__file__).resolve().parent.parent
EARLIER = ("001_create_orders.sql", "002_add_order_total.sql", "003_backfill_order_total.sql")

# A wrong suppression: lint is told the drop is fine, the rehearsal finds out it is not.
DROP_TOTAL_CENTS = """-- bluegreen: expand
SET lock_timeout = '2s';
-- bluegreen: allow drop-column: release 2.0.0 writes total, so total_cents looks unused
ALTER TABLE orders DROP COLUMN total_cents;
"""
ADD_COUPON = """-- bluegreen: expand
SET lock_timeout = '2s';
ALTER TABLE orders ADD COLUMN coupon text;
"""
RENAME_WITH_VIEW = """-- bluegreen: expand
SET lock_timeout = '2s';
ALTER TABLE orders RENAME TO purchase_orders;
CREATE VIEW orders AS SELECT * FROM purchase_orders;
"""


def with_migrations(project: LocalProject, *extra: tuple[str, str]) -> Path:
    """The stack's migrations_dir pointed at the project's own copy, which this test may change."""
    directory = project.root / "migrations"
    directory.mkdir()
    project.write(migrations_dir="migrations")
    for name in EARLIER:
        shutil.copy(REPO / "examples/orders/migrations" / name, directory / name)
    for name, text in extra:
        (directory / name).write_text(text)
    return directory


@pytest.fixture
def project() -> Iterator[LocalProject]:
    with scratch_project() as made:
        yield made


def columns(env: LocalEnvironment) -> set[str]:
    with psycopg.connect(env.database_url()) as conn:
        rows = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'orders'")
        return {r[0] for r in rows}


def applied(env: LocalEnvironment) -> list[str]:
    with psycopg.connect(env.database_url()) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM bluegreen_migrations ORDER BY name")]


def scratch_databases(env: LocalEnvironment) -> list[str]:
    with psycopg.connect(env.postgres.admin_url()) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'bluegreen_rehearsal_%'")
        return [r[0] for r in rows]


@pytest.mark.e2e
def test_a_drop_the_live_release_needs_stops_the_deploy_and_changes_nothing(
    project: LocalProject, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = with_migrations(project)
    env = project.environment()
    env.up()
    before = columns(env)
    assert "total_cents" in before and applied(env) == list(EARLIER)
    (directory / "004_drop_total_cents_now.sql").write_text(DROP_TOTAL_CENTS)
    report = project.root / "report.json"

    args = ["deploy", *project.cli_args(), "--version", "2.0.0", "--file", str(fast_smoke_file(project.root))]
    code = main([*args, "--report", str(report)])

    assert code == 1
    record = json.loads(report.read_text())
    assert (record["outcome"], record["exit_code"]) == ("migrations refused", 1)
    said = [e["message"] for e in record["events"] if e["kind"] == "migrations"]
    assert said[0].startswith("rehearsal FAILED (1 breakage(s)): 1 pending migration(s)")
    assert said[1].startswith(
        "migrations/004_drop_total_cents_now.sql:4: `ALTER TABLE orders DROP COLUMN total_cents` broke check "
        "'readiness (database and schema)': status 503"
    )
    assert "schema lacks orders.total_cents" in said[1]
    assert "broke check" in capsys.readouterr().err
    # The shared database, the stack file and the running colours are as they were.
    assert columns(env) == before and applied(env) == list(EARLIER)
    assert project.config().green_version == "1.0.0"
    assert env.status()["colors"]["green"]["version"] == "1.0.0"
    assert scratch_databases(env) == []


@pytest.mark.e2e
def test_an_expand_only_change_and_a_rename_with_its_view_pass(project: LocalProject) -> None:
    directory = with_migrations(project)
    env = project.environment()
    env.up()
    before = columns(env)
    (directory / "004_add_coupon.sql").write_text(ADD_COUPON)
    (directory / "005_rename_with_view.sql").write_text(RENAME_WITH_VIEW)
    lines: list[str] = []

    config = project.config()
    shared = LocalTarget(project.stack, project.root).shared_database("blue")
    result = check_pending_migrations(
        project.root, config, fast_smoke_file(project.root), {"blue": "1.0.0", "green": "1.0.0"}, shared, lines.append
    )

    assert result.passed, result.lines
    assert result.lines[0].startswith("rehearsal passed: 2 pending migration(s), 5 statement(s)")
    assert any("copying the shared database" in line for line in lines)
    assert columns(env) == before and "coupon" not in before  # only the scratch copy changed
    assert applied(env) == list(EARLIER) and scratch_databases(env) == []


def test_lint_refuses_before_any_database_is_touched(tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    directory.mkdir()
    for name in EARLIER:
        shutil.copy(REPO / "examples/orders/migrations" / name, directory / name)
    (directory / "004_drop.sql").write_text(DROP_TOTAL_CENTS.replace("-- bluegreen: allow", "-- note:"))
    config = StackConfig.parse({"cloud": "local"}, "t")
    result = check_pending_migrations(
        tmp_path, config, REPO / "examples/orders/smoke.yaml", {"blue": "1.0.0", "green": "1.0.0"}, None, print
    )
    assert not result.passed
    assert result.lines[0] == "lint refused the migrations:"
    assert result.lines[1].startswith(f"{directory / '004_drop.sql'}:4: [drop-column]")
    assert "Safe recipe:" in result.lines[1]


def test_pending_follows_the_runner(tmp_path: Path) -> None:
    from components.migrations import load_migrations

    directory = tmp_path / "migrations"
    directory.mkdir()
    for name in (*EARLIER, "004_drop_total_cents.sql"):
        shutil.copy(REPO / "examples/orders/migrations" / name, directory / name)
    (directory / "005_add_coupon.sql").write_text(ADD_COUPON)
    migrations = load_migrations(directory)
    done = {m.name: m.checksum for m in migrations[:2]}
    assert [m.name for m in pending_migrations(migrations, done, "1.0.0", "1.0.0")] == ["003_backfill_order_total.sql"]
    names = [m.name for m in pending_migrations(migrations, done, "2.0.0", "2.1.0")]
    assert names == ["003_backfill_order_total.sql", "004_drop_total_cents.sql", "005_add_coupon.sql"]


@pytest.mark.e2e
def test_without_a_copyable_database_a_scratch_cluster_is_built_from_history(project: LocalProject) -> None:
    """The cloud path: the shared database is only read (which migrations it has); the rehearsal runs
    on a throwaway cluster built from those files, with the live version started from app_command."""
    directory = with_migrations(project)
    env = project.environment()
    env.up()
    before = columns(env)
    (directory / "004_drop_total_cents_now.sql").write_text(DROP_TOTAL_CENTS)
    # What a cloud target hands over: the URL only (no admin access to copy it), and the live release's env.
    shared = SharedDatabase(env.database_url(), None, {"APP_VERSION": "1.0.0", "APP_COLOR": "blue"})
    lines: list[str] = []

    result = check_pending_migrations(
        project.root, project.config(), fast_smoke_file(project.root), {"blue": "1.0.0", "green": "1.0.0"}, shared,
        lines.append,
    )  # fmt: skip

    assert not result.passed, result.lines
    assert any("building a scratch database from 3 applied migration(s)" in line for line in lines)
    assert result.lines[1].startswith("migrations/004_drop_total_cents_now.sql:4: `ALTER TABLE orders DROP COLUMN")
    assert columns(env) == before and applied(env) == list(EARLIER)
    skipped = check_pending_migrations(
        project.root, project.config(), fast_smoke_file(project.root), {"blue": "1.0.0", "green": "1.0.0"}, None,
        lines.append,
    )  # fmt: skip
    assert skipped.passed and "rehearsal skipped" in skipped.lines[0] and "BLUEGREEN_DATABASE_URL" in skipped.lines[0]


def test_deploy_refuses_a_breaking_migration_naming_file_line_rule_and_recipe(
    project: LocalProject, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lint runs first: nothing is started, applied or written when it refuses."""
    directory = with_migrations(project)
    (directory / "004_drop.sql").write_text(DROP_TOTAL_CENTS.replace("-- bluegreen: allow", "-- note:"))
    stack_file = (project.root / f"Pulumi.{project.stack}.yaml").read_text()
    report = project.root / "report.json"

    smoke = str(REPO / "examples/orders/smoke.yaml")
    code = main(["deploy", *project.cli_args(), "--version", "2.0.0", "--file", smoke, "--report", str(report)])

    assert code == 1
    said = [e["message"] for e in json.loads(report.read_text())["events"] if e["kind"] == "migrations"]
    assert said[0] == "lint refused the migrations:"
    assert said[1].startswith(f"{directory / '004_drop.sql'}:4: [drop-column] drops column orders.total_cents")
    assert "Safe recipe: stop using the column in a release first" in said[1]
    assert (project.root / f"Pulumi.{project.stack}.yaml").read_text() == stack_file
    assert not (project.root / ".bluegreen" / project.stack / "postgres").exists()


# A contract step that 2.0.0 (live) still needs: it drops the column 2.x reads.
DROP_TOTAL_AFTER_2 = """-- bluegreen: contract after=2.0.0
SET lock_timeout = '2s';
ALTER TABLE orders DROP COLUMN total;
"""


def contract_unlocked_by_the_release(project: LocalProject, contract: str) -> LocalEnvironment:
    """Blue 2.0.0 live, green still on 1.0.0: a contract after=2.0.0 waits for green's next release."""
    with_migrations(project, ("004_contract.sql", contract))
    project.write(blue_version="2.0.0", monitor=MONITOR, scale_down_delay_s=1)
    env = project.environment()
    env.up()
    assert applied(env) == list(EARLIER)  # held back: green runs 1.0.0
    return env


@pytest.mark.e2e
def test_a_contract_the_new_version_unlocks_is_rehearsed_before_it_is_applied(project: LocalProject) -> None:
    contract = (REPO / "examples/orders/migrations/004_drop_total_cents.sql").read_text()
    env = contract_unlocked_by_the_release(project, contract)

    code, stats = deploy_under_load(project, env, "2.1.0", fast_smoke_file(project.root))

    assert code == 0 and stats.failed == 0, stats.summary()
    events = json.loads((project.root / "report.json").read_text())["events"]
    said = [(e["kind"], e["message"]) for e in events]
    rehearsed = next(i for i, (kind, _) in enumerate(said) if kind == "migrations")
    assert said[rehearsed][1].startswith("rehearsal passed: 1 pending migration(s)")
    first_apply = next(i for i, (kind, _) in enumerate(said) if kind == "apply")
    applied_at = next(i for i, (_, m) in enumerate(said) if m.startswith("applied 004_contract.sql while green"))
    assert rehearsed < first_apply < applied_at
    assert applied(env) == [*EARLIER, "004_contract.sql"] and "total_cents" not in columns(env)


@pytest.mark.e2e
def test_a_breaking_contract_the_new_version_unlocks_stops_the_deploy_with_nothing_changed(
    project: LocalProject,
) -> None:
    env = contract_unlocked_by_the_release(project, DROP_TOTAL_AFTER_2)
    before = columns(env)

    code, _stats = deploy_under_load(project, env, "2.1.0", fast_smoke_file(project.root))

    assert code == 1
    record = json.loads((project.root / "report.json").read_text())
    assert record["outcome"] == "migrations refused"
    said = [e["message"] for e in record["events"] if e["kind"] == "migrations"]
    assert said[0].startswith("rehearsal FAILED (1 breakage(s)): 1 pending migration(s)")
    assert said[1].startswith("migrations/004_contract.sql:3: `ALTER TABLE orders DROP COLUMN total` broke check")
    assert not any(e["kind"] in ("apply", "switch") for e in record["events"])
    assert columns(env) == before and applied(env) == list(EARLIER)
    assert project.config().green_version == "1.0.0" and env.status()["colors"]["green"]["version"] == "1.0.0"


@pytest.mark.e2e
def test_a_scratch_copy_a_killed_rehearsal_left_is_dropped_by_the_next(project: LocalProject) -> None:
    directory = with_migrations(project)
    env = project.environment()
    env.up()
    with psycopg.connect(env.postgres.admin_url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE bluegreen_rehearsal_4242_1")  # as a SIGKILLed deploy leaves it
    (directory / "004_add_coupon.sql").write_text(ADD_COUPON)
    lines: list[str] = []
    shared = LocalTarget(project.stack, project.root).shared_database("blue")
    result = check_pending_migrations(
        project.root,
        project.config(),
        fast_smoke_file(project.root),
        {"blue": "1.0.0", "green": "1.0.0"},
        shared,
        lines.append,
    )
    assert result.passed, result.lines
    assert any("dropping scratch database bluegreen_rehearsal_4242_1" in line for line in lines)
    assert scratch_databases(env) == []


def test_a_badly_named_migration_stops_deploy_as_bad_input(tmp_path: Path, capsys) -> None:
    (tmp_path / "Pulumi.t.yaml").write_text(
        "config:\n  bluegreen:cloud: local\n  bluegreen:app_command: x {port}\n  bluegreen:migrations_dir: m\n"
        "  bluegreen:listen_port: 28080\n  bluegreen:preview_port: 28443\n  bluegreen:app_port: 28081\n"
    )
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "1_Bad Name.sql").write_text("-- bluegreen: expand\nSELECT 1;\n")
    before = (tmp_path / "Pulumi.t.yaml").read_text()
    smoke = tmp_path / "smoke.yaml"
    smoke.write_text("checks:\n  - {name: up, path: /, expect: {status: 200}}\n")
    code = main(["deploy", "--stack", "t", "--project-dir", str(tmp_path), "--version", "2.0.0", "--file", str(smoke)])
    assert code == 2
    assert "name must look like 001_short_description.sql" in " ".join(capsys.readouterr().err.split())
    assert (tmp_path / "Pulumi.t.yaml").read_text() == before
