"""The shared cluster under faults: a crash loses no acknowledged write, an outside restart wedges nothing."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from components.local import postgres
from components.local.postgres import PostgresCluster, find_pg_bin
from components.local.state import StateDir
from tests.local.sandbox import children


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    outer = Path(tempfile.mkdtemp(prefix="bg-pg-faults-", dir="/tmp"))
    outer.chmod(0o711)
    (outer / "project").mkdir()
    cluster = PostgresCluster(StateDir(outer / "project", "pg"), "app", "app")
    try:
        yield cluster
    finally:
        cluster.stop()
        record = cluster.record()
        if record:
            record.stop(timeout_s=5, sig=signal.SIGKILL)
        if cluster.dir.parent == postgres.FALLBACK_ROOT:
            shutil.rmtree(cluster.dir, ignore_errors=True)
        shutil.rmtree(outer, ignore_errors=True)


def _postmaster_pid(cluster: PostgresCluster) -> int:
    return int((cluster.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])


def _crash(cluster: PostgresCluster) -> None:
    """kill -9 of the postmaster and every backend at once, as a power cut would leave it."""
    pid = _postmaster_pid(cluster)
    for victim in [pid, *children(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.02)


def test_acknowledged_writes_survive_a_crash_of_the_cluster(cluster: PostgresCluster) -> None:
    settings = cluster.start()
    with psycopg.connect(settings.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, note text NOT NULL)")
    lost_total = acknowledged_total = 0
    for round_number in range(3):
        acknowledged: list[int] = []
        started = threading.Event()

        def write(
            first: int,
            url: str = settings.url,
            acknowledged: list[int] = acknowledged,
            started: threading.Event = started,
        ) -> None:
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    for n in range(first, first + 1_000_000):
                        conn.execute("INSERT INTO orders VALUES (%s, 'x')", [n])
                        acknowledged.append(n)  # COMMIT returned: the client was told it is stored
                        started.set()
            except psycopg.Error:
                return  # the crash cut the connection

        writers = [threading.Thread(target=write, args=(round_number * 10_000_000 + w * 1_000_000,)) for w in range(4)]
        for writer in writers:
            writer.start()
        assert started.wait(20)
        time.sleep(0.5)
        _crash(cluster)
        for writer in writers:
            writer.join(30)
        assert not cluster.running()
        settings = cluster.start()  # crash recovery replays the WAL
        with psycopg.connect(settings.url) as conn:
            stored = {n for (n,) in conn.execute("SELECT id FROM orders")}
        lost = [n for n in acknowledged if n not in stored]
        lost_total += len(lost)
        acknowledged_total += len(acknowledged)
    assert acknowledged_total > 100
    assert lost_total == 0, f"{lost_total} of {acknowledged_total} acknowledged writes lost after crashes"


def test_a_restart_outside_the_tool_is_adopted_not_wedged(cluster: PostgresCluster) -> None:
    settings = cluster.start()
    before = _postmaster_pid(cluster)
    # Someone restarts the server by hand (or a package upgrade does): a new postmaster pid.
    pg_ctl = str(find_pg_bin() / "pg_ctl")
    restart = [pg_ctl, "-D", str(cluster.data_dir), "-l", str(cluster.log_file), "-m", "fast", "-w", "restart"]
    cluster._run(*restart)
    after = _postmaster_pid(cluster)
    assert after != before
    assert cluster.running(), "status must see the restarted server as the stack's own"
    settings = cluster.start()  # `up` does not try to start a second server on the same data directory
    with psycopg.connect(settings.url, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert cluster.stop(), "`down` stops the adopted server"
    assert not Path(f"/proc/{after}").exists() or not cluster.running()
    assert not cluster.running()


def test_a_stale_pid_file_of_another_program_is_not_adopted(cluster: PostgresCluster) -> None:
    cluster.start()
    cluster.stop()
    # The pid file names a live process that is not PostgreSQL (pid reuse after a crash).
    stranger = os.getpid()
    pid_file = cluster.data_dir / "postmaster.pid"
    pid_file.write_text(f"{stranger}\n{cluster.data_dir}\n")
    try:
        assert not cluster.running()
    finally:
        pid_file.unlink()
