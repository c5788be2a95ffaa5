"""Lint speed, and agreement with squawk on the breaking-change rules both have.

Generates a corpus of real-looking migrations (a seeded mix of table creation,
expand steps, backfills in DO blocks, index builds, contract steps and the usual
mistakes), lints it with ``policies.analyzer`` and, when the squawk binary is found
(``pip install squawk-cli``; ``--squawk PATH``, ``$SQUAWK`` or ``squawk`` on PATH),
with squawk too. Prints files/s for both and, per shared rule, how many statements
both flag, only we flag, and only squawk flags. Agreement is measured on expand
files only: in a contract file dropping what old releases used is the point, so we
do not report it there, while squawk (which knows no expand/contract) does.

    ./venv/bin/python bench/lint_speed.py [--files 600] [--seed 7] [--squawk PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
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
        chosen = rng.choices(TEMPLATES, weights, k=rng.randint(1, 4))
        kind = "contract" if all(k == "contract" for _, k, _ in chosen) else "expand"
        chosen = [c for c in chosen if c[1] == kind]
        header = "-- bluegreen: expand" if kind == "expand" else f"-- bluegreen: contract after={rng.randint(1, 9)}.0.0"
        lines = [header]
        if rng.random() < 0.85:
            lines.append("SET lock_timeout = '2s';")
        for _, _, template in chosen:
            c, d = rng.sample(COLUMNS, 2)
            default = rng.choice(["0", "'none'", "now()", "false", "'{}'::jsonb"])
            lines.append(
                template.format(
                    t=rng.choice(TABLES), c=c, d=d, y=rng.choice(TYPES), n=rng.randint(1, 99), default=default
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


def best_of(runs: int, action: object) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        result = action()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best, result


def statement_starts(path: Path) -> list[int]:
    return [s.line for s in statements_of(path.read_text()) if not s.context]


def owner(starts: list[int], line: int) -> int:
    return max((s for s in starts if s <= line), default=starts[0] if starts else line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--squawk", help="path to the squawk binary")
    args = parser.parse_args()
    if args.files < 1:
        parser.error("--files must be at least 1")

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "migrations"
        directory.mkdir()
        paths = generate(directory, args.files, args.seed)
        print(f"corpus: {len(paths)} generated migrations (seed {args.seed}) in {directory}")

        ours_s, result = best_of(args.runs, lambda: lint_paths([directory]))
        print(
            f"bluegreen lint: {len(paths) / ours_s:8.0f} files/s  {result.statements / ours_s:8.0f} statements/s  "
            f"({ours_s * 1000:.0f} ms best of {args.runs}; {len(result.errors)} errors, "
            f"{len(result.warnings)} warnings)"
        )

        squawk = find_squawk(args.squawk)
        if squawk is None:
            print("squawk: not installed (pip install squawk-cli, or pass --squawk PATH); no comparison")
            return 0
        command = [squawk, "--reporter", "json", *map(str, paths)]
        squawk_s, completed = best_of(
            args.runs, lambda: subprocess.run(command, capture_output=True, text=True, check=False)
        )
        squawk_findings = json.loads(completed.stdout or "[]")  # type: ignore[union-attr]
        version = subprocess.run([squawk, "--version"], capture_output=True, text=True, check=False).stdout.strip()
        print(f"{version}: {len(paths) / squawk_s:8.0f} files/s  ({squawk_s * 1000:.0f} ms best of {args.runs})")

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
                reasons[f"squawk {rule}, we do not: {' '.join(text.split())[:70]}"] += 1
        for name, line, rule in sorted(ours - theirs):
            text = next(s.sql for s in statements_of((directory / name).read_text()) if s.line == line)
            where = "inside a DO block (squawk does not read it)" if text.startswith("DO") else text[:70]
            reasons[f"we report {rule}, squawk does not: {where}"] += 1
        if reasons:
            print("  where they differ:")
            for why, n in reasons.most_common():
                print(f"    {n:4}  {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
