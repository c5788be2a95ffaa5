"""The HAProxy source: per-request log lines per colour from HAProxy's ring, health from a stats socket.

A fake admin socket answers like HAProxy 2.6 (``show stat``, ``show info``, ``show
events``, and ``show info;show events <ring> -w [-n]`` streaming the worker's ring);
tests/local/test_log_channel.py runs the same source against a real HAProxy.
"""

from __future__ import annotations

import queue
import select
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from components.local.haproxy import LOG_RING
from scripts.metrics import MetricsSourceError, metrics_source_for
from scripts.metrics import haproxy as haproxy_source
from scripts.metrics.haproxy import percentile

STAT_HEADER = "# pxname,svname,status,check_status,req_tot,hrsp_5xx\n"
STATS = STAT_HEADER + "be_blue,app,UP,L7OK,10,0\nbe_blue,BACKEND,UP,,10,0\nbe_green,app,DOWN,L7STS,3,3\n"


class FakeHaproxy:
    """The admin socket of a master-worker HAProxy: one ring per worker; ``reload`` starts a new worker."""

    def __init__(self, path: str, rings: tuple[str, ...] = (LOG_RING,)) -> None:
        self.path = path
        self.rings = rings
        self.pid = 1000
        self.logged: dict[int, list[bytes]] = {self.pid: []}
        self.streams: list[tuple[int, queue.Queue[bytes | None]]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for command in self.rfile.readline().decode().strip().split(";"):
                    if not fake.answer(command.split(), self.wfile, self.connection):
                        return

        self.server = socketserver.ThreadingUnixStreamServer(path, Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def answer(self, words: list[str], out: Any, connection: socket.socket) -> bool:
        """Write one command's answer; False once the session is over."""
        if words == ["show", "stat"]:
            out.write(STATS.encode())
        elif words == ["show", "info"]:
            out.write(f"Name: HAProxy\nPid: {self.pid}\n\n".encode())
        elif words == ["show", "events"]:
            out.write(b"".join(f"    {ring} : type=buffer, 0 dropped, {ring}\n".encode() for ring in self.rings))
        elif words[:2] == ["show", "events"] and "-w" in words:
            if words[2] not in self.rings:
                out.write(b"No such event sink\n")
                return False
            self.stream(out, connection, new_only="-n" in words)
            return False
        return True

    def stream(self, out: Any, connection: socket.socket, new_only: bool) -> None:
        """Like HAProxy: the ring (or only what comes next), then each new line, until the reader closes."""
        feed: queue.Queue[bytes | None] = queue.Queue()
        with self.lock:
            pid = self.pid
            backlog = [] if new_only else list(self.logged[pid])
            self.streams.append((pid, feed))
        try:
            for line in backlog:
                out.write(line)
            out.flush()
            while True:
                try:
                    line = feed.get(timeout=0.02)
                except queue.Empty:
                    readable, _w, _x = select.select([connection], [], [], 0)
                    if readable and not connection.recv(1, socket.MSG_PEEK):
                        return  # the reader closed the session
                    continue
                if line is None:
                    return
                out.write(line)
                out.flush()
        except OSError:
            pass  # the reader went away
        finally:
            with self.lock:
                self.streams = [s for s in self.streams if s[1] is not feed]

    def log(self, line: bytes, pid: int | None = None) -> None:
        """A worker logs a line (the current one unless ``pid`` names an older one)."""
        with self.lock:
            pid = pid or self.pid
            self.logged[pid].append(line)
            for stream_pid, feed in self.streams:
                if stream_pid == pid:
                    feed.put(line)

    def readers(self, pid: int) -> int:
        with self.lock:
            return sum(1 for stream_pid, _feed in self.streams if stream_pid == pid)

    def reload(self) -> int:
        with self.lock:
            self.pid += 1
            self.logged[self.pid] = []
            return self.pid

    def close(self) -> None:
        with self.lock:
            for _pid, feed in self.streams:
                feed.put(None)
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeHaproxy]:
    server = FakeHaproxy(str(tmp_path / "admin.sock"))
    yield server
    server.close()


def outputs(stats_socket: str) -> dict:
    backends = {"blue": "be_blue", "green": "be_green", "split": "be_split"}
    return {"source": "haproxy", "stats_socket": stats_socket, "log_ring": LOG_RING, "backends": backends}


def log_line(backend: str, status: int, ta: int, server: str = "app", at: float | None = None) -> bytes:
    at_ms = int((time.time() if at is None else at) * 1000)
    return (
        f"bluegreen at={at_ms} frontend=prod backend={backend} server={server} status={status} tr_ms={ta} "
        f"tt_ms={ta} ta_ms={ta} bytes=100\n"
    ).encode()


def now_floor() -> datetime:
    """Now, to the millisecond below: HAProxy stamps its lines in whole milliseconds."""
    return datetime.fromtimestamp(int(time.time() * 1000) / 1000, UTC)


def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0, message: Callable[[], str] = str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"condition not reached {message()}"
        time.sleep(0.02)


def test_window_counts_errors_and_p99_per_colour(fake: FakeHaproxy) -> None:
    source = metrics_source_for(outputs(fake.path))
    start = now_floor()
    for i in range(100):
        fake.log(log_line("be_blue", 200, i + 1))
    fake.log(log_line("be_green", 503, 5))
    fake.log(log_line("be_split", 200, 7, server="green"))
    fake.log(log_line("be_green", -1, -1))
    fake.log(b"not a log line\n")
    fake.log(b"Server be_green/app is DOWN, reason: bluegreen frontend=prod backend=be_green status=200\n")
    wait_for(lambda: source.listener.received == {"blue": 100, "green": 3})
    end = datetime.now(UTC)
    blue, green = source.sample("blue", start, end), source.sample("green", start, end)
    assert (blue.requests, blue.errors, blue.p99_ms) == (100, 0, 99.0)
    assert (green.requests, green.errors) == (3, 2)  # a 503 and a request HAProxy gave up on
    assert green.p99_ms == 7.0
    later = source.sample("blue", end, end + timedelta(seconds=1))
    assert later.requests == 0 and later.p99_ms is None and not later.has_data


def test_lines_are_placed_by_when_haproxy_logged_them(fake: FakeHaproxy) -> None:
    """Not by arrival: a line HAProxy logged before this source listened is not counted at all."""
    source = metrics_source_for(outputs(fake.path))
    begun = source.listener.started
    fake.log(log_line("be_blue", 500, 3, at=begun - 5))
    fake.log(log_line("be_blue", 200, 4, at=begun + 1))
    fake.log(log_line("be_blue", 200, 6, at=begun + 2))
    wait_for(lambda: source.listener.received["blue"] == 2)
    first = source.sample("blue", datetime.fromtimestamp(begun + 0.5, UTC), datetime.fromtimestamp(begun + 1.5, UTC))
    assert (first.requests, first.errors, first.outcomes) == (1, 0, ((False, 4),))


def test_windows_before_listening_are_no_data(fake: FakeHaproxy) -> None:
    source = metrics_source_for(outputs(fake.path))
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    sample = source.sample("blue", long_ago, long_ago + timedelta(seconds=10))
    assert sample.requests is None and sample.errors is None


def test_health_is_haproxys_own_check(fake: FakeHaproxy) -> None:
    source = metrics_source_for(outputs(fake.path))
    blue, green = source.health("blue"), source.health("green")
    assert blue.ok and blue.detail == "blue: HAProxy check UP (L7OK)"
    assert not green.ok and "DOWN (L7STS)" in green.detail


def test_missing_keys_unreachable_socket_and_missing_ring_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(MetricsSourceError, match="lacks stats_socket"):
        metrics_source_for({"source": "haproxy", "log_ring": LOG_RING, "backends": {}})
    with pytest.raises(MetricsSourceError, match="lacks log_ring"):
        metrics_source_for({"source": "haproxy", "stats_socket": "x", "log_udp_port": 1, "backends": {}})
    old = FakeHaproxy(str(tmp_path / "old.sock"), rings=())
    try:
        source = metrics_source_for(outputs(old.path))
        with pytest.raises(MetricsSourceError, match=rf"no request log ring '{LOG_RING}'.*apply the stack again"):
            source.sample("blue", datetime.now(UTC) - timedelta(seconds=1), datetime.now(UTC))
    finally:
        old.close()


def test_a_source_made_before_haproxy_runs_reads_it_once_it_does(tmp_path: Path) -> None:
    """A deploy's recorder starts before the stack is up: no data until then, then every line since."""
    path = str(tmp_path / "admin.sock")
    source = metrics_source_for(outputs(path))
    now = datetime.now(UTC)
    assert source.sample("blue", now - timedelta(seconds=1), now).requests is None
    with pytest.raises(MetricsSourceError, match=r"admin socket .* unreachable"):
        source.health("blue")
    begun = now_floor()
    late = FakeHaproxy(path)
    try:
        late.log(log_line("be_blue", 200, 5))
        wait_for(lambda: source.listener.received["blue"] == 1)
        assert source.sample("blue", begun, datetime.now(UTC)).requests == 1
    finally:
        late.close()


def test_percentile_is_nearest_rank() -> None:
    assert percentile([5], 0.99) == 5
    assert percentile(list(range(1, 201)), 0.99) == 198
    assert percentile([1, 2, 3, 4], 0.5) == 2


def test_the_log_is_a_stream_the_monitor_waits_on(fake: FakeHaproxy) -> None:
    """wait_for_requests returns when requests of the colour arrive, not at its timeout; outcomes are kept in order."""
    source = metrics_source_for(outputs(fake.path))
    start = now_floor()
    assert source.wait_for_requests("green", 0.2) is False  # nothing came

    def send_later() -> None:
        time.sleep(0.2)
        fake.log(log_line("be_green", 200, 12))
        fake.log(log_line("be_green", 502, 40))

    threading.Thread(target=send_later, daemon=True).start()
    assert source.wait_for_requests("green", 30.0) is True
    wait_for(lambda: source.listener.received["green"] == 2)
    sample = source.sample("green", start, datetime.now(UTC))
    assert sample.outcomes == ((False, 12), (True, 40))
    assert source.wait_for_requests("blue", 0.1) is False  # green's requests do not wake a watch on blue


def test_a_reload_is_followed_to_the_new_worker(fake: FakeHaproxy, monkeypatch: pytest.MonkeyPatch) -> None:
    """The new worker's ring is read from its first line; the old one a little longer, then let go."""
    monkeypatch.setattr(haproxy_source, "FOLLOW_S", 0.05)
    monkeypatch.setattr(haproxy_source, "GRACE_S", 0.5)
    source = metrics_source_for(outputs(fake.path))
    old = fake.pid
    fake.log(log_line("be_blue", 200, 1))
    new = fake.reload()
    fake.log(log_line("be_blue", 200, 2))  # before the source noticed the new worker
    fake.log(log_line("be_blue", 500, 3), pid=old)  # the old worker finishes a request
    wait_for(lambda: source.listener.received["blue"] == 3, message=lambda: f"{source.listener.received}")
    wait_for(lambda: fake.readers(old) == 0)  # the old worker is let go, so it can exit
    assert fake.readers(new) == 1
    fake.log(log_line("be_blue", 200, 4))
    wait_for(lambda: source.listener.received["blue"] == 4)
    sample = source.sample("blue", datetime.fromtimestamp(source.listener.started, UTC), datetime.now(UTC))
    assert sorted(ms for _failed, ms in sample.outcomes or ()) == [1, 2, 3, 4]
