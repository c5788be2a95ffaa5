"""``pulumi preview --policy-pack policies`` on a local stack, through the real CLI."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest

from tests.engine.conftest import Cli
from tests.local.sandbox import REPO

pytestmark = pytest.mark.e2e

BREAKING_EXPAND = """-- bluegreen: expand
-- Drops a column the live release still reads: the pack must stop this.
ALTER TABLE orders DROP COLUMN item;
"""

# An expand step numbered after 004 (a contract that waits for 2.0.0 on both colours).
EXPAND_AFTER_CONTRACT = """-- bluegreen: expand
ALTER TABLE orders ADD COLUMN IF NOT EXISTS note text;
"""


def own_migrations(cli: Cli) -> None:
    """Point the stack at a copy of the example's migrations that this test may add files to."""
    shutil.copytree(REPO / "examples/orders/migrations", cli.root / "migrations")
    cli.set("migrations_dir", "migrations")


def preview_with_pack(cli: Cli, check: bool = True) -> str:
    done = cli.run("preview", "--non-interactive", "--policy-pack", str(cli.root / "policies"), check=check)
    return done.stdout + done.stderr


def test_the_example_migrations_pass_and_a_breaking_expand_fails(new_stack: Callable[..., Cli]) -> None:
    cli = new_stack()
    own_migrations(cli)
    out = preview_with_pack(cli)
    assert "bluegreen-policies" in out

    (cli.root / "migrations" / "005_drop_item.sql").write_text(BREAKING_EXPAND)
    done = cli.run("preview", "--non-interactive", "--policy-pack", str(cli.root / "policies"), check=False)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "migrations-backward-compatible" in out and "005_drop_item.sql" in out


def test_after_a_release_the_pack_judges_the_new_versions(new_stack: Callable[..., Cli]) -> None:
    cli = new_stack()
    own_migrations(cli)
    cli.up()
    expand = cli.root / "migrations" / "005_add_note.sql"
    expand.write_text(EXPAND_AFTER_CONTRACT)
    done = cli.run("preview", "--non-interactive", "--policy-pack", str(cli.root / "policies"), check=False)
    assert done.returncode != 0 and "expand-behind-contract" in done.stdout + done.stderr

    # Release 2.0.0 on both colours (004's contract may then run); the records' outputs
    # must carry the new versions, or the pack would judge 1.0.0 forever.
    expand.unlink()
    cli.set("blue_version", "2.0.0")
    cli.set("green_version", "2.0.0")
    cli.up()
    records = [r for r in cli.state()["deployment"]["resources"] if r["type"].endswith("bluegreen:Migration")]
    assert records and {(r["outputs"]["blueVersion"], r["outputs"]["greenVersion"]) for r in records} == {
        ("2.0.0", "2.0.0")
    }
    expand.write_text(EXPAND_AFTER_CONTRACT)
    preview_with_pack(cli)
