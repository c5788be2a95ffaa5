"""The HAProxy source: per-request UDP log lines per colour, health from a stats socket."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from components.local.processes import free_port
from scripts.metrics import MetricsSourceError, metrics_source_for
from scripts.metrics.haproxy import percentile

STAT_HEADER = "# pxname,svname,status,check_status,req_tot,hrsp_5xx\n"
STATS = STAT_HEADER + "be_blue,app,UP,L7OK,10,0\nbe_blue,BACKEND,UP,,10,0\nbe_green,app,DOWN,L7STS,3,3\n"


@pytest.fixture
def stats_socket(tmp_path: Path) -> Iterator[str]:
    path = str(tmp_path / "admin.sock")

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            if self.rfile.readline().strip() == b"show stat":
                self.wfile.write(STATS.encode())

    server = socketserver.ThreadingUnixStreamServer(path, Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    yield path
    server.shutdown()
    server.server_close()


def outputs(stats_socket: str, port: int) -> dict:
    backends = {"blue": "be_blue", "green": "be_green", "split": "be_split"}
    return {"source": "haproxy", "stats_socket": stats_socket, "log_udp_port": port, "backends": backends}


def log_line(backend: str, status: int, ta: int, server: str = "app") -> bytes:
    return (
        f"bluegreen frontend=prod backend={backend} server={server} status={status} tr_ms={ta} tt_ms={ta} "
        f"ta_ms={ta} bytes=100\n"
    ).encode()


def test_window_counts_errors_and_p99_per_colour(stats_socket: str) -> None:
    port = free_port(socket.SOCK_DGRAM)
    source = metrics_source_for(outputs(stats_socket, port))
    start = datetime.now(UTC)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for i in range(100):
            sender.sendto(log_line("be_blue", 200, i + 1), ("127.0.0.1", port))
        sender.sendto(log_line("be_green", 503, 5), ("127.0.0.1", port))
        sender.sendto(log_line("be_split", 200, 7, server="green"), ("127.0.0.1", port))
        sender.sendto(log_line("be_green", -1, -1), ("127.0.0.1", port))
        sender.sendto(b"not a log line", ("127.0.0.1", port))
    time.sleep(0.3)
    end = datetime.now(UTC)
    blue, green = source.sample("blue", start, end), source.sample("green", start, end)
    assert (blue.requests, blue.errors, blue.p99_ms) == (100, 0, 99.0)
    assert (green.requests, green.errors) == (3, 2)  # a 503 and a request HAProxy gave up on
    assert green.p99_ms == 7.0
    later = source.sample("blue", end, end + timedelta(seconds=1))
    assert later.requests == 0 and later.p99_ms is None and not later.has_data


def test_windows_before_listening_are_no_data(stats_socket: str) -> None:
    source = metrics_source_for(outputs(stats_socket, free_port(socket.SOCK_DGRAM)))
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    sample = source.sample("blue", long_ago, long_ago + timedelta(seconds=10))
    assert sample.requests is None and sample.errors is None


def test_health_is_haproxys_own_check(stats_socket: str) -> None:
    source = metrics_source_for(outputs(stats_socket, free_port(socket.SOCK_DGRAM)))
    blue, green = source.health("blue"), source.health("green")
    assert blue.ok and blue.detail == "blue: HAProxy check UP (L7OK)"
    assert not green.ok and "DOWN (L7STS)" in green.detail


def test_missing_keys_and_unreachable_socket_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(MetricsSourceError, match="lacks stats_socket"):
        metrics_source_for({"source": "haproxy", "log_udp_port": 1, "backends": {}})
    source = metrics_source_for(outputs(str(tmp_path / "none.sock"), free_port(socket.SOCK_DGRAM)))
    with pytest.raises(MetricsSourceError, match=r"admin socket .* unreachable"):
        source.health("blue")


def test_percentile_is_nearest_rank() -> None:
    assert percentile([5], 0.99) == 5
    assert percentile(list(range(1, 201)), 0.99) == 198
    assert percentile([1, 2, 3, 4], 0.5) == 2


def test_the_log_is_a_stream_the_monitor_waits_on(stats_socket: str) -> None:
    """wait_for_requests returns when requests of the colour arrive, not at its timeout; outcomes are kept in order."""
    port = free_port(socket.SOCK_DGRAM)
    source = metrics_source_for(outputs(stats_socket, port))
    start = datetime.now(UTC)
    assert source.wait_for_requests("green", 0.2) is False  # nothing came

    def send_later() -> None:
        time.sleep(0.2)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(log_line("be_green", 200, 12), ("127.0.0.1", port))
            sender.sendto(log_line("be_green", 502, 40), ("127.0.0.1", port))

    threading.Thread(target=send_later, daemon=True).start()
    assert source.wait_for_requests("green", 30.0) is True
    time.sleep(0.2)
    sample = source.sample("green", start, datetime.now(UTC))
    assert sample.outcomes == ((False, 12), (True, 40))
    assert source.wait_for_requests("blue", 0.1) is False  # green's requests do not wake a watch on blue
