"""Smoke runner against a local test HTTP server: each kind of check passes and fails."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from rich.console import Console

from scripts.smoke import SmokeFileError, SmokeRunner, load_suite, print_report


class FakeService(BaseHTTPRequestHandler):
    """A tiny orders service whose misbehaviour each test can dial in."""

    orders: dict[str, dict] = {}
    failures_left = 0
    delay_s = 0.0
    seen_headers: dict[str, str] = {}

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: dict | str) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        type(self).seen_headers = dict(self.headers)
        time.sleep(type(self).delay_s)
        if type(self).failures_left > 0:
            type(self).failures_left -= 1
            self._send(503, {"status": "warming up"})
        elif self.path == "/healthz":
            self._send(200, {"status": "ok", "version": "2.0.0", "color": "green"})
        elif self.path.startswith("/orders/") and self.path[8:] in self.orders:
            self._send(200, self.orders[self.path[8:]])
        else:
            self._send(404, "not found")

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        order = {"id": str(len(self.orders) + 1), **body}
        self.orders[order["id"]] = order
        self._send(201, order)


@pytest.fixture
def service() -> Iterator[str]:
    FakeService.orders, FakeService.failures_left, FakeService.delay_s = {}, 0, 0.0
    FakeService.seen_headers = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeService)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def suite_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "smoke.yaml"
    path.write_text(text)
    return path


FAST = "settings: {timeout_s: 10, attempts: 3, backoff_s: 0.01, max_backoff_s: 0.05}\n"


def run(tmp_path: Path, base: str, checks: str, health=None, settings: str = FAST):
    suite = load_suite(suite_file(tmp_path, settings + "checks:\n" + checks))
    return SmokeRunner(suite, base, "green", "2.0.0", health=health).run()


@pytest.mark.parametrize(
    "expect, passes",
    [
        ("{status: 200}", True),
        ("{status: 204}", False),
        ("{fields: {status: ok, version: '{version}'}}", True),
        ("{fields: {version: 1.0.0}}", False),
        ("{fields: {missing.deep: 1}}", False),
        ('{contains: [\'"color": "{color}"\']}', True),
        ("{contains: [blue]}", False),
        ("{max_latency_ms: 5000}", True),
    ],
)
def test_each_kind_of_check_passes_and_fails(tmp_path, service, expect, passes) -> None:
    report = run(tmp_path, service, f"  - {{name: probe, path: /healthz, expect: {expect}}}\n")
    assert report.passed is passes
    assert report.results[0].attempts == (1 if passes else 3)


def test_latency_limit_fails_a_slow_response(tmp_path, service) -> None:
    FakeService.delay_s = 0.15
    report = run(tmp_path, service, "  - {name: slow, path: /healthz, expect: {max_latency_ms: 50}}\n")
    assert not report.passed
    assert "latency" in report.results[0].detail and "> max 50 ms" in report.results[0].detail


def test_business_flow_saves_a_field_and_reads_it_back_with_headers(tmp_path, service) -> None:
    checks = """\
  - name: create order
    method: POST
    path: /orders
    headers: {X-Smoke: "{color}"}
    body: {item: widget, quantity: 2}
    expect: {status: 201, fields: {item: widget}}
    save: {order_id: id}
  - name: read order back
    path: /orders/{order_id}
    expect: {status: 200, fields: {id: "{order_id}", quantity: 2}}
"""
    report = run(tmp_path, service, checks)
    assert report.passed, report.to_dict()
    assert FakeService.orders == {"1": {"id": "1", "item": "widget", "quantity": 2}}


def test_failure_keeps_request_and_response_and_skips_later_checks(tmp_path, service) -> None:
    checks = "  - {name: missing, path: /orders/42, headers: {X-A: b}, expect: {status: 200}}\n"
    checks += "  - {name: after, path: /healthz, expect: {status: 200}}\n"
    report = run(tmp_path, service, checks)
    first, second = report.results
    assert not first.passed and first.status == 404
    assert first.request == {"method": "GET", "url": service + "/orders/42", "headers": {"X-A": "b"}, "body": None}
    assert first.response["status"] == 404 and first.response["body"] == "not found"
    assert not second.passed and second.attempts == 0 and "not run" in second.detail
    console = Console(record=True, width=200)
    print_report(report, console)
    text = console.export_text()
    assert "FAIL" in text and "/orders/42" in text and "not found" in text and "smoke failed: 0/2" in text


def test_retries_with_backoff_until_the_colour_is_warm(tmp_path, service) -> None:
    FakeService.failures_left = 2
    report = run(tmp_path, service, "  - {name: warm, path: /healthz, expect: {status: 200}}\n")
    assert report.passed
    assert report.results[0].attempts == 3


def test_overall_timeout_stops_retrying(tmp_path, service) -> None:
    FakeService.failures_left = 10_000
    settings = "settings: {timeout_s: 0.5, attempts: 1000, backoff_s: 0.1, max_backoff_s: 0.2}\n"
    report = run(tmp_path, service, "  - {name: never, path: /healthz, expect: {status: 200}}\n", settings=settings)
    assert not report.passed
    assert report.results[0].attempts < 10
    assert "overall timeout 0.5s reached" in report.results[0].detail


def test_unhealthy_targets_fail_before_any_request(tmp_path, service) -> None:
    calls = []

    def health():
        calls.append(1)
        return False, "green: 0/2 targets UP"

    report = run(tmp_path, service, "  - {name: live, path: /healthz, expect: {status: 200}}\n", health=health)
    assert [r.passed for r in report.results] == [False, False]
    assert report.results[0].detail == "green: 0/2 targets UP" and len(calls) == 3
    assert FakeService.seen_headers == {}


def test_connection_refused_is_a_failed_check(tmp_path) -> None:
    report = run(tmp_path, "http://127.0.0.1:9", "  - {name: down, path: /healthz, expect: {status: 200}}\n")
    assert not report.passed and "request failed: ConnectError" in report.results[0].detail


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("checks:\n  - name: a\n    path: /x\n   bad: indent\n", 4, "not valid YAML"),
        ("checks:\n  - {name: a, path: /x, expect: {}}\n  - name: b\n    path: nope\n", 4, "checks[1].path: 'nope' is"),
        ("checks:\n  - name: a\n    path: /x\n    expect:\n      status: 999\n", 5, "status: 999 is invalid"),
        ("checks:\n  - name: a\n    path: /x\n    expct: {}\n", 4, "unknown key; allowed: body, expect"),
        ("checks:\n  - {name: a, path: /x, expect: {}}\n  - {name: a, path: /y, expect: {}}\n", 3, "duplicate check"),
        ("settings:\n  attempts: 0\nchecks: []\n", 2, "settings.attempts: 0 is invalid"),
        ("checks: {}\n", 1, "non-empty list"),
        ("checks:\n  - name: a\n    method: FETCH\n    path: /x\n", 3, "allowed: GET"),
    ],
)
def test_bad_file_names_the_line(tmp_path, text, line, message) -> None:
    path = suite_file(tmp_path, text)
    with pytest.raises(SmokeFileError) as caught:
        load_suite(path)
    assert f"{path}:{line}:" in str(caught.value)
    assert message in str(caught.value)


def test_the_smoke_file_comes_from_the_stack_config_unless_file_is_given(tmp_path) -> None:
    import argparse

    from scripts.pipeline_cli import _smoke_file

    (tmp_path / "Pulumi.s.yaml").write_text("config:\n  bluegreen:smoke_file: checks/app-smoke.yaml\n")
    args = argparse.Namespace(stack="s", project_dir=str(tmp_path), file=None)
    assert _smoke_file(args) == tmp_path / "checks" / "app-smoke.yaml"
    assert _smoke_file(argparse.Namespace(stack="s", project_dir=str(tmp_path), file="/x/y.yaml")) == Path("/x/y.yaml")
    (tmp_path / "Pulumi.d.yaml").write_text("config:\n  bluegreen:cloud: local\n")
    assert _smoke_file(argparse.Namespace(stack="d", project_dir=str(tmp_path), file=None)) == tmp_path / "smoke.yaml"
