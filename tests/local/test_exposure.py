"""What a local stack exposes: the preview route only to ``preview_cidrs``, no socket beyond
127.0.0.1, no database password on a command line."""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
import pytest

from components.local.runtime import LocalEnvironment
from components.local.sockets import process_tree, sockets_of
from scripts import rehearsal
from scripts.__main__ import main
from tests.local.sandbox import LocalProject
from tests.pipeline.test_e2e_local import fast_smoke_file

pytestmark = pytest.mark.e2e


def test_preview_cidrs_are_enforced_by_haproxy(local_project: LocalProject) -> None:
    """A source outside preview_cidrs gets 403 on the preview port; prod answers everyone."""
    env = local_project.environment(local_project.write(preview_cidrs=["10.0.0.0/8"]))
    env.up()
    refused = httpx.get(env.preview_url + "/healthz")
    assert refused.status_code == 403, "127.0.0.1 is outside 10.0.0.0/8"
    assert "X-App-Color" not in refused.headers, "the request never reached a colour"
    assert httpx.get(env.live_url + "/healthz").status_code == 200

    env.apply(local_project.write(preview_cidrs=["10.0.0.0/8", "127.0.0.0/8"]))
    assert httpx.get(env.preview_url + "/healthz").headers["X-App-Color"] == "green"


def test_the_local_default_lets_smoke_reach_preview(local_project: LocalProject) -> None:
    """A local stack that does not set preview_cidrs admits 127.0.0.1 (and only it) to preview."""
    del local_project.values["preview_cidrs"]
    config = local_project.write()
    assert config.preview_cidrs == ("127.0.0.1/32",)
    env = local_project.environment(config)
    env.up()
    haproxy_cfg = env.haproxy.config_file.read_text()
    assert "src 127.0.0.1/32" in haproxy_cfg
    assert main(["smoke", *local_project.cli_args(), "--file", str(fast_smoke_file(local_project.root))]) == 0


def test_nothing_of_the_stack_binds_beyond_loopback(running_env: LocalEnvironment) -> None:
    """HAProxy (master and workers), both colours and PostgreSQL hold internet sockets on 127.0.0.1 only."""
    env = running_env
    for _ in range(5):  # traffic, so HAProxy has logged (and opened whatever it logs through)
        assert httpx.get(env.live_url + "/").status_code == 200
    records = {
        "haproxy": env.haproxy.record(),
        "postgres": env.postgres.record(),
        **{color: env.apps[color].record() for color in ("blue", "green")},
    }
    seen = 0
    for part, record in records.items():
        assert record is not None, f"{part} runs"
        sockets = sockets_of(process_tree(record.pid))
        beyond = [s.describe() for s in sockets if s.address != "127.0.0.1"]
        assert not beyond, f"{part} binds beyond 127.0.0.1: {beyond}"
        seen += len(sockets)
    haproxy_sockets = sockets_of(process_tree(records["haproxy"].pid))  # type: ignore[union-attr]
    assert not [s for s in haproxy_sockets if s.protocol.startswith("udp")], "HAProxy holds no UDP socket"
    assert {env.ports.listen, env.ports.preview} <= {s.port for s in haproxy_sockets if s.listening}
    assert seen > 0


def _recording_wrapper(directory: Path, tool: str, log: Path) -> Path:
    """A stand-in for ``tool`` that appends the command line it was given, then runs the real one."""
    real = rehearsal._pg_tool(tool)
    wrapper = directory / tool
    wrapper.write_text(f'#!/bin/sh\ntr "\\0" " " < /proc/$$/cmdline >> {log}\necho >> {log}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def test_rehearsal_keeps_the_database_password_off_command_lines(
    running_env: LocalEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pg_dump and psql get the password in their environment: /proc/<pid>/cmdline is world-readable."""
    env = running_env
    log = tmp_path / "argv.log"
    wrappers = {tool: _recording_wrapper(tmp_path, tool, log) for tool in ("pg_dump", "psql")}
    monkeypatch.setattr(rehearsal, "_pg_tool", lambda name: str(wrappers[name]))
    monkeypatch.delenv("PGPASSWORD", raising=False)
    secrets = {env.postgres.settings().password, env.state.secret("postgres_admin_password")}

    copy = rehearsal.copy_of(env.database_url(), env.postgres.admin_url(), env.config.db.username, print)
    with copy as scratch, psycopg.connect(scratch) as conn:  # the copy worked: the password got there
        assert conn.execute("SELECT to_regclass('orders') IS NOT NULL").fetchone() == (True,)

    command_lines = log.read_text().splitlines()
    assert len(command_lines) == 2 and "pg_dump" in command_lines[0] and "psql" in command_lines[1]
    for line in command_lines:
        assert not [s for s in secrets if s in line], f"a password is on the command line: {line}"
