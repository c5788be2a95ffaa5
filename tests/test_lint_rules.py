"""Every rule against its case file: statements that must and must not trigger it.

A case is a migration file (or a directory of them, linted as one history) under
``tests/lint_cases``. Each statement is preceded by ``-- expect: rule[, rule]`` or
``-- expect: none``; a finding is attributed to the top-level statement it falls in
(DO blocks and function bodies report nested lines), and the rule set must match
exactly, so a missed and a spurious finding both fail.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from components.migrations import load_migrations, parse_migration
from policies.analyzer import Finding, analyze, statements_of
from policies.rules import RULES

CASES = Path(__file__).parent / "lint_cases"
EXPECT = re.compile(r"--\s*expect:\s*(.+)$", re.M)


def expectations(path: Path) -> list[tuple[int, set[str]]]:
    """(first line, expected rules) per top-level statement of a case file."""
    expected = []
    for statement in statements_of(path.read_text()):
        if statement.context:
            continue
        marks = EXPECT.findall(statement.annotated_text)
        assert len(marks) == 1, f"{path.name}:{statement.line}: each statement needs exactly one '-- expect:'"
        rules = {r.strip() for r in marks[0].split(",")} - {"none"}
        assert rules <= set(RULES), f"{path.name}: unknown rule in expectation {rules - set(RULES)}"
        expected.append((statement.line, rules))
    return expected


def found_per_statement(path: Path, findings: list[Finding], starts: list[int]) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {line: set() for line in starts}
    for finding in findings:
        if Path(finding.file).resolve() != path.resolve():
            continue
        owner = max(line for line in starts if line <= finding.line)
        found[owner].add(finding.rule)
    return found


CASE_PATHS = sorted(CASES.iterdir())


@pytest.mark.parametrize("case", CASE_PATHS, ids=[p.name for p in CASE_PATHS])
def test_case(case: Path) -> None:
    migrations = load_migrations(case) if case.is_dir() else [parse_migration(case)]
    result = analyze(migrations)
    for migration in migrations:
        expected = expectations(migration.path)
        found = found_per_statement(migration.path, list(result.findings), [line for line, _ in expected])
        for line, rules in expected:
            assert found[line] == rules, (
                f"{migration.name}:{line}: expected {sorted(rules)}, found {sorted(found[line])}"
            )


def test_every_rule_has_a_case() -> None:
    mentioned = set()
    for path in CASES.rglob("*.sql"):
        for mark in EXPECT.findall(path.read_text()):
            mentioned |= {r.strip() for r in mark.split(",")}
    untested = set(RULES) - mentioned - {"parse-error"}  # parse errors cannot live in a case file's statements
    assert not untested, f"rules without a case: {sorted(untested)}"
