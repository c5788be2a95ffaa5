"""scripts/migrate.py against a real PostgreSQL: order, checksums, contract gate, no-transaction files."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from components.local.runtime import LocalEnvironment
from components.migration_runner import StackBehindDatabaseError, apply_migrations
from components.migrations import MigrationError
from scripts.migrate import main
from tests.local.sandbox import REPO, scratch_project

EXAMPLE_MIGRATIONS = REPO / "examples/orders/migrations"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalEnvironment]:
    with scratch_project("migrate") as project:
        env = project.environment()
        env.ensure_database()
        yield env


@pytest.fixture
def database_url(cluster: LocalEnvironment) -> str:
    """A fresh database per test, owned by the app role."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(cluster.postgres.admin_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(cluster.config.db.username)
            )
        )
    return cluster.database_url().rsplit("/", 1)[0] + f"/{name}"


def columns(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'orders'")
        return {r[0] for r in rows}


def test_example_cycle_holds_the_contract_until_both_colours_run_v2(database_url: str) -> None:
    first = apply_migrations(database_url, "1.0.0", "2.0.0", EXAMPLE_MIGRATIONS)
    assert first.applied == ["001_create_orders.sql", "002_add_order_total.sql", "003_backfill_order_total.sql"]
    assert first.pending == ["004_drop_total_cents.sql"] and "blue runs 1.0.0" in (first.held_back_by or "")
    assert {"total_cents", "total"} <= columns(database_url)

    with psycopg.connect(database_url) as conn:  # v1 writes cents only; the trigger fills total
        conn.execute("INSERT INTO orders (item, quantity, total_cents) VALUES ('a', 1, 1234)")
        conn.execute("INSERT INTO orders (item, quantity, total) VALUES ('b', 1, 5.5)")  # v2 writes total only
        rows = conn.execute("SELECT item, total_cents, total FROM orders ORDER BY id").fetchall()
    assert [(r[0], r[1], str(r[2])) for r in rows] == [("a", 1234, "12.34"), ("b", 550, "5.50")]

    second = apply_migrations(database_url, "2.0.0", "2.1.0", EXAMPLE_MIGRATIONS)
    assert second.applied == ["004_drop_total_cents.sql"] and second.pending == []
    assert "total_cents" not in columns(database_url)
    assert apply_migrations(database_url, "2.0.0", "2.1.0", EXAMPLE_MIGRATIONS).applied == []


def test_backfill_fills_rows_written_before_the_expand(database_url: str, tmp_path: Path) -> None:
    only_first = tmp_path / "m"
    only_first.mkdir()
    shutil.copy(EXAMPLE_MIGRATIONS / "001_create_orders.sql", only_first)
    apply_migrations(database_url, "1.0.0", "1.0.0", only_first)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO orders (item, quantity, total_cents) SELECT 'x' || i, 1, i FROM generate_series(1, 2500) i"
        )
    apply_migrations(database_url, "1.0.0", "1.0.0", EXAMPLE_MIGRATIONS)
    with psycopg.connect(database_url) as conn:
        missing = conn.execute("SELECT count(*) FROM orders WHERE total IS NULL").fetchone()[0]
        sample = conn.execute("SELECT total FROM orders WHERE total_cents = 2500").fetchone()[0]
    assert missing == 0 and str(sample) == "25.00"


def test_changed_applied_file_is_refused_with_exit_2(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "m"
    shutil.copytree(EXAMPLE_MIGRATIONS, directory)
    apply_migrations(database_url, "1.0.0", "1.0.0", directory)
    path = directory / "002_add_order_total.sql"
    path.write_text(path.read_text() + "\n-- edited after it was applied\n")
    with pytest.raises(MigrationError, match=r"002_add_order_total\.sql changed after it was applied"):
        apply_migrations(database_url, "1.0.0", "1.0.0", directory)
    args = ["--database-url", database_url, "--blue-version", "1.0.0", "--green-version", "1.0.0"]
    assert main([*args, "--dir", str(directory)]) == 2
    assert "changed after it was applied" in capsys.readouterr().err


def test_failed_migration_rolls_back_and_is_not_recorded(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "001_ok.sql").write_text("-- bluegreen: expand\nCREATE TABLE kept (id int);\n")
    (tmp_path / "002_bad.sql").write_text(
        "-- bluegreen: expand\nCREATE TABLE half_done (id int);\nSELECT * FROM no_such_table;\n"
    )
    with pytest.raises(MigrationError, match=r"002_bad\.sql failed and was rolled back"):
        apply_migrations(database_url, "1.0.0", "1.0.0", tmp_path)
    with psycopg.connect(database_url) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        recorded = [r[0] for r in conn.execute("SELECT name FROM bluegreen_migrations")]
    assert "kept" in tables and "half_done" not in tables
    assert recorded == ["001_ok.sql"]


def test_no_transaction_file_runs_create_index_concurrently(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "001_t.sql").write_text("-- bluegreen: expand\nCREATE TABLE t (id int, v text);\n")
    (tmp_path / "002_idx.sql").write_text(
        "-- bluegreen: expand\n-- bluegreen-run: no-transaction\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_v_idx ON t (v);\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_id_idx ON t (id);\n"
    )
    assert apply_migrations(database_url, "1.0.0", "1.0.0", tmp_path).applied == ["001_t.sql", "002_idx.sql"]
    with psycopg.connect(database_url) as conn:
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 't'")}
    assert indexes == {"t_v_idx", "t_id_idx"}

    (tmp_path / "003_in_tx.sql").write_text(
        "-- bluegreen: expand\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_both ON t (id, v);\n"
    )
    with pytest.raises(MigrationError, match="cannot run inside a transaction block"):
        apply_migrations(database_url, "1.0.0", "1.0.0", tmp_path)


def test_versions_behind_an_applied_contract_step_are_refused_before_anything(database_url: str) -> None:
    apply_migrations(database_url, "2.0.0", "2.0.0", EXAMPLE_MIGRATIONS)  # 004 (after=2.0.0) applied
    # The stack file went back in time (restored from git): releases that need total_cents.
    with pytest.raises(
        StackBehindDatabaseError, match=r"applied 004_drop_total_cents\.sql .* releases >= 2\.0\.0"
    ) as e:
        apply_migrations(database_url, "2.0.0", "2.0.0", EXAMPLE_MIGRATIONS, starting=("1.0.0", "1.0.0"))
    assert "Set blue_version and green_version to 2.0.0 or later" in str(e.value)
    with pytest.raises(StackBehindDatabaseError):
        apply_migrations(database_url, "2.0.0", "1.0.0", EXAMPLE_MIGRATIONS)
    apply_migrations(database_url, "2.0.0", "2.0.0", EXAMPLE_MIGRATIONS, starting=("2.0.0", "2.1.0"))  # at or past
