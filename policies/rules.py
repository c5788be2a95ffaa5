"""The rule catalogue: what each rule catches, why it hurts, and the safe recipe.

Rules come in two families. ``breaking`` rules guard the expand/contract discipline:
in an ``expand`` file they are errors because the release that is still live runs
against the migrated schema; in a ``contract`` file they are what the file is for, so
they are not reported there (the contract gate checks the colours' versions instead).
``locking`` rules guard a busy shared table and apply to every file. ``input`` rules
report what the analyzer could not read or a suppression it will not honour.
"""

from __future__ import annotations

from dataclasses import dataclass

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Rule:
    """One check; ``squawk`` names the squawk rule that flags the same thing, if any."""

    id: str
    category: str
    severity: str
    title: str
    why: str
    recipe: str
    squawk: str | None = None


_RULES = [
    # -- breaking the live release (expand files) -----------------------------------
    Rule(
        "drop-column",
        "breaking",
        ERROR,
        "drop of a column",
        "the live release still selects and inserts this column; its queries fail with 'column does not exist'",
        "stop using the column in a release first; drop it in a contract file with after=<that release>",
        "ban-drop-column",
    ),
    Rule(
        "drop-table",
        "breaking",
        ERROR,
        "drop of a table",
        "the live release still reads and writes this table",
        "stop using the table in a release first; drop it in a contract file with after=<that release>",
        "ban-drop-table",
    ),
    Rule(
        "drop-object",
        "breaking",
        ERROR,
        "drop of a view, function, type, schema or sequence",
        "the live release may still call or reference this object",
        "drop it in a contract file with after=<the first release that no longer uses it>",
    ),
    Rule(
        "rename-column",
        "breaking",
        ERROR,
        "rename of a column",
        "the live release still uses the old column name",
        "add the new column (expand), write both and backfill, switch reads, drop the old one (contract)",
        "renaming-column",
    ),
    Rule(
        "rename-object",
        "breaking",
        ERROR,
        "rename of a table, view, function, type, schema or sequence",
        "the live release still uses the old name",
        "create the new object beside the old one (or rename and add a compatibility view under the old name), "
        "switch the release, remove the old name in a contract file",
        "renaming-table",
    ),
    Rule(
        "rename-enum-value",
        "breaking",
        ERROR,
        "rename of an enum value",
        "the live release still writes and compares the old label; its inserts fail with 'invalid input value "
        "for enum'",
        "add the new value (ALTER TYPE ... ADD VALUE), move rows and the release to it, and stop using the old "
        "one; enum values cannot be dropped, so keep it or replace the type in a contract file",
    ),
    Rule(
        "rename-with-compat-view",
        "breaking",
        WARNING,
        "rename of a table with a compatibility view under the old name in the same file",
        "reads and simple INSERT/UPDATE/DELETE keep working through the auto-updatable view, but the live release "
        "still breaks on COPY ... FROM, TRUNCATE, ALTER/LOCK TABLE, triggers and sequences addressed by the old name, "
        "and on writes if the view is not a plain single-table SELECT",
        "make sure the live release only reads/writes rows through the old name; drop the view in a contract file",
    ),
    Rule(
        "set-schema",
        "breaking",
        ERROR,
        "move of an object to another schema",
        "the live release resolves the object through its search_path and no longer finds it",
        "create the object in the new schema beside the old one; remove the old one in a contract file",
    ),
    Rule(
        "change-column-type",
        "breaking",
        ERROR,
        "change of a column's type",
        "the live release reads and writes the old type (and the change rewrites the table under an exclusive lock)",
        "add a column of the new type, write both and backfill in batches, switch reads, drop the old column later",
        "changing-column-type",
    ),
    Rule(
        "set-not-null",
        "breaking",
        ERROR,
        "SET NOT NULL on a column",
        "the live release may still insert rows without this column, and those inserts now fail",
        "make every live release write the column first; then add CHECK (col IS NOT NULL) NOT VALID, validate it "
        "in a later file, and SET NOT NULL after that (in a contract file)",
        "adding-not-nullable-field",
    ),
    Rule(
        "add-required-column",
        "breaking",
        ERROR,
        "new NOT NULL column without a default",
        "the live release does not know the column, so its inserts omit it and fail (even on an empty table)",
        "add the column nullable or with a constant DEFAULT; make it NOT NULL in a contract file",
        "adding-required-field",
    ),
    Rule(
        "constraint-breaks-old-writes",
        "breaking",
        ERROR,
        "new CHECK, FOREIGN KEY, UNIQUE or EXCLUDE constraint on an existing table",
        "the live release writes rows without knowing the rule; NOT VALID only skips the existing rows, new rows "
        "the live release writes are still rejected",
        "first ship a release that always writes valid rows; add the constraint (NOT VALID) in a contract file "
        "with after=<that release>",
    ),
    Rule(
        "drop-default",
        "breaking",
        ERROR,
        "drop of a column default",
        "the live release relies on the default when it omits the column; its inserts now write NULL or fail",
        "drop the default in a contract file after the release that always writes the column",
    ),
    Rule(
        "drop-constraint",
        "breaking",
        ERROR,
        "drop of a constraint",
        "the live release may rely on it (ON CONFLICT targets, cascades, uniqueness it never checks itself)",
        "drop it in a contract file with after=<the first release that no longer relies on it>",
    ),
    # -- locking or rewriting a busy table (every file) -----------------------------
    Rule(
        "create-index-non-concurrently",
        "locking",
        ERROR,
        "CREATE INDEX without CONCURRENTLY on an existing table",
        "it blocks every write to the table for as long as the index takes to build",
        "CREATE INDEX CONCURRENTLY in a file of its own (it cannot run inside a transaction)",
        "require-concurrent-index-creation",
    ),
    Rule(
        "drop-index-non-concurrently",
        "locking",
        ERROR,
        "DROP INDEX without CONCURRENTLY",
        "it takes an ACCESS EXCLUSIVE lock on the table, blocking reads and writes behind any running query",
        "DROP INDEX CONCURRENTLY in a file of its own",
        "require-concurrent-index-deletion",
    ),
    Rule(
        "constraint-without-not-valid",
        "locking",
        ERROR,
        "CHECK or FOREIGN KEY added without NOT VALID on an existing table",
        "validating every existing row holds a lock that blocks writes (ACCESS EXCLUSIVE for CHECK, "
        "SHARE ROW EXCLUSIVE on both tables for a foreign key) for the whole scan",
        "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a later file",
        "constraint-missing-not-valid",
    ),
    Rule(
        "unique-without-index",
        "locking",
        ERROR,
        "UNIQUE or PRIMARY KEY added by building its index in ALTER TABLE",
        "the index is built while the table is locked against writes",
        "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... UNIQUE USING INDEX",
        "disallowed-unique-constraint",
    ),
    Rule(
        "validate-in-same-transaction",
        "locking",
        ERROR,
        "VALIDATE CONSTRAINT in the same transaction that added it NOT VALID",
        "the ADD's ACCESS EXCLUSIVE lock is still held while the validation scans the table",
        "validate in a later migration file (it then needs only SHARE UPDATE EXCLUSIVE)",
        "constraint-missing-not-valid",
    ),
    Rule(
        "set-not-null-scan",
        "locking",
        ERROR,
        "SET NOT NULL without a validated CHECK (col IS NOT NULL)",
        "PostgreSQL scans the whole table under an ACCESS EXCLUSIVE lock to prove no NULL exists",
        "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it in a later file, then SET NOT NULL (no scan)",
        "adding-not-nullable-field",
    ),
    Rule(
        "table-rewrite",
        "locking",
        ERROR,
        "statement that rewrites the whole table",
        "a type change, a volatile default, a serial/identity or stored generated column rewrites every row "
        "under an ACCESS EXCLUSIVE lock",
        "add the column without the default (or nullable), backfill in batches, then set the default",
        "adding-field-with-default",
    ),
    Rule(
        "reindex-non-concurrently",
        "locking",
        ERROR,
        "REINDEX without CONCURRENTLY",
        "it blocks writes to the table (and reads through the index) until every index is rebuilt",
        "REINDEX ... CONCURRENTLY, in a file marked '-- bluegreen-run: no-transaction'",
    ),
    Rule(
        "vacuum-full-or-cluster",
        "locking",
        ERROR,
        "VACUUM FULL or CLUSTER",
        "it rewrites the table under an ACCESS EXCLUSIVE lock: reads and writes stop until it ends",
        "use pg_repack (online) or plain VACUUM; never run these from a migration",
        "ban-vacuum-full",
    ),
    Rule(
        "missing-lock-timeout",
        "locking",
        WARNING,
        "lock taken on an existing table without lock_timeout",
        "waiting for the lock behind one long query queues every other query on the table: an outage",
        "start the file with SET lock_timeout = '2s' (and retry the migration when it times out)",
        "require-timeout-settings",
    ),
    # -- what the analyzer cannot read --------------------------------------------
    Rule(
        "parse-error",
        "input",
        ERROR,
        "SQL that PostgreSQL's grammar rejects",
        "the analyzer cannot prove an unparseable file safe, and PostgreSQL will reject it too",
        "fix the syntax at the reported position",
    ),
    Rule(
        "dynamic-sql",
        "input",
        WARNING,
        "EXECUTE of SQL built at run time",
        "the statement is only known when it runs, so it was not checked",
        "write the statement literally, or suppress with the reason it is safe",
    ),
    Rule(
        "bad-suppression",
        "input",
        ERROR,
        "suppression without a reason or for an unknown rule",
        "a suppression must say why the statement is safe, so a reviewer can judge it",
        "write '-- bluegreen: allow <rule-id>: <why it is safe>' on the statement",
    ),
]

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}
