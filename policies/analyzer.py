"""Static analysis of migration files with PostgreSQL's own grammar (pglast).

The analyzer walks an ordered set of migrations as one history: what earlier files
created, validated or renamed changes what a later statement means (a table created
in the same file is not busy yet; a ``CHECK (col IS NOT NULL)`` validated earlier
makes ``SET NOT NULL`` a catalogue-only change; a compatibility view under a
renamed table's old name keeps old reads working). It reads into ``DO`` blocks and
SQL/PL/pgSQL function bodies, honours suppressions only when they give a reason,
and treats SQL it cannot parse as an error, never as a pass.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pglast
from pglast import ast
from pglast.enums import (
    AlterTableType,
    ConstrType,
    NullTestType,
    ObjectType,
    ReindexObjectType,
    TransactionStmtKind,
    VariableSetKind,
)

from components.migrations import Migration, load_migrations, parse_migration
from policies import syntax_tree
from policies.rules import ERROR, RULES

# Comments and blanks before a statement's first token (suppressions live there).
_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.S)
_ALLOW = re.compile(r"--\s*bluegreen:\s*allow\s+(?P<rules>[a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)\s*(?::(?P<reason>.*))?$")
_MIN_REASON_WORDS = 3
_NEWLINE = re.compile("\n")

# Functions whose value differs per row: as a column default they force a table rewrite.
VOLATILE_FUNCTIONS = frozenset(
    {
        "random",
        "gen_random_uuid",
        "uuid_generate_v1",
        "uuid_generate_v1mc",
        "uuid_generate_v4",
        "clock_timestamp",
        "timeofday",
        "nextval",
        "txid_current",
        "random_normal",
    }
)
SERIAL_TYPES = frozenset({"serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"})

_DROPPED_OBJECTS = {
    ObjectType.OBJECT_VIEW: "view",
    ObjectType.OBJECT_MATVIEW: "materialized view",
    ObjectType.OBJECT_FUNCTION: "function",
    ObjectType.OBJECT_PROCEDURE: "procedure",
    ObjectType.OBJECT_TYPE: "type",
    ObjectType.OBJECT_DOMAIN: "domain",
    ObjectType.OBJECT_SCHEMA: "schema",
    ObjectType.OBJECT_SEQUENCE: "sequence",
}
_RENAMED_OBJECTS = {ObjectType.OBJECT_TABLE: "table", **_DROPPED_OBJECTS}


@dataclass(frozen=True)
class Finding:
    """One rule broken by one statement, with enough to fix it without reading the code."""

    rule: str
    severity: str
    category: str
    file: str
    line: int
    column: int
    statement: str
    message: str
    recipe: str
    context: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "category": self.category,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "statement": self.statement,
            "message": self.message,
            "recipe": self.recipe,
            "context": self.context,
        }


@dataclass(frozen=True)
class LintResult:
    """Findings of one run plus what was read, for the summary line."""

    findings: tuple[Finding, ...]
    files: int
    statements: int

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity != ERROR]


@dataclass(frozen=True)
class Statement:
    """One statement as executed, with where it sits in its file."""

    node: Any
    sql: str
    line: int
    column: int
    # The text suppressions are read from: the top-level statement with its leading comments.
    annotated_text: str
    context: str = ""
    # Function bodies run when called, not when the migration runs.
    runs_now: bool = True


@dataclass
class _Hit:
    rule: str
    statement: Statement
    detail: str
    renamed_table: str | None = None


@dataclass
class _Schema:
    """What the history so far has created, validated and renamed."""

    columns: dict[str, dict[str, tuple[str, tuple[int, ...]]]] = field(default_factory=dict)
    validated_not_null: set[tuple[str, str]] = field(default_factory=set)
    # Columns the history made NOT NULL (declared, added, or SET NOT NULL): setting it again is a no-op.
    not_null: set[tuple[str, str]] = field(default_factory=set)
    # Index -> the table it is on: a lock on an index lands on its table.
    index_tables: dict[str, str] = field(default_factory=dict)
    pending_not_null_checks: dict[tuple[str, str], str] = field(default_factory=dict)
    # Names views were created under, with the position (file, statement) of the CREATE.
    views: list[tuple[int, int, str]] = field(default_factory=list)


@dataclass
class _FileState:
    """What one file (one transaction, as runners apply it) has done so far."""

    created: set[str] = field(default_factory=set)
    not_valid_in_transaction: set[tuple[str, str]] = field(default_factory=set)
    lock_timeout: bool = False
    lock_timeout_reported: bool = False


class _Position:
    """Maps character offsets of a file to 1-based line and column."""

    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in _NEWLINE.finditer(text)]

    def of(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self.starts, offset) - 1
        return index + 1, offset - self.starts[index] + 1


class SqlParseError(Exception):
    """SQL the grammar rejects, with its place in the file."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


# -- reading statements (and what DO blocks and function bodies hold) ----------------


def statements_of(sql: str) -> Iterator[Statement]:
    """Every statement of a file in order, nested ones right after their container."""
    position = _Position(sql)
    try:
        raw_statements = syntax_tree.parse(sql)
    except syntax_tree.ParseError as exc:
        message, offset = exc.args[0], exc.args[1] if len(exc.args) > 1 else None
        line, column = position.of(min(offset or 0, max(len(sql) - 1, 0)))
        raise SqlParseError(message, line, column) from None
    previous_end = 0
    for node, location, end in raw_statements:
        start = _LEADING.match(sql, location).end()  # type: ignore[union-attr]
        statement = Statement(
            node, sql[start:end].strip(), *position.of(start), _annotated(sql, previous_end, start, end)
        )
        previous_end = end
        yield statement
        yield from _nested(statement)


def _annotated(sql: str, previous_end: int, start: int, end: int) -> str:
    """The statement with the comments that belong to it: the lines above it (up to the
    previous statement's line) and the rest of its last line."""
    newline = sql.find("\n", previous_end, start)
    begin = newline + 1 if newline >= 0 else previous_end
    line_end = sql.find("\n", end)
    return sql[begin : line_end if line_end >= 0 else len(sql)]


def _nested(outer: Statement) -> Iterator[Statement]:
    node = outer.node
    if isinstance(node, ast.DoStmt):
        language = _option(node.args, "language") or "plpgsql"
        if language == "plpgsql":
            yield from _plpgsql(outer, f"{outer.sql};", "in DO block", runs_now=True)
    elif isinstance(node, ast.CreateFunctionStmt):
        kind = "procedure" if node.is_procedure else "function"
        name = ".".join(part.sval for part in node.funcname)
        context = f"in {kind} {name} body (runs when called)"
        language = (_option(node.options, "language") or "sql").lower()
        if node.sql_body is not None:
            for nested in _flatten(node.sql_body):
                yield Statement(nested, outer.sql, outer.line, outer.column, outer.annotated_text, context, False)
        elif language == "sql":
            body = _option(node.options, "as")
            if body:
                yield from _parsed_body(outer, body, context, runs_now=False)
        elif language == "plpgsql":
            yield from _plpgsql(outer, f"{outer.sql};", context, runs_now=False)


def _option(options: Iterable[Any] | None, name: str) -> str | None:
    for option in options or ():
        if isinstance(option, ast.DefElem) and option.defname == name:
            arg = option.arg
            if isinstance(arg, tuple):
                return "".join(part.sval for part in arg)
            return arg.sval if isinstance(arg, ast.String) else None
    return None


def _flatten(body: Any) -> Iterator[Any]:
    for item in body if isinstance(body, tuple) else (body,):
        if isinstance(item, tuple):
            yield from _flatten(item)
        elif item is not None:
            yield item


def _line_of_body(outer: Statement, body: str) -> int:
    offset = outer.sql.find(body)
    return outer.line + (outer.sql.count("\n", 0, offset) if offset >= 0 else 0)


def _parsed_body(
    outer: Statement, body: str, context: str, runs_now: bool, line: int | None = None
) -> Iterator[Statement]:
    first_line = line if line is not None else _line_of_body(outer, body)
    try:
        raw_statements = syntax_tree.parse(body)
    except syntax_tree.ParseError as exc:
        raise SqlParseError(f"{exc.args[0]} ({context})", first_line, 1) from None
    for node, location, end in raw_statements:
        start = _LEADING.match(body, location).end()  # type: ignore[union-attr]
        nested_line = first_line + body.count("\n", 0, start)
        yield Statement(node, body[start:end].strip(), nested_line, 1, outer.annotated_text, context, runs_now)


def _plpgsql(outer: Statement, text: str, context: str, runs_now: bool) -> Iterator[Statement]:
    try:
        tree = pglast.parse_plpgsql(text)
    except syntax_tree.ParseError as exc:
        raise SqlParseError(f"{exc.args[0]} ({context})", outer.line, outer.column) from None
    for kind, item in _plpgsql_statements(tree):
        line = outer.line + max(item.get("lineno", 1), 1) - 1
        if kind == "PLpgSQL_stmt_execsql":
            query = item["sqlstmt"]["PLpgSQL_expr"]["query"]
            yield from _parsed_body(outer, query, context, runs_now, line)
        else:
            literal = _string_literal(item["query"]["PLpgSQL_expr"]["query"])
            if literal is None:
                yield Statement(
                    _DynamicSql(item["query"]["PLpgSQL_expr"]["query"]),
                    outer.sql,
                    line,
                    1,
                    outer.annotated_text,
                    context,
                    runs_now,
                )
            else:
                yield from _parsed_body(outer, literal, f"{context}, EXECUTE", runs_now, line)


@dataclass(frozen=True)
class _DynamicSql:
    expression: str


def _plpgsql_statements(tree: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Depth-first: every SQL statement and EXECUTE of a PL/pgSQL tree."""
    if isinstance(tree, list):
        for item in tree:
            yield from _plpgsql_statements(item)
    elif isinstance(tree, dict):
        for key, value in tree.items():
            if key in ("PLpgSQL_stmt_execsql", "PLpgSQL_stmt_dynexecute"):
                yield key, value
            else:
                yield from _plpgsql_statements(value)


def _string_literal(expression: str) -> str | None:
    try:
        ((select, _, _),) = syntax_tree.parse(f"SELECT {expression}")
    except (syntax_tree.ParseError, ValueError):
        return None
    target = select.targetList[0].val
    if isinstance(target, ast.A_Const) and isinstance(target.val, ast.String):
        return target.val.sval
    return None


# -- the checks ------------------------------------------------------------------------


def _type_of(type_name: ast.TypeName) -> tuple[str, tuple[int, ...]]:
    name = type_name.names[-1].sval
    mods = tuple(
        m.val.ival for m in type_name.typmods or () if isinstance(m, ast.A_Const) and isinstance(m.val, ast.Integer)
    )
    return name, mods


def _widens_without_rewrite(old: tuple[str, tuple[int, ...]] | None, new: tuple[str, tuple[int, ...]]) -> bool:
    """Type changes PostgreSQL applies to the catalogue only, which every old reader and writer accepts."""
    if old is None:
        return False
    if old == new:
        return True  # the same type (a generator's `TYPE uuid, DROP NOT NULL`): nothing to convert
    (old_name, old_mods), (new_name, new_mods) = old, new
    if old_name == "varchar" and new_name == "text":
        return True
    if old_name == "text" and new_name == "varchar" and not new_mods:
        return True
    if old_name == new_name and old_name in ("varchar", "varbit", "bit varying"):
        return not new_mods or (bool(old_mods) and new_mods[0] >= old_mods[0])
    if old_name == new_name == "numeric":
        if not new_mods:
            return True
        if not old_mods:
            return False
        old_scale = old_mods[1] if len(old_mods) > 1 else 0
        new_scale = new_mods[1] if len(new_mods) > 1 else 0
        return new_scale == old_scale and new_mods[0] >= old_mods[0]
    return False


def _calls_volatile(expression: Any) -> str | None:
    """The first volatile function the expression calls, depth first."""
    pending = [expression]
    while pending:
        node = pending.pop()
        if isinstance(node, tuple):
            pending.extend(reversed(node))
        elif isinstance(node, ast.Node):
            if isinstance(node, ast.FuncCall) and (name := node.funcname[-1].sval.lower()) in VOLATILE_FUNCTIONS:
                return name
            pending.extend(getattr(node, attribute) for attribute in reversed(tuple(node)))
    return None


def _declared_not_null(column: ast.ColumnDef) -> bool:
    kinds = {c.contype for c in column.constraints or ()}
    return bool(column.is_not_null) or bool(kinds & {ConstrType.CONSTR_NOTNULL, ConstrType.CONSTR_PRIMARY})


def _not_null_column(constraint: ast.Constraint) -> str | None:
    """``CHECK (col IS NOT NULL)`` -> ``col``."""
    expr = constraint.raw_expr
    if (
        isinstance(expr, ast.NullTest)
        and expr.nulltesttype == NullTestType.IS_NOT_NULL
        and isinstance(expr.arg, ast.ColumnRef)
    ):
        return expr.arg.fields[-1].sval
    return None


def _name(parts: Any) -> str:
    if isinstance(parts, ast.ObjectWithArgs):
        parts = parts.objname
    if isinstance(parts, ast.TypeName):
        parts = parts.names
    if isinstance(parts, ast.String):
        return parts.sval
    if isinstance(parts, tuple):
        return ".".join(p.sval for p in parts if isinstance(p, ast.String))
    return str(parts)


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


class _Checker:
    """Applies the rules to one statement with the history's and the file's state."""

    def __init__(self, schema: _Schema, file: _FileState, file_index: int) -> None:
        self.schema, self.file, self.file_index = schema, file, file_index
        self.hits: list[_Hit] = []
        self.statement: Statement

    def hit(self, rule: str, detail: str, renamed_table: str | None = None) -> None:
        self.hits.append(_Hit(rule, self.statement, detail, renamed_table))

    def existing(self, name: str) -> bool:
        return _short(name) not in self.file.created

    def locks(self, relation: str) -> None:
        """The statement takes a lock that blocks traffic on an existing relation."""
        if not self.statement.runs_now or not self.existing(relation):
            return
        if not self.file.lock_timeout and not self.file.lock_timeout_reported:
            self.file.lock_timeout_reported = True
            self.hit("missing-lock-timeout", f"locks {relation} with no lock_timeout set earlier in the file")

    def check(self, statement: Statement, order: int) -> list[_Hit]:
        self.statement, self.hits = statement, []
        node = statement.node
        handler = getattr(self, f"on_{type(node).__name__}", None)
        if handler is not None:
            handler(node, order)
        return self.hits

    # Each handler is named after the pglast node it reads.

    def on__DynamicSql(self, node: _DynamicSql, _order: int) -> None:  # noqa: N802
        self.hit("dynamic-sql", f"EXECUTE {node.expression}")

    def on_VariableSetStmt(self, node: ast.VariableSetStmt, _order: int) -> None:  # noqa: N802
        if node.name != "lock_timeout":
            return
        if node.kind in (VariableSetKind.VAR_RESET, VariableSetKind.VAR_SET_DEFAULT):
            self.file.lock_timeout = False
            return
        value = node.args[0].val if node.args else None
        raw = getattr(value, "sval", None) or getattr(value, "ival", 0)
        self.file.lock_timeout = str(raw).strip() not in ("0", "")

    def on_TransactionStmt(self, node: ast.TransactionStmt, _order: int) -> None:  # noqa: N802
        if node.kind in (TransactionStmtKind.TRANS_STMT_COMMIT, TransactionStmtKind.TRANS_STMT_ROLLBACK):
            self.file.not_valid_in_transaction.clear()

    def on_CreateStmt(self, node: ast.CreateStmt, _order: int) -> None:  # noqa: N802
        table = node.relation.relname
        if self.statement.runs_now:
            self.file.created.add(table)
        columns = self.schema.columns.setdefault(table, {})
        for element in node.tableElts or ():
            if isinstance(element, ast.ColumnDef) and element.typeName is not None:
                columns[element.colname] = _type_of(element.typeName)
                if _declared_not_null(element):
                    self.schema.not_null.add((table, element.colname))

    def on_CreateTableAsStmt(self, node: ast.CreateTableAsStmt, _order: int) -> None:  # noqa: N802
        self.file.created.add(node.into.rel.relname)

    def on_ViewStmt(self, node: ast.ViewStmt, order: int) -> None:  # noqa: N802
        self.file.created.add(node.view.relname)
        self.schema.views.append((self.file_index, order, node.view.relname))

    def on_CreateFunctionStmt(self, node: ast.CreateFunctionStmt, _order: int) -> None:  # noqa: N802
        self.file.created.add(_short(_name(node.funcname)))

    def on_CreateSeqStmt(self, node: ast.CreateSeqStmt, _order: int) -> None:  # noqa: N802
        self.file.created.add(node.sequence.relname)

    def on_CreateEnumStmt(self, node: ast.CreateEnumStmt, _order: int) -> None:  # noqa: N802
        self.file.created.add(_short(_name(node.typeName)))

    def on_CompositeTypeStmt(self, node: ast.CompositeTypeStmt, _order: int) -> None:  # noqa: N802
        self.file.created.add(node.typevar.relname)

    def on_CreateSchemaStmt(self, node: ast.CreateSchemaStmt, _order: int) -> None:  # noqa: N802
        self.file.created.add(node.schemaname or "")

    def on_IndexStmt(self, node: ast.IndexStmt, _order: int) -> None:  # noqa: N802
        table = node.relation.relname
        if node.idxname:
            self.file.created.add(node.idxname)
            self.schema.index_tables[node.idxname] = table
        if node.concurrent or not self.existing(table):
            return
        self.hit("create-index-non-concurrently", f"builds index {node.idxname or '(unnamed)'} on busy table {table}")
        self.locks(table)

    def on_DropStmt(self, node: ast.DropStmt, _order: int) -> None:  # noqa: N802
        for obj in node.objects or ():
            name = _name(obj)
            if node.removeType == ObjectType.OBJECT_INDEX:
                # The lock lands on the index's table: judged by that table's age, not the index's.
                table = self.schema.index_tables.get(_short(name))
                if not node.concurrent and self.existing(table or name):
                    on = f" on {table}" if table else ""
                    self.hit("drop-index-non-concurrently", f"drops index {name}{on} without CONCURRENTLY")
                    self.locks(table or name)
                continue
            if not self.existing(name):
                continue
            if node.removeType == ObjectType.OBJECT_TABLE:
                self.hit("drop-table", f"drops table {name}")
                self.locks(name)
            elif node.removeType in _DROPPED_OBJECTS:
                self.hit("drop-object", f"drops {_DROPPED_OBJECTS[node.removeType]} {name}")

    def on_RenameStmt(self, node: ast.RenameStmt, _order: int) -> None:  # noqa: N802
        if node.renameType == ObjectType.OBJECT_COLUMN:
            table = node.relation.relname
            if self.existing(table):
                self.hit("rename-column", f"renames column {table}.{node.subname} to {node.newname}")
                self.locks(table)
            columns = self.schema.columns.get(table, {})
            if node.subname in columns:
                columns[node.newname] = columns.pop(node.subname)
            return
        if node.renameType not in _RENAMED_OBJECTS:
            return
        old = node.relation.relname if node.relation is not None else _short(_name(node.object))
        if not self.existing(old):
            return
        what = _RENAMED_OBJECTS[node.renameType]
        is_table = node.renameType == ObjectType.OBJECT_TABLE
        self.hit("rename-object", f"renames {what} {old} to {node.newname}", renamed_table=old if is_table else None)
        if node.relation is not None:
            self.locks(old)
        if old in self.schema.columns:
            self.schema.columns[node.newname] = self.schema.columns.pop(old)

    def on_AlterObjectSchemaStmt(self, node: ast.AlterObjectSchemaStmt, _order: int) -> None:  # noqa: N802
        name = node.relation.relname if node.relation is not None else _short(_name(node.object))
        if self.existing(name):
            self.hit("set-schema", f"moves {name} to schema {node.newschema}")
            if node.relation is not None:
                self.locks(name)

    def on_AlterEnumStmt(self, node: ast.AlterEnumStmt, _order: int) -> None:  # noqa: N802
        name = _short(_name(node.typeName))
        if node.oldVal and self.existing(name):
            self.hit("rename-enum-value", f"renames value {node.oldVal!r} of enum {name} to {node.newVal!r}")

    def on_ReindexStmt(self, node: ast.ReindexStmt, _order: int) -> None:  # noqa: N802
        if any(isinstance(o, ast.DefElem) and o.defname == "concurrently" for o in node.params or ()):
            return
        if node.relation is not None:
            target = node.relation.relname
            is_index = node.kind == ReindexObjectType.REINDEX_OBJECT_INDEX
            table = self.schema.index_tables.get(target, target) if is_index else target
            if not self.existing(table):
                return
            self.hit("reindex-non-concurrently", f"rebuilds {target} without CONCURRENTLY")
            self.locks(table)
        else:
            self.hit("reindex-non-concurrently", f"rebuilds every index of {node.name or 'the database'}")

    def on_VacuumStmt(self, node: ast.VacuumStmt, _order: int) -> None:  # noqa: N802
        if any(isinstance(o, ast.DefElem) and o.defname == "full" for o in node.options or ()):
            self.hit("vacuum-full-or-cluster", "VACUUM FULL rewrites the table")

    def on_ClusterStmt(self, node: ast.ClusterStmt, _order: int) -> None:  # noqa: N802
        target = node.relation.relname if node.relation is not None else "every clustered table"
        self.hit("vacuum-full-or-cluster", f"CLUSTER rewrites {target}")

    def on_AlterTableStmt(self, node: ast.AlterTableStmt, _order: int) -> None:  # noqa: N802
        if node.objtype != ObjectType.OBJECT_TABLE:
            return
        table = node.relation.relname
        existing = self.existing(table)
        for cmd in node.cmds or ():
            self._alter_table_cmd(table, existing, cmd)
        if existing:
            self.locks(table)

    def _alter_table_cmd(self, table: str, existing: bool, cmd: ast.AlterTableCmd) -> None:
        subtype = cmd.subtype
        columns = self.schema.columns.setdefault(table, {})
        if subtype == AlterTableType.AT_AddColumn:
            self._add_column(table, existing, cmd.def_)
            return
        if subtype == AlterTableType.AT_AlterColumnType:
            new_type = _type_of(cmd.def_.typeName)
            old_type = columns.get(cmd.name)
            columns[cmd.name] = new_type
            if existing and (cmd.def_.raw_default is not None or not _widens_without_rewrite(old_type, new_type)):
                was = f"{old_type[0]}{list(old_type[1]) if old_type[1] else ''}" if old_type else "an unknown type"
                detail = f"changes {table}.{cmd.name} from {was} to {new_type[0]}"
                self.hit("change-column-type", detail)
                self.hit("table-rewrite", detail)
            return
        if not existing:
            self._track_constraints(table, cmd)
            return
        if subtype == AlterTableType.AT_DropColumn:
            self.hit("drop-column", f"drops column {table}.{cmd.name}")
            columns.pop(cmd.name, None)
        elif subtype == AlterTableType.AT_SetNotNull:
            already = (table, cmd.name) in self.schema.not_null  # PostgreSQL does nothing: no scan, no break
            if not already and (table, cmd.name) not in self.schema.validated_not_null:
                self.hit("set-not-null", f"makes {table}.{cmd.name} NOT NULL")
                self.hit("set-not-null-scan", f"makes {table}.{cmd.name} NOT NULL with no validated CHECK to use")
        elif subtype == AlterTableType.AT_ColumnDefault and cmd.def_ is None:
            self.hit("drop-default", f"drops the default of {table}.{cmd.name}")
        elif subtype == AlterTableType.AT_DropConstraint:
            self.hit("drop-constraint", f"drops constraint {cmd.name} of {table}")
        elif subtype == AlterTableType.AT_AddConstraint:
            self._add_constraint(table, cmd.def_)
        elif (
            subtype == AlterTableType.AT_ValidateConstraint and (table, cmd.name) in self.file.not_valid_in_transaction
        ):
            self.hit("validate-in-same-transaction", f"validates {cmd.name} of {table} in the file that added it")
        self._track_constraints(table, cmd)

    def _track_constraints(self, table: str, cmd: ast.AlterTableCmd) -> None:
        if not self.statement.runs_now:
            return
        if cmd.subtype == AlterTableType.AT_SetNotNull:
            self.schema.not_null.add((table, cmd.name))
        elif cmd.subtype == AlterTableType.AT_DropNotNull:
            self.schema.not_null.discard((table, cmd.name))
        elif cmd.subtype == AlterTableType.AT_AddConstraint and cmd.def_.contype == ConstrType.CONSTR_CHECK:
            column = _not_null_column(cmd.def_)
            if cmd.def_.skip_validation:
                self.file.not_valid_in_transaction.add((table, cmd.def_.conname or ""))
                if column:
                    self.schema.pending_not_null_checks[(table, cmd.def_.conname or "")] = column
            elif column:
                self.schema.validated_not_null.add((table, column))
        elif cmd.subtype == AlterTableType.AT_ValidateConstraint:
            column = self.schema.pending_not_null_checks.pop((table, cmd.name), None)
            if column:
                self.schema.validated_not_null.add((table, column))

    def _add_column(self, table: str, existing: bool, column: ast.ColumnDef) -> None:
        type_name, _mods = _type_of(column.typeName)
        self.schema.columns.setdefault(table, {})[column.colname] = (type_name, _mods)
        if _declared_not_null(column) and self.statement.runs_now:
            self.schema.not_null.add((table, column.colname))
        if not existing:
            return
        constraints = column.constraints or ()
        kinds = {c.contype for c in constraints}
        default = next((c.raw_expr for c in constraints if c.contype == ConstrType.CONSTR_DEFAULT), None)
        generated = ConstrType.CONSTR_IDENTITY in kinds or ConstrType.CONSTR_GENERATED in kinds
        serial = type_name in SERIAL_TYPES
        not_null = column.is_not_null or ConstrType.CONSTR_NOTNULL in kinds or ConstrType.CONSTR_PRIMARY in kinds
        if not_null and default is None and not generated and not serial:
            self.hit("add-required-column", f"adds {table}.{column.colname} NOT NULL without a default")
        volatile = _calls_volatile(default) if default is not None else None
        if volatile or generated or serial:
            why = f"default {volatile}()" if volatile else "serial type" if serial else "identity/generated value"
            self.hit("table-rewrite", f"adds {table}.{column.colname} with a {why}: every row is rewritten")
        if kinds & {ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE}:
            self.hit("unique-without-index", f"adds {table}.{column.colname} with an index built under lock")

    def _add_constraint(self, table: str, constraint: ast.Constraint) -> None:
        contype = constraint.contype
        label = constraint.conname or "(unnamed)"
        kinds = {
            ConstrType.CONSTR_CHECK: "CHECK",
            ConstrType.CONSTR_FOREIGN: "FOREIGN KEY",
            ConstrType.CONSTR_UNIQUE: "UNIQUE",
            ConstrType.CONSTR_PRIMARY: "PRIMARY KEY",
            ConstrType.CONSTR_EXCLUSION: "EXCLUDE",
        }
        if contype not in kinds:
            return
        not_valid = " NOT VALID" if constraint.skip_validation else ""
        self.hit("constraint-breaks-old-writes", f"adds {kinds[contype]}{not_valid} constraint {label} on {table}")
        if contype in (ConstrType.CONSTR_CHECK, ConstrType.CONSTR_FOREIGN) and not constraint.skip_validation:
            self.hit("constraint-without-not-valid", f"validates {kinds[contype]} {label} on every row of {table}")
        unique_kinds = (ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_EXCLUSION)
        if contype in unique_kinds and not constraint.indexname:
            self.hit("unique-without-index", f"builds the index of {kinds[contype]} {label} on {table} under lock")


# -- running the rules over a history --------------------------------------------------


def _suppressions(statement: Statement) -> tuple[dict[str, str], list[str]]:
    """Rule -> reason for every '-- bluegreen: allow rule: reason' on the statement, plus problems."""
    allowed: dict[str, str] = {}
    problems: list[str] = []
    for line in statement.annotated_text.splitlines():
        match = _ALLOW.search(line.strip())
        if not match:
            continue
        rules = [r.strip() for r in match.group("rules").split(",")]
        reason = (match.group("reason") or "").strip()
        unknown = [r for r in rules if r not in RULES]
        if unknown:
            problems.append(f"unknown rule(s) {', '.join(unknown)} in '{line.strip()}'; rules: see --list-rules")
        if len(reason.split()) < _MIN_REASON_WORDS:
            problems.append(f"'{line.strip()}' needs a reason of at least {_MIN_REASON_WORDS} words after the rule")
            continue
        for rule in rules:
            allowed[rule] = reason
    return allowed, problems


def analyze(migrations: Sequence[Migration]) -> LintResult:
    """Lint an ordered history of migrations (earlier files inform later ones)."""
    schema = _Schema()
    hits: list[tuple[Migration, int, int, _Hit]] = []
    findings: list[Finding] = []
    statements = 0
    for file_index, migration in enumerate(migrations):
        file_state = _FileState()
        checker = _Checker(schema, file_state, file_index)
        try:
            for order, statement in enumerate(statements_of(migration.sql)):
                statements += 1
                hits.extend((migration, file_index, order, h) for h in checker.check(statement, order))
        except SqlParseError as exc:
            rule = RULES["parse-error"]
            findings.append(
                Finding(
                    rule.id,
                    rule.severity,
                    rule.category,
                    str(migration.path),
                    exc.line,
                    exc.column,
                    "",
                    f"{exc.message}: {rule.why}",
                    rule.recipe,
                )
            )
    reported_suppression_problems: set[tuple[str, str]] = set()
    for migration, file_index, order, hit in hits:
        rule = RULES[hit.rule]
        if rule.category == "breaking" and migration.kind == "contract":
            continue
        if hit.renamed_table and any(
            f == file_index and o > order and name == hit.renamed_table for f, o, name in schema.views
        ):
            rule = RULES["rename-with-compat-view"]
        allowed, problems = _suppressions(hit.statement)
        for problem in problems:
            key = (str(migration.path), problem)
            if key not in reported_suppression_problems:
                reported_suppression_problems.add(key)
                findings.append(_finding(RULES["bad-suppression"], migration, hit.statement, problem))
        if rule.id in allowed:
            continue
        findings.append(_finding(rule, migration, hit.statement, f"{hit.detail}: {rule.why}"))
    findings.sort(key=lambda f: (f.file, f.line, f.column, f.rule))
    return LintResult(tuple(findings), len(migrations), statements)


def _finding(rule: Any, migration: Migration, statement: Statement, message: str) -> Finding:
    return Finding(
        rule.id,
        rule.severity,
        rule.category,
        str(migration.path),
        statement.line,
        statement.column,
        statement.sql,
        message,
        rule.recipe,
        statement.context,
    )


def lint_paths(paths: Sequence[Path | str]) -> LintResult:
    """Lint directories (each one history) and files (grouped with the files of their directory given)."""
    histories: dict[Path, list[Migration]] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            histories.setdefault(path, []).extend(load_migrations(path))
        elif path.is_file():
            histories.setdefault(path.parent, []).append(parse_migration(path))
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    findings: list[Finding] = []
    files = statements = 0
    for history in histories.values():
        unique = {m.path.resolve(): m for m in history}
        result = analyze(sorted(unique.values(), key=lambda m: m.name))
        findings.extend(result.findings)
        files += result.files
        statements += result.statements
    return LintResult(tuple(findings), files, statements)
