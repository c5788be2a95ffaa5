"""``migrations-backward-compatible`` and the migration records the program registers."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pulumi
import pytest
from policy_args import from_run, policy_resource, violations
from pulumi_harness import ProgramFailedError
from test_aws_component import aws_stack
from test_azure_component import azure_stack
from test_gcp_component import gcp_stack

from components import migration_set
from components.migration_set import MIGRATION_TYPE, MigrationRecordProvider
from policies.migration_policy import validate_migrations

CREATE = "-- bluegreen: expand\nCREATE TABLE orders (id bigint PRIMARY KEY, note text);\n"
ADD_MEMO = "-- bluegreen: expand\nSET lock_timeout = '2s';\nALTER TABLE orders ADD COLUMN memo text;\n"
DROP_NOTE = "-- bluegreen: expand\nSET lock_timeout = '2s';\nALTER TABLE orders DROP COLUMN note;\n"
CONTRACT_NOTE = "-- bluegreen: contract after=2.0.0\nSET lock_timeout = '2s';\nALTER TABLE orders DROP COLUMN note;\n"


def record(name: str, sql: str, kind: str = "expand", after: str | None = None, **release: Any) -> Any:
    props = {
        "name": name,
        "kind": kind,
        "after": after,
        "sql": sql,
        "checksum": hashlib.sha256(sql.encode()).hexdigest(),
        "blueVersion": release.get("blue", "1.0.0"),
        "greenVersion": release.get("green", "1.0.0"),
    }
    return policy_resource(MIGRATION_TYPE, f"prod-bluegreen-migration-{name[:-4]}", props)


def messages(*records: Any) -> list[str]:
    found = violations(validate_migrations, records)
    assert found is not None
    return [m for m, _ in found]


def test_clean_history_passes() -> None:
    assert messages(record("001_create.sql", CREATE), record("002_add_memo.sql", ADD_MEMO)) == []
    assert messages() == []


def test_breaking_expand_names_file_line_rule_and_recipe() -> None:
    breaking = record("002_drop_note.sql", DROP_NOTE)
    found = violations(validate_migrations, [record("001_create.sql", CREATE), breaking])
    assert found is not None
    ((message, urn),) = found
    assert message.startswith("migrations/002_drop_note.sql:3: [drop-column] drops column orders.note")
    assert "Statement: ALTER TABLE orders DROP COLUMN note." in message
    assert "Safe recipe: stop using the column in a release first" in message
    assert urn == breaking.urn


def test_a_contract_waits_for_both_colours_and_nothing_may_wait_behind_it() -> None:
    """Like the runner: a contract the colours do not allow yet is held back, and so is every later file."""
    release = {"blue": "2.0.0", "green": "1.9.0"}
    create = record("001_create.sql", CREATE, **release)
    early = record("002_drop_note.sql", CONTRACT_NOTE, "contract", "2.0.0", **release)
    assert messages(create, early) == []  # waiting is fine
    needed = record("003_add_memo.sql", ADD_MEMO, **release)
    (message,) = messages(create, early, needed)
    assert message.startswith("migrations/003_add_memo.sql: [expand-behind-contract]")
    assert "held back behind 002_drop_note.sql (contract after=2.0.0)" in message and "green runs 1.9.0" in message
    ready = {"blue": "2.0.0", "green": "2.1.0"}
    assert (
        messages(
            record("001_create.sql", CREATE, **ready),
            record("002_drop_note.sql", CONTRACT_NOTE, "contract", "2.0.0", **ready),
            record("003_add_memo.sql", ADD_MEMO, **ready),
        )
        == []
    )


def test_history_order_is_by_name_not_registration() -> None:
    """A check validated in 002 makes SET NOT NULL in 003 safe, whatever order the engine lists them in."""
    check = "-- bluegreen: contract after=1.0.0\nSET lock_timeout = '2s';\n"
    files = [
        record("001_create.sql", CREATE),
        record(
            "002_check.sql",
            check + "ALTER TABLE orders ADD CONSTRAINT c CHECK (note IS NOT NULL);\n",
            "contract",
            "1.0.0",
        ),
        record("003_not_null.sql", check + "ALTER TABLE orders ALTER COLUMN note SET NOT NULL;\n", "contract", "1.0.0"),
    ]
    assert messages(*reversed(files)) == [
        # 002 validated while adding: a scan under lock (the one finding), which then makes 003 safe.
        m
        for m in messages(*files)
    ]
    (only,) = messages(*files)
    assert "migrations/002_check.sql:3: [constraint-without-not-valid]" in only


def test_tampered_record_is_rejected() -> None:
    tampered = record("001_create.sql", CREATE)
    tampered.props["sql"] = CREATE + "DROP TABLE orders;\n"
    found = messages(tampered)
    assert "recorded checksum does not match its SQL" in found[0]


# -- what the program registers (every target) ---------------------------------------------------


@pytest.fixture
def migrations_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "001_create.sql").write_text(CREATE)
    (directory / "002_add_memo.sql").write_text(ADD_MEMO)
    monkeypatch.chdir(tmp_path)  # the program reads migrations_dir (default "migrations") from there
    return directory


STACKS = {"aws": aws_stack, "gcp": gcp_stack, "azure": azure_stack}


@pytest.mark.parametrize("cloud", sorted(STACKS))
def test_every_target_registers_its_migrations(cloud: str, migrations_dir: Path) -> None:
    run = STACKS[cloud](green_version="2.0.0")
    (component,) = [r for r in run.resources if r.type.startswith("bluegreen:") and r.type.endswith(":BlueGreen")]
    records = run.of_type(MIGRATION_TYPE)
    assert sorted(r.inputs["name"] for r in records) == ["001_create.sql", "002_add_memo.sql"]
    for r in records:
        assert r.custom and r.parent == component.urn and r.name.startswith(f"{component.name}-migration-")
        assert r.inputs["sql"] == (migrations_dir / r.inputs["name"]).read_text()
        assert (r.inputs["blueVersion"], r.inputs["greenVersion"], r.inputs["kind"]) == ("1.0.0", "2.0.0", "expand")
    assert violations(validate_migrations, from_run(run)) == []


def test_a_breaking_migration_rejects_the_real_stack(migrations_dir: Path) -> None:
    (migrations_dir / "003_drop_note.sql").write_text(DROP_NOTE)
    found = violations(validate_migrations, from_run(aws_stack()))
    assert found is not None
    ((message, urn),) = found
    assert "migrations/003_drop_note.sql:3: [drop-column]" in message
    assert urn is not None and urn.endswith("prod-bluegreen-migration-003_drop_note")


def test_a_malformed_migration_stops_the_program_before_any_resource(migrations_dir: Path) -> None:
    (migrations_dir / "003_no_header.sql").write_text("ALTER TABLE orders DROP COLUMN note;\n")
    with pytest.raises(ProgramFailedError, match="first line must be") as failure:
        aws_stack()
    assert failure.value.resources == []


def test_flipping_live_colour_leaves_migration_records_unchanged(migrations_dir: Path) -> None:
    blue = {r.name: r.inputs for r in aws_stack(live_color="blue").of_type(MIGRATION_TYPE)}
    green = {r.name: r.inputs for r in aws_stack(live_color="green").of_type(MIGRATION_TYPE)}
    assert blue == green and len(blue) == 2


# -- the provider ------------------------------------------------------------------------------


def props(sql: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "001_create.sql",
        "kind": "expand",
        "after": None,
        "sql": sql,
        "checksum": hashlib.sha256(sql.encode()).hexdigest(),
        "blueVersion": "1.0.0",
        "greenVersion": "1.0.0",
        **extra,
    }


def test_provider_refuses_a_changed_recorded_migration() -> None:
    provider = MigrationRecordProvider()
    assert provider.check({}, props(CREATE)).failures == []
    assert provider.check(props(CREATE), props(CREATE)).failures == []
    (failure,) = provider.check(props(CREATE), props(CREATE + "-- edited\n")).failures
    assert failure.property == "checksum" and "write the change as a new migration" in failure.reason


def test_provider_updates_release_versions_in_place_and_records_identity() -> None:
    provider = MigrationRecordProvider()
    created = provider.create(props(CREATE))
    assert created.id.startswith("001_create.sql@") and created.outs["checksum"] == props(CREATE)["checksum"]
    # A new release is an in-place update, so the engine stores the versions the pack reads
    # (tests/engine/test_policy_pack.py shows it on the real engine).
    release = provider.diff(created.id, props(CREATE), props(CREATE, greenVersion="2.0.0"))
    assert release.changes and not release.replaces
    updated = provider.update(created.id, props(CREATE), props(CREATE, greenVersion="2.0.0"))
    assert updated.outs["greenVersion"] == "2.0.0"
    assert not provider.diff(created.id, props(CREATE), props(CREATE)).changes
    assert provider.diff(created.id, props(CREATE), props(CREATE, kind="contract", after="2.0.0")).changes
    provider.delete(created.id, props(CREATE))  # forgetting a record touches nothing


def test_record_resource_type_is_what_the_policy_looks_for() -> None:
    assert issubclass(migration_set.MigrationRecord, pulumi.dynamic.Resource)
    assert f"pulumi-python:{migration_set.MigrationRecord._resource_type_name}" == MIGRATION_TYPE


def test_the_example_service_migrations_pass() -> None:
    """The example service's migrations (a full expand/backfill/contract cycle) under a real stack."""
    run = aws_stack(migrations_dir="examples/orders/migrations")
    assert sorted(r.inputs["name"] for r in run.of_type(MIGRATION_TYPE)) == sorted(
        p.name for p in (Path(__file__).resolve().parents[1] / "examples/orders/migrations").glob("*.sql")
    )
    assert len(run.of_type(MIGRATION_TYPE)) >= 4
    assert violations(validate_migrations, from_run(run)) == []


def test_migrations_dir_empty_registers_nothing_and_a_custom_one_its_files(
    migrations_dir: Path, tmp_path: Path
) -> None:
    assert aws_stack(migrations_dir="").of_type(MIGRATION_TYPE) == []
    custom = tmp_path / "db" / "sql"
    custom.mkdir(parents=True)
    (custom / "001_create.sql").write_text(CREATE)
    run = aws_stack(migrations_dir="db/sql")
    assert [r.inputs["name"] for r in run.of_type(MIGRATION_TYPE)] == ["001_create.sql"]
