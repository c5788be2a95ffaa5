"""``migrations-backward-compatible``: the analyzer and the contract gate at preview/up.

The program registers every migration as a ``pulumi-python:dynamic/bluegreen:Migration``
resource (``components/migration_set.py``) carrying its SQL and the release it is
judged against. The whole history is analysed together, because what earlier files
did (a table created, a check validated, a compatibility view) changes what a later
statement means; a contract file is judged against both colours' versions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pulumi_policy import PolicyResource, ReportViolation, StackValidationArgs

from components.migration_set import MIGRATION_TYPE
from components.migrations import Migration
from policies.analyzer import analyze

MIGRATIONS_DIR = "migrations"  # records made before they carried their directory


@dataclass(frozen=True)
class Violation:
    message: str
    urn: str | None


def _migration(resource: PolicyResource) -> Migration:
    props = resource.props
    name = str(props.get("name") or resource.name)
    return Migration(
        name=name,
        path=Path(str(props.get("directory") or MIGRATIONS_DIR)) / name,
        kind=str(props.get("kind")),
        after=props.get("after") or None,
        sql=str(props.get("sql") or ""),
        header_line=1,
    )


def migration_violations(resources: Iterable[PolicyResource]) -> list[Violation]:
    """Everything that makes the stack's migrations unsafe for the colours it runs."""
    records = sorted((r for r in resources if r.resource_type == MIGRATION_TYPE), key=lambda r: str(r.props["name"]))
    if not records:
        return []
    violations: list[Violation] = []
    urn_of = {str(r.props["name"]): r.urn for r in records}
    migrations = [_migration(r) for r in records]
    for record, migration in zip(records, migrations, strict=True):
        if record.props.get("checksum") != hashlib.sha256(migration.sql.encode()).hexdigest():
            violations.append(Violation(f"{migration.path}: recorded checksum does not match its SQL", record.urn))
    for finding in analyze(migrations).errors:
        statement = " ".join(finding.statement.split())[:160]
        where = f" ({finding.context})" if finding.context else ""
        violations.append(
            Violation(
                f"{finding.file}:{finding.line}: [{finding.rule}]{where} {finding.message}. "
                f"Statement: {statement}. Safe recipe: {finding.recipe}",
                urn_of.get(Path(finding.file).name),
            )
        )
    blue = str(records[0].props.get("blueVersion"))
    green = str(records[0].props.get("greenVersion"))
    # The runner applies files in order and stops at the first contract the colours do not allow yet;
    # that contract waits (not a violation), but an expand file behind it waits too, and the release
    # that needs it would start without it.
    gate = next((m for m in migrations if not m.may_run_with(blue, green)), None)
    if gate is not None:
        held = migrations[migrations.index(gate) + 1 :]
        for record, migration in zip(records, migrations, strict=True):
            if migration in held and migration.kind == "expand":
                violations.append(
                    Violation(
                        f"{migration.path}: [expand-behind-contract] this expand step is held back behind "
                        f"{gate.name} (contract after={gate.after}) while blue runs {blue} and green runs {green}, "
                        "so a release that needs it would start without it. Safe recipe: renumber expand steps "
                        "before pending contract steps.",
                        record.urn,
                    )
                )
    return violations


def validate_migrations(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for violation in migration_violations(args.resources):
        report_violation(violation.message, violation.urn)
