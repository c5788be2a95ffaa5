"""The stack's migrations as resources, so the policy pack sees the SQL a deploy will run.

Every file in ``migrations/`` becomes one custom resource (a dynamic resource of type
``pulumi-python:dynamic/bluegreen:Migration``), a child of the target's component,
carrying its name, kind, ``after``, SQL and checksum, plus the release it is judged
against (both colours' versions). The policy pack's ``migrations-backward-compatible``
rule runs the analyzer and the contract gate over these resources at preview/up.

The provider does not apply SQL (the deploy pipeline does, after lint and rehearsal);
it keeps the history honest: once a migration is recorded in the stack, changing its
file is refused at preview, because the shared database already ran the old text and
would silently diverge from the repository. Write a new migration instead. Deleting a
file only forgets the record (``pulumi destroy`` must work); it never undoes SQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic

from components.config import StackConfig
from components.migrations import Migration, load_migrations

MIGRATION_TYPE = "pulumi-python:dynamic/bluegreen:Migration"

# Inputs that identify what ran against the database; a change to any is a change of history.
RECORDED_FIELDS = ("name", "kind", "checksum")
# Inputs that say what the migration is judged against. A change is an in-place update
# that touches nothing: the engine keeps the old outputs of a resource whose diff reports
# no change, and the policy pack (which reads outputs) would judge the first release's
# versions forever. (Not the live colour: a flip must change routing only.)
RELEASE_FIELDS = ("blueVersion", "greenVersion")


class MigrationRecordProvider(pulumi.dynamic.ResourceProvider):
    """Records a migration's identity; refuses a recorded migration whose SQL changed."""

    # Nothing secret is captured, so the serialized provider need not be a secret.
    serialize_as_secret_always = False

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.CheckResult:
        failures = []
        recorded = _olds.get("checksum")
        if recorded and recorded != news.get("checksum"):
            failures.append(
                pulumi.dynamic.CheckFailure(
                    "checksum",
                    f"migration {news.get('name')} changed after it was recorded (checksum {recorded[:12]} -> "
                    f"{str(news.get('checksum'))[:12]}); the shared database ran the old text. Restore the file "
                    "and write the change as a new migration.",
                )
            )
        return pulumi.dynamic.CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        return pulumi.dynamic.CreateResult(id_=f"{props['name']}@{props['checksum'][:12]}", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        changed = [key for key in (*RECORDED_FIELDS, "after", "sql", *RELEASE_FIELDS) if olds.get(key) != news.get(key)]
        return pulumi.dynamic.DiffResult(changes=bool(changed), replaces=[], stables=["name"])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult(outs=news)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Forgetting a record never touches the database."""


class MigrationRecord(pulumi.dynamic.Resource, module="bluegreen", name="Migration"):
    """One migration file as the engine and the policy pack see it."""

    def __init__(
        self, name: str, migration: Migration, config: StackConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {
            "name": migration.name,
            "kind": migration.kind,
            "after": migration.after,
            "sql": migration.sql,
            "checksum": migration.checksum,
            # Where the file lives (the stack's migrations_dir), so violations name the real path.
            "directory": config.migrations_dir,
            "blueVersion": config.blue_version,
            "greenVersion": config.green_version,
        }
        super().__init__(MigrationRecordProvider(), name, props, opts)


def load_stack_migrations(directory: Path | None) -> list[Migration]:
    """The ordered history, every header validated; ``None`` (the app has none) or no directory: none."""
    return load_migrations(directory) if directory is not None and directory.is_dir() else []


def register_migrations(
    config: StackConfig, migrations: list[Migration], parent: pulumi.Resource
) -> list[MigrationRecord]:
    """One record per migration, children of the target's component and named after it.

    ``__main__`` loads the files before the target registers anything (a malformed file
    stops the program first) and registers them once the target component exists.
    """
    prefix = parent._name  # the component's own (possibly shortened) name; children share its prefix
    return [
        MigrationRecord(f"{prefix}-migration-{Path(m.name).stem}", m, config, pulumi.ResourceOptions(parent=parent))
        for m in migrations
    ]
