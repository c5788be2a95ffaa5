"""A changed listen_port that another program holds is a failure, never "applied".

HAProxy's master-worker reload keeps the old worker serving when the new config cannot
bind, and says so nowhere we read; ``up`` used to report the new port as live.
"""

from __future__ import annotations

import os
import socket

import httpx
import pytest

from components.local import runtime
from components.local.runtime import EnvironmentProblemError
from scripts.__main__ import main
from tests.local.sandbox import LocalProject, free_ports

pytestmark = pytest.mark.e2e


def squat(port: int) -> socket.socket:
    """Another program listening on 127.0.0.1:port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def test_busy_new_listen_port_fails_and_is_not_claimed(
    local_project: LocalProject, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["up", *local_project.cli_args()]) == 0
    old = local_project.values["listen_port"]
    (new,) = free_ports(1)
    capsys.readouterr()
    with squat(new):
        local_project.write(listen_port=new)
        assert main(["up", *local_project.cli_args()]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert f"listen_port {new}" in err and f"pid {os.getpid()}" in err, err

        env = local_project.environment()
        status = env.status()
        assert status["live_url"] == f"http://127.0.0.1:{old}", "the stack still says where it really serves"
        assert f"127.0.0.1:{new}" not in env.haproxy.config_file.read_text()
        assert httpx.get(f"http://127.0.0.1:{old}/healthz").status_code == 200

    assert main(["up", *local_project.cli_args()]) == 0, "once the port is free, the change applies"
    assert httpx.get(f"http://127.0.0.1:{new}/healthz").status_code == 200
    assert local_project.environment().status()["live_url"] == f"http://127.0.0.1:{new}"


def test_a_reload_that_cannot_bind_is_caught_even_past_the_preflight(
    local_project: LocalProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the port be taken between the check and the reload, the reload itself is verified."""
    env = local_project.environment()
    env.up()
    old = env.ports.listen
    (new,) = free_ports(1)
    with squat(new):
        monkeypatch.setattr(runtime, "port_in_use", lambda _port: False)  # the preflight sees it free
        monkeypatch.setattr(runtime.Haproxy, "port_free", staticmethod(lambda _port: True))
        with pytest.raises(EnvironmentProblemError, match=rf"listen_port {new}.*pid {os.getpid()}"):
            env.apply(local_project.write(listen_port=new))
    monkeypatch.undo()
    again = local_project.environment(local_project.initial_config())
    assert again.status()["live_url"] == f"http://127.0.0.1:{old}"
    assert f"127.0.0.1:{new}" not in again.haproxy.config_file.read_text()
    assert httpx.get(f"http://127.0.0.1:{old}/healthz").status_code == 200
    assert again.apply()["haproxy"] == "unchanged", "HAProxy and its file agree on the old config"
    assert again.apply(local_project.write(listen_port=new))["haproxy"] == "reloaded", "and it reloads again"
    assert httpx.get(f"http://127.0.0.1:{new}/healthz").status_code == 200
