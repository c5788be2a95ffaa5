"""Input that used to escape the rules: each is refused up front, exit 2, naming the problem, changing nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.config import ConfigError, StackConfig
from components.migrations import MigrationError, parse_migration
from policies.cli import main as lint_main
from scripts.__main__ import main
from scripts.smoke import SmokeFileError, load_suite

LATIN1 = "caf\xe9".encode("latin-1")  # é as one byte: not UTF-8


def test_a_stack_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.t.yaml").write_bytes(b"config:\n  bluegreen:cloud: local\n  # " + LATIN1 + b"\n")
    with pytest.raises(ConfigError, match=r"Pulumi\.t\.yaml: the stack file is not UTF-8 text \(byte \d+ is 0xe9\)"):
        StackConfig.from_stack_file("t", tmp_path)


def test_a_smoke_file_that_is_not_utf8_is_a_smoke_file_error(tmp_path: Path) -> None:
    path = tmp_path / "smoke.yaml"
    path.write_bytes(b"checks:\n  - name: " + LATIN1 + b"\n    path: /\n    expect: {status: 200}\n")
    with pytest.raises(SmokeFileError, match="smoke file is not UTF-8"):
        load_suite(path)


def test_a_migration_that_is_not_utf8_is_a_migration_error_and_lint_exit_2(tmp_path: Path, capsys) -> None:
    path = tmp_path / "001_cafe.sql"
    path.write_bytes(b"-- bluegreen: expand\n-- " + LATIN1 + b"\nSELECT 1;\n")
    with pytest.raises(MigrationError, match="migration is not UTF-8"):
        parse_migration(path)
    assert lint_main(["lint", str(tmp_path)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def _smoke(tmp_path: Path, checks: str) -> Path:
    path = tmp_path / "smoke.yaml"
    path.write_text("checks:\n" + checks)
    return path


def test_a_smoke_check_without_expect_is_refused_naming_it(tmp_path: Path) -> None:
    path = _smoke(tmp_path, "  - name: ok\n    path: /\n    expect: {status: 200}\n  - name: vague\n    path: /x\n")
    with pytest.raises(SmokeFileError, match=r"smoke\.yaml:5: checks\[1\]: check 'vague' has no expect"):
        load_suite(path)


def test_a_placeholder_no_check_saves_is_refused_at_load(tmp_path: Path) -> None:
    path = _smoke(tmp_path, "  - name: read\n    path: /orders/{order_id}\n    expect: {status: 200}\n")
    with pytest.raises(SmokeFileError, match=r"\{order_id\} is never set.*saved before this check: none"):
        load_suite(path)


def test_a_placeholder_is_known_only_after_the_check_that_saves_it(tmp_path: Path) -> None:
    create = "  - name: create\n    method: POST\n    path: /orders\n    expect: {status: 201}\n    save: {id: id}\n"
    read = "  - name: read\n    path: /orders/{id}\n    expect: {fields: {color: '{color}', v: '{version}'}}\n"
    assert [c.name for c in load_suite(_smoke(tmp_path, create + read)).checks] == ["create", "read"]
    with pytest.raises(SmokeFileError, match=r"\{id\} is never set"):
        load_suite(_smoke(tmp_path, read + create))


@pytest.mark.parametrize("command", ["status", "up", "down", "deploy", "rollback", "switch", "monitor", "demo"])
def test_a_stack_name_that_is_a_path_is_refused_before_anything_is_created(
    command: str, tmp_path: Path, capsys
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    extra = {"deploy": ["--version", "2.0.0"], "switch": ["--to", "green"]}.get(command, [])
    with pytest.raises(SystemExit) as refused:
        main([command, "--stack", "../../escaped", "--project-dir", str(project), *extra])
    assert refused.value.code == 2
    assert "is not a stack name" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["project"]


def test_an_unwritable_report_path_is_refused_before_the_stack_is_touched(tmp_path: Path, capsys) -> None:
    (tmp_path / "Pulumi.t.yaml").write_text("config:\n  bluegreen:cloud: local\n")
    before = (tmp_path / "Pulumi.t.yaml").read_text()
    args = ["rollback", "--stack", "t", "--project-dir", str(tmp_path)]
    assert main([*args, "--report", "/proc/no-such-dir/run.json"]) == 2
    assert "--report /proc/no-such-dir/run.json: cannot be written" in capsys.readouterr().err
    assert main([*args, "--timeline", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert (tmp_path / "Pulumi.t.yaml").read_text() == before
    assert not (tmp_path / ".bluegreen").exists(), "not even the lock was taken"
