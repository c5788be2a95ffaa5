"""The migration files: their header, order, checksum, and when a contract step may run.

Every SQL file in ``migrations/`` starts with a header line that says which half of
the expand/contract cycle it belongs to::

    -- bluegreen: expand
    -- bluegreen: contract after=2.0.0

An expand step must keep the release that is still live working. A contract step
removes what old releases need, so it runs only once both colours run ``after`` or
later. Files apply in name order (``001_create_orders.sql``, ``002_...``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from components.text_files import read_utf8

HEADER = re.compile(r"--\s*bluegreen:\s*(?P<kind>\w+)(?P<args>(?:\s+\w+=\S+)*)\s*$")
NAME = re.compile(r"(?P<seq>\d{3,})_[a-z0-9_]+\.sql")
KINDS = ("expand", "contract")


class MigrationError(ValueError):
    """A migration file is malformed, out of order, or changed after it was applied."""


def parse_version(version: str) -> tuple[int, ...]:
    """``"2.10.1"`` -> ``(2, 10, 1)``; a pre-release or build suffix is ignored for ordering."""
    core = re.match(r"v?(\d+(?:\.\d+)*)", version)
    if not core:
        raise MigrationError(f"version {version!r} is not dotted numbers (e.g. 2.0.0)")
    return tuple(int(part) for part in core.group(1).split("."))


def version_at_least(version: str, minimum: str) -> bool:
    a, b = parse_version(version), parse_version(minimum)
    width = max(len(a), len(b))
    return a + (0,) * (width - len(a)) >= b + (0,) * (width - len(b))


@dataclass(frozen=True)
class Migration:
    """One SQL file with its header parsed."""

    name: str
    path: Path
    kind: str
    after: str | None
    sql: str
    header_line: int

    @property
    def checksum(self) -> str:
        import hashlib  # here: the lint, which starts often, never checksums

        return hashlib.sha256(self.sql.encode()).hexdigest()

    def may_run_with(self, blue_version: str, green_version: str) -> bool:
        """An expand runs any time; a contract once both colours are at ``after`` or later."""
        if self.kind == "expand":
            return True
        assert self.after is not None
        return version_at_least(blue_version, self.after) and version_at_least(green_version, self.after)


def parse_migration(path: Path) -> Migration:
    """Read one file; the header must be the first non-blank line."""
    if not NAME.fullmatch(path.name):
        raise MigrationError(f"{path}: name must look like 001_short_description.sql (digits, _, lowercase)")
    sql = read_utf8(path, MigrationError, "migration")
    for number, line in enumerate(sql.splitlines(), start=1):
        if not line.strip():
            continue
        match = HEADER.match(line.strip())
        if not match:
            raise MigrationError(
                f"{path}:{number}: first line must be '-- bluegreen: expand' or '-- bluegreen: contract after=X.Y.Z'"
            )
        kind = match.group("kind")
        args = dict(arg.split("=", 1) for arg in match.group("args").split())
        if kind not in KINDS:
            raise MigrationError(f"{path}:{number}: kind {kind!r} is invalid; allowed: {', '.join(KINDS)}")
        unknown = set(args) - {"after"}
        if unknown:
            raise MigrationError(f"{path}:{number}: unknown header field(s) {sorted(unknown)}; allowed: after")
        after = args.get("after")
        if kind == "contract" and after is None:
            raise MigrationError(f"{path}:{number}: a contract step must say after=<release> (e.g. after=2.0.0)")
        if kind == "expand" and after is not None:
            raise MigrationError(f"{path}:{number}: after= applies to contract steps only")
        if after is not None:
            parse_version(after)
        return Migration(name=path.name, path=path, kind=kind, after=after, sql=sql, header_line=number)
    raise MigrationError(f"{path}: empty file; a migration needs a header and SQL")


def load_migrations(directory: Path | str) -> list[Migration]:
    """All migrations of a directory in apply order; duplicate sequence numbers are an error."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MigrationError(f"{directory}: not a directory of migrations")
    migrations = [parse_migration(p) for p in sorted(directory.glob("*.sql"))]
    seen: dict[str, str] = {}
    for m in migrations:
        seq = NAME.fullmatch(m.name).group("seq")  # type: ignore[union-attr]
        if seq in seen:
            raise MigrationError(f"{directory}: {m.name} and {seen[seq]} share sequence number {seq}")
        seen[seq] = m.name
    return migrations
