"""The local target's pure parts: settings, port plan, HAProxy config and logs, routing, faults, the app."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from app.faults import Faults, FaultSettingsError
from app.service import create_app, parse_order, release_line

from components.config import ConfigError, StackConfig
from components.local.haproxy import (
    LOG_FORMAT,
    SERVED_BY_HEADER,
    Haproxy,
    Routing,
    ServerStat,
    find_haproxy,
    parse_log_line,
)
from components.local.settings import FaultSpec, LocalSettings, PortPlan
from components.local.sockets import _address
from components.local.state import StateDir


def config(**raw: object) -> StackConfig:
    base = {"cloud": "local", "app_port": 20001, "listen_port": 20000, "preview_port": 20010}
    return StackConfig.parse({**base, **raw}, "unit")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"faults": []}, "bluegreen:local.faults = [] is invalid"),
        ({"faults": {"2.1.0": {"error_rate": 1.5}}}, "faults.2.1.0.error_rate = 1.5 is invalid: a number 0-1"),
        ({"faults": {"2.1.0": {"boom": 1}}}, "unknown field(s) ['boom']; allowed: error_rate"),
        ({"faults": {"2.1.0": {"fail_readiness": "yes"}}}, "fail_readiness = 'yes' is invalid: true or false"),
        ({"faults": {"-x": {}}}, "faults key '-x' is invalid"),
        ({"app_workers": 0}, "app_workers = 0 is invalid: an integer 1-32"),
        ({"colour": "red"}, "unknown field(s) ['colour']"),
    ],
)
def test_local_settings_errors_name_key_value_and_allowed(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        LocalSettings.parse(raw)
    assert message in str(info.value)


def test_faults_reach_only_their_version() -> None:
    settings = LocalSettings.parse({"faults": {"2.1.0": {"error_rate": 0.3, "after_s": 20}}})
    assert settings.faults_for("2.1.0").environment() == {
        "FAULT_ERROR_RATE": "0.3",
        "FAULT_LATENCY_MS": "0",
        "FAULT_SLOW_RATE": "1",
        "FAULT_FAIL_READINESS": "false",
        "FAULT_AFTER_S": "20",
    }
    assert settings.faults_for("2.0.0") == FaultSpec()


def test_dev_stack_carries_a_faulty_release_for_the_demo() -> None:
    dev = StackConfig.from_stack_file("dev", Path(__file__).resolve().parents[2])
    faults = LocalSettings.parse(dev.cloud_settings).faults
    assert any(spec.error_rate > 0 and spec.after_s > 0 for spec in faults.values())


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"listen_port": 20002}, "port clash: app_port + 1 (green) and listen_port are both 20002"),
        ({"preview_port": 20001}, "port clash: app_port (blue) and preview_port are both 20001"),
        ({"app_port": 65535}, "at most 65534"),
        ({"listen_port": 80}, "bluegreen:listen_port = 80 is invalid: the local target needs unprivileged ports"),
    ],
)
def test_port_plan_refuses_clashes(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        PortPlan.from_config(config(**raw))
    assert message in str(info.value)


def test_rendered_config_passes_haproxy_check(tmp_path: Path) -> None:
    state = StateDir(tmp_path, "unit")
    state.ensure()
    haproxy = Haproxy(state, PortPlan.from_config(config()), "/healthz")
    haproxy._write_map(Routing("blue"))
    text = haproxy.render()
    for required in ("option idle-close-on-response", "bind 127.0.0.1:20000", "bind 127.0.0.1:20010", "mode 600"):
        assert required in text
    # Retries of what a stopping app process reset, for idempotent methods only, in every backend.
    assert "retry-on conn-failure empty-response" in text
    assert text.count("http-request disable-l7-retry unless { method GET HEAD OPTIONS TRACE PUT DELETE }") == 3
    assert "bind *" not in text and "0.0.0.0" not in text
    path = tmp_path / "h.cfg"
    path.write_text(text)
    result = subprocess.run([find_haproxy(), "-c", "-f", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("status", "check", "health"),
    [
        ("UP", "L7OK", "UP"),
        ("UP", "* L7OK", "UP"),  # a check in progress, the last one passed (was read as CHECKING)
        ("UP", "INI", "CHECKING"),  # started UP, not checked yet
        ("UP", "* INI", "CHECKING"),
        ("DOWN", "L7STS", "DOWN"),
        ("DOWN", "* L7STS", "DOWN"),
    ],
)
def test_health_reads_a_check_in_progress_by_its_last_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: str, check: str, health: str
) -> None:
    haproxy = Haproxy(StateDir(tmp_path, "unit"), PortPlan.from_config(config()), "/healthz")
    row = ServerStat("be_blue", "app", status, check, 1, 0, 0, 0, 0)
    monkeypatch.setattr(haproxy, "stats", lambda: [row])
    assert haproxy.health("blue") == health


def test_every_backend_names_the_colour_that_served(tmp_path: Path) -> None:
    text = Haproxy(StateDir(tmp_path, "unit"), PortPlan.from_config(config()), "/healthz").render()
    assert f"http-response set-header {SERVED_BY_HEADER} blue" in text
    assert f"http-response set-header {SERVED_BY_HEADER} green" in text
    assert f"http-response set-header {SERVED_BY_HEADER} %[srv_name]" in text  # be_split: servers are colours


def test_routing_round_trips_through_the_map() -> None:
    for routing in (Routing("blue"), Routing("green"), Routing("green", 10), Routing("blue", 50)):
        assert Routing.from_map(routing.map_entries()) == routing
    assert Routing("green", 10).map_entries()["prod"] == "be_split"
    assert Routing.from_map({"prod": "be_blue", "preview": "be_blue"}) is None
    assert Routing.from_map({"prod": "be_nope", "preview": "be_green"}) is None


def test_log_lines_parse_with_colour() -> None:
    line = LOG_FORMAT.replace("%f", "prod").replace("%b", "be_split").replace("%s", "green")
    line = line.replace("%ST", "503").replace("%Tr", "-1").replace("%Tt", "12").replace("%Ta", "11").replace("%B", "9")
    line = line.replace("%[date(0,ms)]", "1700000000123")
    record = parse_log_line(line.encode())
    assert record is not None and record.color == "green" and record.status == 503 and record.tr_ms == -1
    assert record.tt_ms == 12 and record.at_ms == 1700000000123
    assert parse_log_line("something else") is None
    # HAProxy's own messages share the ring and may quote what a server said: never a request.
    assert parse_log_line(b"Server be_green/app is DOWN, reason: Layer7 wrong status, info: " + line.encode()) is None


def test_faults_from_environment() -> None:
    faults = Faults.from_env({"FAULT_ERROR_RATE": "1", "FAULT_FAIL_READINESS": "true"})
    assert faults.should_fail_request() and faults.readiness_broken()
    later = Faults.from_env({"FAULT_ERROR_RATE": "1", "FAULT_AFTER_S": "3600"})
    assert not later.should_fail_request()
    with pytest.raises(FaultSettingsError, match=r"FAULT_ERROR_RATE='2': expected a number in \[0, 1\]"):
        Faults.from_env({"FAULT_ERROR_RATE": "2"})


def test_app_headers_faults_and_readiness_without_database() -> None:
    app = create_app(
        "postgresql://nobody:x@127.0.0.1:1/none", "2.1.0", "green", Faults(error_rate=1.0, fail_readiness=False)
    )
    client = app.test_client()
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.headers["X-App-Color"] == "green" and health.headers["X-App-Version"] == "2.1.0"
    broken = client.get("/")
    assert broken.status_code == 500 and broken.headers["X-App-Color"] == "green"
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "database unreachable" in ready.get_json()["reason"]


def test_versions_differ_in_what_an_order_is() -> None:
    assert release_line("1.4.2") == "v1" and release_line("2.0.0") == "v2" and release_line("10.1") == "v2"
    assert parse_order({"item": "a", "quantity": 2, "total": "3.5"}, "v2")["total"].as_tuple().exponent == -2
    with pytest.raises(ValueError, match="total_cents"):
        parse_order({"item": "a", "total": "3.5"}, "v1")


def test_proc_net_addresses_read_as_the_kernel_prints_them() -> None:
    """/proc/net/* prints each 32-bit word of an address in host order (little-endian here)."""
    assert _address("0100007F") == "127.0.0.1"
    assert _address("00000000") == "0.0.0.0"
    assert _address("00000000000000000000000001000000") == "::1"
