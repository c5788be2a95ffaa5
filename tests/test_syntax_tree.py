"""The analyzer's lazily built trees are pglast's own trees, attribute for attribute."""

from __future__ import annotations

import random
from pathlib import Path

import pglast
import pytest

from bench.lint_speed import generate
from policies import syntax_tree

CASES = Path(__file__).parent / "lint_cases"

TRICKY = [
    # Constants of every kind, the empty string, NULL, negatives and a value list of lists.
    "SELECT '', 'x', 0, -1, 1.5, true, false, NULL, B'101', X'ff', 10000000000",
    "INSERT INTO t (a, b) VALUES (1, 'é'), (2, NULL) ON CONFLICT (a) DO UPDATE SET b = excluded.b",
    # def_ (a keyword as a field name), enums left out because they are zero, defaults.
    "ALTER TABLE orders ADD COLUMN note text DEFAULT 'ünïcode' NOT NULL, ALTER COLUMN id TYPE uuid",
    "ALTER TABLE orders ALTER COLUMN total TYPE numeric(12, 2) USING total::numeric",
    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON s.t USING btree (lower(a) DESC NULLS LAST) WHERE b",
    "CREATE TABLE p (id bigint GENERATED ALWAYS AS IDENTITY, a int CHECK (a > 0)) PARTITION BY RANGE (id)",
    "CREATE FUNCTION f(a int DEFAULT 1) RETURNS int LANGUAGE sql IMMUTABLE RETURN a + 1",
    "CREATE VIEW v AS WITH x AS (SELECT 1 AS a) SELECT a, count(*) FILTER (WHERE a > 0) FROM x GROUP BY a",
    "DO $$ BEGIN RAISE NOTICE 'ok'; END $$",
    "ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'",
    "GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader",
    "COMMENT ON COLUMN orders.total IS 'cents'",
    "SET lock_timeout = '2s'; RESET lock_timeout; BEGIN; COMMIT",
    # Offsets after non-ASCII text: libpg_query counts bytes, the analyzer characters.
    "SELECT 'ééé';  -- ü\nALTER TABLE t DROP COLUMN \"ü\"; SELECT 1",
]


def _assert_same(sql: str) -> None:
    expected = pglast.parse_sql(sql)
    actual = syntax_tree.parse(sql)
    assert len(actual) == len(expected)
    for raw, (node, start, end) in zip(expected, actual, strict=True):
        assert node == raw.stmt and raw.stmt == node
        assert type(node).__name__ == type(raw.stmt).__name__ and isinstance(node, type(raw.stmt))
        assert start == raw.stmt_location
        assert end == (raw.stmt_location + raw.stmt_len if raw.stmt_len else len(sql))
        # Serialised (every attribute read), locations aside (bytes here, characters there).
        assert _without_locations(node()) == _without_locations(raw.stmt())


def _without_locations(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_locations(v) for k, v in value.items() if "location" not in k}
    if isinstance(value, tuple):
        return tuple(_without_locations(v) for v in value)
    return value


@pytest.mark.parametrize("sql", TRICKY)
def test_tricky_statements_build_the_same_tree(sql: str) -> None:
    _assert_same(sql)


def test_every_lint_case_builds_the_same_tree() -> None:
    files = sorted(CASES.rglob("*.sql"))
    assert len(files) > 30
    parsed = 0
    for path in files:
        sql = path.read_text()
        try:
            pglast.parse_sql(sql)
        except pglast.parser.ParseError:
            with pytest.raises(syntax_tree.ParseError):
                syntax_tree.parse(sql)
            continue
        _assert_same(sql)
        parsed += 1
    assert parsed > 30


def test_a_generated_history_builds_the_same_tree(tmp_path: Path) -> None:
    for path in generate(tmp_path, 120, seed=random.Random(3).randint(0, 999)):
        _assert_same(path.read_text())


def test_a_parse_error_points_where_pglast_does() -> None:
    sql = "SELECT 'ééé';\nSELEC 1;"
    with pytest.raises(pglast.parser.ParseError) as expected:
        pglast.parse_sql(sql)
    with pytest.raises(syntax_tree.ParseError) as actual:
        syntax_tree.parse(sql)
    assert actual.value.args == expected.value.args


def test_attributes_are_read_once_and_kept() -> None:
    ((node, _, _),) = syntax_tree.parse("ALTER TABLE orders DROP COLUMN note")
    first = node.cmds
    assert node.cmds is first
    assert first[0].name == "note"
