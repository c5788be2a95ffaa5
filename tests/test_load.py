"""The load generator against a tiny in-process HTTP server: answers, write mode, parsing, analysis."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from scripts.load import Answer, LoadStats, SteadyLoad, SwitchMark, analyze_switches, rollback_reaction


class TinyServer:
    """Answers like the example service; ``mode`` switches to the edge cases the parser must handle."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.mode = "normal"
        self.posts: list[dict] = []
        self.connections = 0
        self.next_id = 1
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                lines = head.decode().split("\r\n")
                headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
                length = int(headers.get("content-length", "0"))
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                body, buffer = buffer[:length], buffer[length:]
                if lines[0].startswith("POST /orders"):
                    with self.lock:
                        self.posts.append(json.loads(body))
                        order_id, self.next_id = self.next_id, self.next_id + 1
                    conn.sendall(self._response(201, json.dumps({"id": order_id}).encode()))
                elif self.mode == "chunked":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
                elif self.mode == "close":  # no Content-Length: the body ends with the connection
                    conn.sendall(b"HTTP/1.1 200 OK\r\nX-App-Color: green\r\nConnection: close\r\n\r\n{}")
                    return
                else:
                    conn.sendall(self._response(200, b'{"service":"orders"}'))

    @staticmethod
    def _response(status: int, body: bytes) -> bytes:
        head = f"HTTP/1.1 {status} X\r\nX-App-Color: blue\r\nX-App-Version: 1.0.0\r\nContent-Length: {len(body)}\r\n"
        return head.encode() + b"\r\n" + body


@pytest.fixture
def server() -> Iterator[TinyServer]:
    tiny = TinyServer()
    yield tiny
    tiny.sock.close()


def run_load(server: TinyServer, seconds: float = 0.6, **kwargs: object) -> LoadStats:
    with SteadyLoad(f"http://127.0.0.1:{server.port}", **kwargs) as load:  # type: ignore[arg-type]
        time.sleep(seconds)
    return load.stats


def test_reads_and_writes_keep_colour_version_and_order_ids_over_keep_alive(server: TinyServer) -> None:
    stats = run_load(server, rate=200, connections=4, write_ratio=0.25)
    assert stats.sent >= 100 and stats.failed == 0, stats.summary()
    assert {(a.color, a.version) for a in stats.answers} == {("blue", "1.0.0")}
    ids = stats.order_ids()
    assert len(ids) == len(server.posts) and sorted(ids) == list(range(1, len(ids) + 1))
    assert abs(len(ids) - stats.sent / 4) <= 2
    assert server.posts[0]["total"] == "12.50" and server.posts[0]["total_cents"] == 1250
    assert server.connections == 4  # keep-alive: one connection per slot, reused
    assert stats.achieved_rate == pytest.approx(200, rel=0.15)


def test_body_ended_by_close_reconnects(server: TinyServer) -> None:
    server.mode = "close"
    stats = run_load(server, seconds=0.3, rate=100, connections=2)
    assert stats.sent >= 20 and stats.failed == 0, stats.summary()
    assert server.connections >= stats.sent


def test_chunked_answer_counts_as_a_failure_with_the_reason(server: TinyServer) -> None:
    server.mode = "chunked"
    stats = run_load(server, seconds=0.3, rate=50, connections=2)
    assert stats.sent > 0 and stats.failed == stats.sent
    assert "Transfer-Encoding 'chunked' is not supported" in stats.failures()[0].error


def test_refused_connection_is_a_failure_not_a_crash() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with SteadyLoad(f"http://127.0.0.1:{port}", rate=50, connections=2) as load:
        time.sleep(0.2)
    assert load.stats.sent > 0 and load.stats.failed == load.stats.sent
    assert all(a.status == 0 and a.error for a in load.stats.answers)


@pytest.mark.parametrize("url", ["http://example.com/", "https://127.0.0.1:8443/", "http://10.0.0.1:80"])
def test_refuses_anything_but_loopback(url: str) -> None:
    with pytest.raises(ValueError, match="loopback only"):
        SteadyLoad(url)


def test_switch_analysis_counts_wrong_colour_and_latency() -> None:
    stats = LoadStats(
        [
            Answer(0.0, 1, 200, "blue", "1"),
            Answer(1.0, 5, 200, "blue", "1"),  # sent after the switch began, before it completed: not wrong
            Answer(1.2, 3, 200, "green", "2"),  # first green answer, done at 1.203
            Answer(2.5, 1, 200, "blue", "1"),  # after completion: wrong colour
            Answer(3.0, 1, 503, "green", "2"),
        ],
        started=100.0,
    )
    analysis = analyze_switches(stats, [SwitchMark("green", 101.0, 102.0, routed=101.1)])
    assert (analysis.sent, analysis.failed, analysis.wrong_color_after_switch) == (5, 1, 1)
    assert analysis.latencies_ms == [pytest.approx(203)]
    assert analysis.route_latencies_ms == [pytest.approx(103)]


def test_rollback_reaction_spans_first_failure_to_last_bad_answer() -> None:
    green = [Answer(0.5, 10, 200, "green", "2"), Answer(1.0, 10, 500, "green", "2"), Answer(1.5, 99, 200, "green", "2")]
    stats = LoadStats([*green, Answer(1.55, 1, 200, "blue", "1")])
    reaction = rollback_reaction(stats, "green", after_s=0)
    assert reaction == {
        "first_failure_s": 1.0,
        "all_traffic_back_s": 1.599,
        "reaction_s": 0.599,
        "requests_in_between": 3,
        "failed_in_between": 1,
    }
