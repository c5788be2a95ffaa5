"""The cluster lives where the server user can reach it, even in a checkout under /root."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import psycopg

from components.local import postgres
from components.local.postgres import PostgresCluster, cluster_dir
from components.local.state import StateDir


def test_cluster_in_an_unreachable_checkout_runs_from_the_fallback_directory() -> None:
    outer = Path(tempfile.mkdtemp(prefix="bg-private-", dir="/tmp"))
    outer.chmod(0o700)  # like /root: nobody but its owner may enter
    state = StateDir(outer / "project", "loc")
    (outer / "project").mkdir()
    cluster = PostgresCluster(state, "app", "app")
    try:
        if os.geteuid() != 0:
            # Not root: the server runs as ourselves and the checkout is ours to enter.
            assert cluster_dir(state) == state.postgres_dir
            return
        assert cluster.dir.parent == postgres.FALLBACK_ROOT
        assert cluster.dir != cluster_dir(StateDir(outer / "other", "loc")), "one directory per state dir"
        settings = cluster.start()
        assert state.postgres_dir.is_symlink() and state.postgres_dir.resolve() == cluster.dir
        assert (cluster.dir / "data" / "PG_VERSION").exists()
        with psycopg.connect(settings.url, connect_timeout=5) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("app",)
    finally:
        cluster.stop()
        if cluster.dir.parent == postgres.FALLBACK_ROOT:
            shutil.rmtree(cluster.dir, ignore_errors=True)
        shutil.rmtree(outer, ignore_errors=True)


def test_a_reachable_checkout_keeps_the_cluster_in_its_state_dir() -> None:
    outer = Path(tempfile.mkdtemp(prefix="bg-open-", dir="/tmp"))
    outer.chmod(0o711)
    try:
        state = StateDir(outer / "project", "loc")
        (outer / "project").mkdir()
        assert cluster_dir(state) == state.postgres_dir
    finally:
        shutil.rmtree(outer, ignore_errors=True)
