"""Migration file headers, ordering and the contract gate."""

from pathlib import Path

import pytest

from components.migrations import MigrationError, load_migrations, parse_migration, version_at_least


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_headers_and_contract_gate(tmp_path: Path) -> None:
    write(tmp_path, "001_create.sql", "-- bluegreen: expand\nCREATE TABLE t (id int);\n")
    write(tmp_path, "002_drop.sql", "\n-- bluegreen: contract after=2.0.0\nALTER TABLE t DROP COLUMN x;\n")
    first, second = load_migrations(tmp_path)
    assert (first.kind, first.after) == ("expand", None)
    assert (second.kind, second.after, second.header_line) == ("contract", "2.0.0", 2)
    assert first.may_run_with("1.0.0", "1.0.0")
    assert not second.may_run_with("2.0.0", "1.9.9")
    assert second.may_run_with("2.0.0", "2.1")
    assert first.checksum != second.checksum and len(first.checksum) == 64


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("001_a.sql", "CREATE TABLE t (id int);", "first line must be"),
        ("001_a.sql", "-- bluegreen: shrink\nSELECT 1;", "kind 'shrink' is invalid"),
        ("001_a.sql", "-- bluegreen: contract\nSELECT 1;", "must say after="),
        ("001_a.sql", "-- bluegreen: expand after=1.0\nSELECT 1;", "contract steps only"),
        ("001_a.sql", "-- bluegreen: contract after=2.0 when=now\nSELECT 1;", "unknown header field"),
        ("001_a.sql", "-- bluegreen: contract after=latest\nSELECT 1;", "not dotted numbers"),
        ("a.sql", "-- bluegreen: expand\nSELECT 1;", "name must look like"),
        ("001_a.sql", "  \n", "empty file"),
    ],
)
def test_bad_files_are_rejected(tmp_path: Path, name: str, text: str, message: str) -> None:
    with pytest.raises(MigrationError, match=message):
        parse_migration(write(tmp_path, name, text))


def test_duplicate_sequence_numbers(tmp_path: Path) -> None:
    write(tmp_path, "001_a.sql", "-- bluegreen: expand\nSELECT 1;")
    write(tmp_path, "001_b.sql", "-- bluegreen: expand\nSELECT 1;")
    with pytest.raises(MigrationError, match="share sequence number 001"):
        load_migrations(tmp_path)


def test_versions_compare_numerically() -> None:
    assert version_at_least("2.10.0", "2.9.0")
    assert version_at_least("2.0", "2.0.0")
    assert not version_at_least("1.99", "2")
    assert version_at_least("v3.0.0-rc1", "3.0.0")
