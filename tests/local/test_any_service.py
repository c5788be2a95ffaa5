"""A service the tool knows nothing of: app_command as a shell line, probes and migrations from config."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from components.config import ConfigError, StackConfig, split_command
from components.local.runtime import LocalTargetError, SwitchRefusedError
from tests.local.sandbox import EXAMPLE_SERVICE, LocalProject, children

APP = EXAMPLE_SERVICE["app_command"]


def test_split_command_reads_leading_assignments_and_shell_quoting() -> None:
    assert split_command("PYTHONPATH=/srv/a B='x y' gunicorn -b 127.0.0.1:1 'app:make()'") == (
        {"PYTHONPATH": "/srv/a", "B": "x y"},
        ["gunicorn", "-b", "127.0.0.1:1", "app:make()"],
    )
    assert split_command("uvicorn --port 1 app:app A=b") == ({}, ["uvicorn", "--port", "1", "app:app", "A=b"])


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("A=1 B={port}", "names no program"),
        ("gunicorn -b '127.0.0.1:{port}", "must read as a shell line (No closing quotation)"),
    ],
)
def test_an_unreadable_app_command_is_a_config_error(command: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        StackConfig.parse({"cloud": "local", "app_command": command}, "dev")


@pytest.mark.e2e
def test_assignments_in_app_command_reach_the_app(local_project: LocalProject) -> None:
    # The runtime sets APP_WORKERS from local.app_workers (1 here); the command's own word wins.
    env = local_project.environment(local_project.write(app_command=f"APP_WORKERS=3 {APP}"))
    env.up()
    record = env.apps["blue"].record()
    assert record is not None and len(children(record.pid)) == 3


@pytest.mark.e2e
def test_a_start_that_fails_shows_the_cause_not_only_the_tail(local_project: LocalProject) -> None:
    noisy = (
        "{python} -c \"print('Error: SECRET_KEY is not set'); "
        "[print('traceback noise', i) for i in range(40)]; raise SystemExit(3)\" --port {port}"
    )
    env = local_project.environment(local_project.write(app_command=noisy))
    with pytest.raises(LocalTargetError) as failed:
        env.up()
    message = str(failed.value)
    assert "exited during start-up" in message
    assert "Error: SECRET_KEY is not set" in message
    assert "traceback noise 39" in message  # and the end of what it printed


@pytest.mark.e2e
def test_a_service_with_its_own_probe_paths_comes_up_and_switches(local_project: LocalProject) -> None:
    """Python's own http.server knows nothing of this project: no /healthz, no /readyz, no colour header."""
    site = local_project.root / "site"
    site.mkdir()
    (site / "index.html").write_text("hello\n")
    (site / "ready").write_text("ok\n")
    config = local_project.write(
        app_command=f"{{python}} -m http.server --bind 127.0.0.1 --directory {site} {{port}}",
        health_path="/",
        ready_path="/ready",
        startup_timeout_s=20,
    )
    env = local_project.environment(config)
    env.up()
    assert httpx.get(env.live_url).text == "hello\n"
    env.switch("green")  # readiness asked at /ready, HAProxy's check at /
    assert env.status()["live_color"] == "green"

    (site / "ready").unlink()
    with pytest.raises(SwitchRefusedError, match="/ready answered 404"):
        env.switch("blue")
    assert env.status()["live_color"] == "green"


@pytest.mark.e2e
def test_migrations_dir_empty_applies_nothing(local_project: LocalProject) -> None:
    env = local_project.environment(local_project.write(migrations_dir="", ready_path="/healthz"))
    actions = env.up()
    assert actions["migrations"] == []
    with psycopg.connect(env.database_url()) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == set(), "no migration ran, not even the runner's own history table"
