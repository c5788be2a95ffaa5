"""``up`` from nothing, ``status``, ``down``: real HAProxy, PostgreSQL and gunicorn on 127.0.0.1."""

from __future__ import annotations

import json

import httpx
import pytest

from components.local.processes import is_zombie, port_in_use
from scripts.__main__ import main
from tests.local.sandbox import LocalProject

pytestmark = pytest.mark.e2e


def test_up_status_down_through_the_cli(local_project: LocalProject, capsys: pytest.CaptureFixture[str]) -> None:
    local_project.write(green_version="2.0.0")
    assert main(["up", *local_project.cli_args()]) == 0
    capsys.readouterr()

    assert main(["status", *local_project.cli_args(), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["live_color"] == "blue" and status["idle_color"] == "green"
    for color, version in (("blue", "1.0.0"), ("green", "2.0.0")):
        info = status["colors"][color]
        assert info["running"] and info["health"] == "UP" and info["version"] == version
    assert status["colors"]["blue"]["role"] == "live" and status["colors"]["green"]["role"] == "idle"

    live = httpx.get(status["live_url"] + "/")
    preview = httpx.get(status["preview_url"] + "/")
    assert live.headers["X-App-Color"] == "blue" and live.headers["X-App-Version"] == "1.0.0"
    assert preview.headers["X-App-Color"] == "green" and preview.headers["X-App-Version"] == "2.0.0"

    pids = [status["colors"][c]["pid"] for c in ("blue", "green")] + [status["haproxy"]["pid"]]
    ports = [local_project.values[k] for k in ("listen_port", "preview_port", "app_port")]
    ports += [local_project.values["app_port"] + 1, status["postgres"]["port"]]

    assert main(["status", *local_project.cli_args()]) == 0
    table = capsys.readouterr().out
    assert "live: blue" in table and "UP" in table

    assert main(["down", *local_project.cli_args()]) == 0
    assert [pid for pid in pids if not is_zombie(pid)] == []
    assert [p for p in ports if port_in_use(p)] == []

    assert main(["status", *local_project.cli_args(), "--json"]) == 0
    down = json.loads(capsys.readouterr().out)
    assert down["live_color"] is None and not down["haproxy"]["running"] and not down["postgres"]["running"]


def test_up_twice_changes_nothing(local_project: LocalProject) -> None:
    env = local_project.environment()
    env.up()
    pids = {c: env.status()["colors"][c]["pid"] for c in ("blue", "green")}
    again = env.up()
    assert again["blue"] == "unchanged 1.0.0" and again["green"] == "unchanged 1.0.0"
    assert again["haproxy"] == "unchanged" and again["route"] == "unchanged" and again["migrations"] == []
    assert {c: env.status()["colors"][c]["pid"] for c in ("blue", "green")} == pids
