"""Restarts keep the live colour and the data; bad input exits 2 and leaves nothing running."""

from __future__ import annotations

import os
import signal
import socket

import httpx
import pytest

from components.local import haproxy as haproxy_module
from components.local import postgres as postgres_module
from components.local.processes import port_in_use
from components.local.runtime import LocalEnvironment
from scripts.__main__ import main
from tests.local.sandbox import LocalProject

pytestmark = pytest.mark.e2e


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(c) for c in handle.read().split()]


def test_killed_haproxy_comes_back_with_the_live_colour_from_the_map_file(running_env: LocalEnvironment) -> None:
    env = running_env
    env.switch("green")  # the config still says blue: only the map file knows green is live
    master = env.haproxy.record()
    assert master is not None
    for pid in [*_children(master.pid), master.pid]:
        os.kill(pid, signal.SIGKILL)
    assert master.wait_gone(10)
    with pytest.raises(httpx.ConnectError):
        httpx.get(env.live_url)

    assert env.ensure_load_balancer() == "started"
    assert env.status()["live_color"] == "green"
    assert httpx.get(env.live_url).headers["X-App-Color"] == "green"
    assert httpx.get(env.preview_url).headers["X-App-Color"] == "blue"


def test_restarting_everything_keeps_database_data(local_project: LocalProject) -> None:
    env = local_project.environment()
    env.up()
    created = httpx.post(f"{env.live_url}/orders", json={"item": "kept", "quantity": 3, "total_cents": 999})
    assert created.status_code == 201
    order_id = created.json()["id"]
    pg_port = env.postgres.port
    assert set(env.down()) == {"blue app", "green app", "haproxy", "postgres"}
    assert not port_in_use(pg_port)

    again = local_project.environment()
    again.up()
    assert again.postgres.port == pg_port
    fetched = httpx.get(f"{again.live_url}/orders/{order_id}")
    assert fetched.status_code == 200 and fetched.json()["item"] == "kept" and fetched.json()["total_cents"] == 999


def _nothing_running(project: LocalProject) -> None:
    env = LocalEnvironment(project.initial_config(), project.root)
    status = env.status()
    assert not status["haproxy"]["running"] and not status["postgres"]["running"]
    assert not any(info["running"] for info in status["colors"].values())


def test_port_clash_in_config_is_exit_2(local_project: LocalProject, capsys: pytest.CaptureFixture[str]) -> None:
    local_project.write(listen_port=local_project.values["app_port"] + 1)
    assert main(["up", *local_project.cli_args()]) == 2
    err = capsys.readouterr().err
    assert "port clash" in err and "listen_port" in err
    _nothing_running(local_project)


def test_port_in_use_by_another_program_is_exit_2(
    local_project: LocalProject, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", local_project.values["preview_port"]))
        squatter.listen()
        assert main(["up", *local_project.cli_args()]) == 2
    err = capsys.readouterr().err
    assert f"preview_port {local_project.values['preview_port']}" in err and "already in use" in err
    _nothing_running(local_project)


@pytest.mark.parametrize(
    ("module", "attribute", "package"),
    [(haproxy_module, "HAPROXY_CANDIDATES", "haproxy"), (postgres_module, "PG_BIN_DIRS", "postgresql")],
)
def test_missing_binary_names_the_debian_package(
    local_project: LocalProject,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: object,
    module: object,
    attribute: str,
    package: str,
) -> None:
    monkeypatch.setattr(module, attribute, type(getattr(module, attribute))())
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["up", *local_project.cli_args()]) == 2
    err = capsys.readouterr().err
    assert f"apt-get install {package}" in err
    _nothing_running(local_project)


def test_bad_local_settings_are_exit_2(local_project: LocalProject, capsys: pytest.CaptureFixture[str]) -> None:
    local_project.write(local={"faults": {"2.1.0": {"error_rate": 3}}})
    assert main(["up", *local_project.cli_args()]) == 2
    assert "bluegreen:local.faults.2.1.0.error_rate = 3 is invalid: a number 0-1" in capsys.readouterr().err
    _nothing_running(local_project)


def test_app_that_cannot_start_leaves_nothing_running(
    local_project: LocalProject, capsys: pytest.CaptureFixture[str]
) -> None:
    local_project.write(app_command="{python} -c 'import sys; sys.exit(3)' {port}")
    assert main(["up", *local_project.cli_args()]) == 1
    err = capsys.readouterr().err
    assert "exited during start-up" in err and "stopped what this run had started" in err
    _nothing_running(local_project)
