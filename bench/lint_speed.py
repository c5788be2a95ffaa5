"""Lint speed against squawk, each run as one command line, and where the two agree.

Generates a corpus shaped like a real migration history (hundreds of files of 2-14
statements: wide tables, views with long queries, backfills in ``DO`` blocks,
functions and triggers, generated ``ALTER ... TYPE`` lines, seed data, index builds,
contract steps and the usual mistakes), or takes a real one (``--history DIR``: its
SQL files in name order, each given an expand header), and times, as whole
processes in alternating pairs, ``python -m policies lint DIR`` and squawk
(``pip install squawk-cli``; ``--squawk PATH``, ``$SQUAWK`` or ``squawk`` on PATH) on
the same files. Prints the medians as files/s and statements/s, their ratio against
the goal (within 2x of squawk), and each tool's start-up (one tiny file). Bytecode
caching is on, as in a user's shell, whatever ``PYTHONDONTWRITEBYTECODE`` says.

Then, per breaking-change rule both have, how many statements both flag, only we
flag, and only squawk flags. Agreement is measured on expand files only: in a
contract file dropping what old releases used is the point, so we do not report it
there, while squawk (which knows no expand/contract) does.

    ./venv/bin/python bench/lint_speed.py [--files 342] [--seed 7] [--runs 7] [--squawk PATH]
    ./venv/bin/python bench/lint_speed.py --history ../lemmy/migrations --glob '*/up.sql'
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from policies.analyzer import lint_paths, statements_of  # noqa: E402
from policies.rules import RULES  # noqa: E402

TABLES = ["orders", "customers", "invoices", "payments", "shipments", "products", "carts", "refunds", "audit_log"]
COLUMNS = ["note", "status", "email", "total", "currency", "region", "placed_at", "memo", "sku", "quantity"]
TYPES = ["text", "bigint", "integer", "numeric(12,2)", "varchar(64)", "timestamptz", "boolean", "jsonb"]

# (weight, kind, template); {t} table, {c}/{d} columns, {y} type, {n} a number.
TEMPLATES: list[tuple[int, str, str]] = [
    (6, "expand", "ALTER TABLE {t} ADD COLUMN {c}_{n} {y};"),
    (3, "expand", "ALTER TABLE {t} ADD COLUMN {c}_{n} {y} DEFAULT {default};"),
    (2, "expand", "ALTER TABLE {t} ADD COLUMN {c}_{n} {y} NOT NULL;"),
    (2, "expand", "ALTER TABLE {t} ADD COLUMN {c}_{n} uuid DEFAULT gen_random_uuid();"),
    (4, "expand", "CREATE INDEX CONCURRENTLY IF NOT EXISTS {t}_{c}_{n}_idx ON {t} ({c});"),
    (3, "expand", "CREATE INDEX {t}_{c}_{n}_idx ON {t} ({c});"),
    (2, "expand", "DROP INDEX {t}_{c}_{n}_idx;"),
    (2, "expand", "ALTER TABLE {t} DROP COLUMN {c};"),
    (1, "expand", "DROP TABLE {t}_archive_{n};"),
    (2, "expand", "ALTER TABLE {t} RENAME COLUMN {c} TO {d}_{n};"),
    (1, "expand", "ALTER TABLE {t}_{n} RENAME TO {t}_{n}_v2;"),
    (1, "expand", "ALTER TABLE {t}_{n} RENAME TO {t}_{n}_v2;\nCREATE VIEW {t}_{n} AS SELECT * FROM {t}_{n}_v2;"),
    (2, "expand", "ALTER TABLE {t} ALTER COLUMN {c} TYPE {y};"),
    (2, "expand", "ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL;"),
    (2, "expand", "ALTER TABLE {t} ADD CONSTRAINT {t}_{c}_{n}_check CHECK ({c} IS NOT NULL) NOT VALID;"),
    (2, "expand", "ALTER TABLE {t} ADD CONSTRAINT {t}_{c}_{n}_fk FOREIGN KEY ({c}) REFERENCES customers (id);"),
    (1, "expand", "ALTER TABLE {t} ADD CONSTRAINT {t}_{c}_{n}_key UNIQUE ({c});"),
    (1, "expand", "ALTER TABLE {t} ALTER COLUMN {c} DROP DEFAULT;"),
    (1, "expand", "VACUUM FULL {t};"),
    (3, "expand", "UPDATE {t} SET {d} = {c} WHERE {d} IS NULL AND id BETWEEN {n}000 AND {n}999;"),
    (
        3,
        "expand",
        "DO $$\nDECLARE moved integer;\nBEGIN\n  LOOP\n    UPDATE {t} SET {d} = {c}\n"
        "     WHERE id IN (SELECT id FROM {t} WHERE {d} IS NULL LIMIT 1000);\n"
        "    GET DIAGNOSTICS moved = ROW_COUNT;\n    EXIT WHEN moved = 0;\n  END LOOP;\nEND\n$$;",
    ),
    (1, "expand", "DO $$ BEGIN\n  ALTER TABLE {t} DROP COLUMN IF EXISTS {c}_legacy;\nEND $$;"),
    (
        2,
        "expand",
        "CREATE OR REPLACE FUNCTION {t}_{c}_{n}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
        "  NEW.{d} := coalesce(NEW.{d}, NEW.{c});\n  RETURN NEW;\nEND\n$$;",
    ),
    (
        4,
        "expand",
        "CREATE TABLE IF NOT EXISTS {t}_{n} (\n  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
        "  {c} {y},\n  {d} text,\n  created_at timestamptz NOT NULL DEFAULT now()\n);\n"
        "CREATE INDEX {t}_{n}_created_idx ON {t}_{n} (created_at);",
    ),
    # What real histories are mostly made of, besides the risky steps: wide tables,
    # views over long queries, seed data, triggers, comments, generated type lines.
    (4, "expand", "CREATE TABLE {t}_{n}_detail (\n  id serial PRIMARY KEY,\n{coldefs}\n);"),
    (
        3,
        "expand",
        "CREATE OR REPLACE VIEW {t}_{n}_view AS\nSELECT\n{cols}\nFROM {t}\n"
        "  JOIN customers ON customers.id = {t}.customer_id\n"
        "  LEFT JOIN (SELECT {t}_id, count(*) AS n, max(placed_at) AS last FROM payments GROUP BY {t}_id) p\n"
        "    ON p.{t}_id = {t}.id\nWHERE {t}.{c} IS NOT NULL AND coalesce(p.n, 0) >= 0\nORDER BY {t}.id;",
    ),
    (3, "expand", "INSERT INTO {t}_settings (name, value, enabled) VALUES {rows}\nON CONFLICT (name) DO NOTHING;"),
    (2, "expand", "INSERT INTO {t}_{c} ({c}, created_at)\nSELECT {c}, now() FROM {t} WHERE {c} IS NOT NULL;"),
    (
        2,
        "expand",
        "CREATE TRIGGER {t}_{n}_touch BEFORE UPDATE ON {t}\n  FOR EACH ROW EXECUTE FUNCTION touch_updated_at();",
    ),
    (2, "expand", "COMMENT ON COLUMN {t}.{c} IS 'set by the {d} job, read by reports';"),
    (3, "expand", "ALTER TABLE {t} ALTER COLUMN id TYPE uuid, ALTER COLUMN id DROP NOT NULL;"),
    (1, "expand", "DELETE FROM {t}_settings WHERE name LIKE 'legacy_%' AND enabled = false;"),
    (3, "contract", "ALTER TABLE {t} DROP COLUMN IF EXISTS {c}_old;"),
    (2, "contract", "ALTER TABLE {t} VALIDATE CONSTRAINT {t}_{c}_check;"),
    (1, "contract", "ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL;"),
    (1, "contract", "DROP VIEW IF EXISTS {t}_v1;"),
]

# Our rule -> squawk's rule, for the breaking-change rules both implement.
SHARED_BREAKING = {rule.id: rule.squawk for rule in RULES.values() if rule.category == "breaking" and rule.squawk}


def generate(directory: Path, count: int, seed: int) -> list[Path]:
    rng = random.Random(seed)
    weights = [w for w, _, _ in TEMPLATES]
    paths = []
    for number in range(1, count + 1):
        chosen = rng.choices(TEMPLATES, weights, k=rng.randint(2, 14))
        kind = "contract" if all(k == "contract" for _, k, _ in chosen) else "expand"
        chosen = [c for c in chosen if c[1] == kind]
        header = "-- bluegreen: expand" if kind == "expand" else f"-- bluegreen: contract after={rng.randint(1, 9)}.0.0"
        lines = [header]
        if rng.random() < 0.85:
            lines.append("SET lock_timeout = '2s';")
        for _, _, template in chosen:
            c, d = rng.sample(COLUMNS, 2)
            default = rng.choice(["0", "'none'", "now()", "false", "'{}'::jsonb"])
            table = rng.choice(TABLES)
            lines.append(
                template.format(
                    t=table,
                    c=c,
                    d=d,
                    y=rng.choice(TYPES),
                    n=rng.randint(1, 99),
                    default=default,
                    cols=",\n".join(
                        f"  {table}.{col} AS {col}_{i}"
                        for i, col in enumerate(rng.choices(COLUMNS, k=rng.randint(8, 30)))
                    ),
                    coldefs=",\n".join(
                        f"  {col}_{i} {rng.choice(TYPES)}{rng.choice(['', ' NOT NULL', ' DEFAULT now()', ''])}"
                        for i, col in enumerate(rng.choices(COLUMNS, k=rng.randint(4, 18)))
                    ),
                    rows=",\n  ".join(
                        f"('{col}_{i}', '{rng.randint(0, 999)}', {rng.choice(['true', 'false'])})"
                        for i, col in enumerate(rng.choices(COLUMNS, k=rng.randint(3, 20)))
                    ),
                )
            )
        path = directory / f"{number:04d}_{chosen[0][2].split()[0].lower()}_{kind}.sql"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def find_squawk(explicit: str | None) -> str | None:
    for candidate in (explicit, os.environ.get("SQUAWK"), shutil.which("squawk")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def paired_medians(runs: int, ours: list[str], theirs: list[str] | None) -> tuple[float, float | None, float | None]:
    """Median wall seconds of each command and of their ratio, run in turn (A B A B ...).

    Pairing keeps the ratio fair when the machine's speed drifts; one unmeasured run
    of each first (it writes our bytecode cache and warms the page cache).
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def timed(command: list[str]) -> float:
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=False)
        return time.perf_counter() - start

    timed(ours)
    if theirs:
        timed(theirs)
    a, b = [], []
    for _ in range(runs):
        a.append(timed(ours))
        if theirs:
            b.append(timed(theirs))
    if not theirs:
        return statistics.median(a), None, None
    return statistics.median(a), statistics.median(b), statistics.median(x / y for x, y in zip(a, b, strict=True))


def from_history(source: Path, pattern: str, directory: Path) -> list[Path]:
    """A real history's SQL files, in name order, as expand migrations of ours."""
    files = sorted(p for p in source.glob(pattern) if p.is_file())
    if not files:
        raise SystemExit(f"--history {source}: no file matches --glob {pattern!r}")
    paths = []
    for number, original in enumerate(files, start=1):
        path = directory / f"{number:04d}_history.sql"
        path.write_text("-- bluegreen: expand\n" + original.read_text(errors="replace"))
        paths.append(path)
    return paths


def shape(sql: str) -> str:
    """A statement with its names left out, so that one kind of difference counts once.

    (An earlier file explains most: the same type restated, a column already NOT NULL.)
    """
    return re.sub(r"\b[a-z_][a-z0-9_]*\b", "…", " ".join(sql.split()))[:80]


def statement_starts(path: Path) -> list[int]:
    return [s.line for s in statements_of(path.read_text()) if not s.context]


def owner(starts: list[int], line: int) -> int:
    return max((s for s in starts if s <= line), default=starts[0] if starts else line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=342, help="generated files (default 342, a real history's size)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each tool (median quoted)")
    parser.add_argument("--squawk", help="path to the squawk binary")
    parser.add_argument("--history", type=Path, help="lint a real history instead: a directory of SQL files")
    parser.add_argument("--glob", default="*.sql", help="which files of --history (default *.sql; e.g. '*/up.sql')")
    args = parser.parse_args()
    if args.files < 1 or args.runs < 1:
        parser.error("--files and --runs must be at least 1")

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "migrations"
        directory.mkdir()
        if args.history:
            paths = from_history(args.history, args.glob, directory)
            print(f"corpus: {len(paths)} files of {args.history} ({args.glob}), as expand steps")
        else:
            paths = generate(directory, args.files, args.seed)
            print(f"corpus: {len(paths)} generated migrations (seed {args.seed})")
        result = lint_paths([directory])
        size = sum(p.stat().st_size for p in paths)
        print(f"        {result.statements} statements, {size / 1024:.0f} KiB")
        tiny = Path(tmp) / "tiny"
        tiny.mkdir()
        (tiny / "001_tiny.sql").write_text("-- bluegreen: expand\nALTER TABLE t ADD COLUMN c text;\n")

        lint = [sys.executable, "-m", "policies", "lint"]
        squawk = find_squawk(args.squawk)
        version = squawk and subprocess.run([squawk, "--version"], capture_output=True, text=True).stdout.strip()
        print(f"\nwhole command lines, median of {args.runs} each (start-up: the same command on one tiny file):")
        start_ours, start_squawk, _ = paired_medians(
            args.runs, [*lint, str(tiny)], [squawk, str(tiny / "001_tiny.sql")] if squawk else None
        )
        # Each tool's default output (what a person runs), then JSON (what CI runs).
        for label, ours_flags, their_flags in (
            ("default output", [], []),
            ("JSON output", ["--format", "json"], ["--reporter", "json"]),
        ):
            theirs = [squawk, *their_flags, *map(str, paths)] if squawk else None
            ours_s, squawk_s, ratio = paired_medians(args.runs, [*lint, *ours_flags, str(directory)], theirs)
            print(f"  {label}:")
            print(
                f"    bluegreen lint: {len(paths) / ours_s:7.0f} files/s {result.statements / ours_s:7.0f} statements/s"
                f" {ours_s * 1000:5.0f} ms   (start-up {start_ours * 1000:3.0f} ms)"
            )
            if squawk_s is None or ratio is None or start_squawk is None:
                continue
            print(
                f"    {version}: {len(paths) / squawk_s:7.0f} files/s {result.statements / squawk_s:7.0f} statements/s"
                f" {squawk_s * 1000:5.0f} ms   (start-up {start_squawk * 1000:3.0f} ms)"
            )
            verdict = "within" if ratio <= 2.0 else "NOT within"
            print(f"    ours / squawk: {ratio:.2f}x, median of pairs ({verdict} the goal of 2x)")
        print(f"  ({len(result.errors)} errors, {len(result.warnings)} warnings from us)")
        if not squawk:
            print("  squawk: not installed (pip install squawk-cli, or pass --squawk PATH); no comparison")
            return 0
        theirs = [squawk, "--reporter", "json", *map(str, paths)]
        completed = subprocess.run(theirs, capture_output=True, text=True, check=False)
        squawk_findings = json.loads(completed.stdout or "[]")
        kinds = {p.name: ("contract" if "contract" in p.read_text().splitlines()[0] else "expand") for p in paths}
        starts = {p.name: statement_starts(p) for p in paths}
        ours: set[tuple[str, int, str]] = set()
        for f in result.findings:
            name = Path(f.file).name
            if f.rule in SHARED_BREAKING and kinds[name] == "expand":
                ours.add((name, owner(starts[name], f.line), SHARED_BREAKING[f.rule]))
        theirs: set[tuple[str, int, str]] = set()
        shared_names = set(SHARED_BREAKING.values())
        for f in squawk_findings:
            name = Path(f["file"]).name
            if f["rule_name"] in shared_names and kinds[name] == "expand":
                theirs.add((name, owner(starts[name], f["line"] + 1), f["rule_name"]))  # squawk lines are 0-based

        print("\nbreaking-change rules both have (expand files; statements flagged):")
        print(f"  {'rule (ours / squawk)':58} {'both':>6} {'ours only':>10} {'squawk only':>12}")
        both_total = union_total = 0
        for ours_rule, their_rule in sorted(SHARED_BREAKING.items()):
            a = {x for x in ours if x[2] == their_rule}
            b = {x for x in theirs if x[2] == their_rule}
            both_total += len(a & b)
            union_total += len(a | b)
            label = f"{ours_rule} / {their_rule}"
            print(f"  {label:58} {len(a & b):6} {len(a - b):10} {len(b - a):12}")
        agreement = both_total / union_total if union_total else 1.0
        print(f"  agreement (both / either): {agreement:.1%} over {union_total} flagged statements")
        reasons: Counter[str] = Counter()
        our_rules: dict[tuple[str, int], set[str]] = {}
        for f in result.findings:
            name = Path(f.file).name
            our_rules.setdefault((name, owner(starts[name], f.line)), set()).add(f.rule)
        for name, line, rule in sorted(theirs - ours):
            text = next(s.sql for s in statements_of((directory / name).read_text()) if s.line == line)
            mine = sorted(our_rules.get((name, line), set()) - set(SHARED_BREAKING))
            if mine:
                reasons[f"squawk {rule}, we report {', '.join(mine)}"] += 1
            else:
                reasons[f"squawk {rule}, we do not: {shape(text)}"] += 1
        for name, line, rule in sorted(ours - theirs):
            text = next(s.sql for s in statements_of((directory / name).read_text()) if s.line == line)
            where = "inside a DO block (squawk does not read it)" if text.startswith("DO") else shape(text)
            reasons[f"we report {rule}, squawk does not: {where}"] += 1
        if reasons:
            print("  where they differ:")
            for why, n in reasons.most_common():
                print(f"    {n:4}  {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
