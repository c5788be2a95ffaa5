"""``python -m policies lint``: exit codes, output formats, positions of parse errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from components.migrations import parse_migration
from policies.analyzer import analyze
from policies.cli import main

ROOT = Path(__file__).resolve().parent.parent
CASES = Path(__file__).parent / "lint_cases"

CLEAN = """-- bluegreen: expand
SET lock_timeout = '2s';
CREATE TABLE orders (id bigint PRIMARY KEY, note text);
ALTER TABLE orders ADD COLUMN memo text;
"""
BREAKING = """-- bluegreen: expand
SET lock_timeout = '2s';
-- héllo: non-ASCII text before a statement must not shift positions
ALTER TABLE orders DROP COLUMN note;
"""


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def test_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = write(tmp_path / "clean", "001_create.sql", CLEAN)
    assert main(["lint", str(clean.parent)]) == 0
    assert "clean" in capsys.readouterr().out
    broken = write(tmp_path / "broken", "001_drop.sql", BREAKING)
    assert main(["lint", str(broken)]) == 1
    out = capsys.readouterr().out
    assert f"{broken}:4:1: error [drop-column]" in out
    assert "safe recipe: stop using the column" in out
    assert main(["lint", str(tmp_path / "missing")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_bad_input_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad_header = write(tmp_path, "001_x.sql", "ALTER TABLE t DROP COLUMN c;\n")
    assert main(["lint", str(bad_header)]) == 2
    assert "first line must be '-- bluegreen: expand'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["lint", "--format", "xml", str(bad_header)])
    assert exit_info.value.code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err


def test_json_and_sarif(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = write(tmp_path, "001_drop.sql", BREAKING)
    assert main(["lint", "--format", "json", str(broken)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == 1 and report["statements"] == 2
    (finding,) = report["findings"]
    assert (finding["rule"], finding["line"], finding["statement"]) == (
        "drop-column",
        4,
        "ALTER TABLE orders DROP COLUMN note",
    )
    assert main(["lint", "--format", "sarif", str(broken)]) == 1
    sarif = json.loads(capsys.readouterr().out)
    (run,) = sarif["runs"]
    (result,) = run["results"]
    assert sarif["version"] == "2.1.0"
    assert result["ruleId"] == "drop-column" and result["level"] == "error"
    assert result["locations"][0]["physicalLocation"]["region"] == {"startLine": 4, "startColumn": 1}
    assert "drop-column" in {rule["id"] for rule in run["tool"]["driver"]["rules"]}


def test_unparseable_sql_is_an_error_with_its_position(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "001_typo.sql",
        "-- bluegreen: expand\nSET lock_timeout = '2s';\nALTER TABLE orders DROPP COLUMN note;\n",
    )
    (finding,) = analyze([parse_migration(path)]).findings
    assert (finding.rule, finding.severity, finding.line, finding.column) == ("parse-error", "error", 3, 20)
    assert 'syntax error at or near "DROPP"' in finding.message


def test_unparseable_do_block_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "001_do.sql", "-- bluegreen: expand\nDO $$ BEGIN ALTER TABLE t DROPP COLUMN c; END $$;\n")
    (finding,) = analyze([parse_migration(path)]).findings
    assert finding.rule == "parse-error" and finding.line == 2 and "in DO block" in finding.message


def test_lint_of_a_whole_directory_uses_history(tmp_path: Path) -> None:
    """The same statement is safe or not depending on what an earlier file validated."""
    directory = CASES / "dir_not_null_validated_earlier"
    assert main(["lint", str(directory / "004_set_not_null.sql")]) == 1  # alone: nothing validated
    # The whole history: only the column without a validated check is reported.
    result_lines = subprocess.run(
        [sys.executable, "-m", "policies", "lint", "--format", "json", str(directory)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result_lines.returncode == 1, result_lines.stderr
    findings = json.loads(result_lines.stdout)["findings"]
    assert [(Path(f["file"]).name, f["rule"], f["statement"]) for f in findings] == [
        ("004_set_not_null.sql", "set-not-null-scan", "ALTER TABLE orders ALTER COLUMN note SET NOT NULL")
    ]


def test_lint_follows_the_stacks_migrations_dir(tmp_path, capsys) -> None:
    from policies.cli import main

    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "001_drop.sql").write_text("-- bluegreen: expand\nALTER TABLE t DROP COLUMN c;\n")
    (tmp_path / "Pulumi.a.yaml").write_text("config:\n  bluegreen:migrations_dir: sql\n")
    (tmp_path / "Pulumi.none.yaml").write_text("config:\n  bluegreen:migrations_dir: ''\n")
    assert main(["lint", "--stack", "a", "--project-dir", str(tmp_path)]) == 1
    assert "001_drop.sql" in capsys.readouterr().out
    assert main(["lint", "--stack", "none", "--project-dir", str(tmp_path)]) == 0
    assert "no migrations" in capsys.readouterr().out
    assert main(["lint", "--stack", "missing", "--project-dir", str(tmp_path)]) == 2
