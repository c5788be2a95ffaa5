"""A release interrupted part way, on a real local stack: it is recorded, and `rollback` goes back, never forward."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from scripts.__main__ import main
from scripts.load import SteadyLoad
from tests.local.sandbox import LocalProject
from tests.pipeline.test_e2e_local import REPO, fast_smoke_file, start

pytestmark = pytest.mark.e2e


def slow_failing_smoke(directory: Path) -> Path:
    """Smoke that keeps retrying a check for ~20 s, so there is time to interrupt it."""
    path = fast_smoke_file(directory)
    suite = yaml.safe_load(path.read_text())
    suite["settings"].update(attempts=40, backoff_s=0.5, max_backoff_s=0.5)
    suite["checks"].append({"name": "never true", "path": "/healthz", "expect": {"fields": {"version": "0"}}})
    path.write_text(yaml.safe_dump(suite))
    return path


def interrupted_deploy(project: LocalProject, version: str, smoke: Path, when: str) -> tuple[int, str]:
    """Run `deploy` as its own process and send it SIGINT once it prints ``when``; (exit code, output)."""
    command = [sys.executable, "-m", "scripts", "deploy", *project.cli_args(), "--version", version]
    command += ["--file", str(smoke)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    assert process.stderr is not None
    deadline = time.monotonic() + 120
    for line in process.stderr:
        seen.append(line)
        if when in line:
            break
        assert time.monotonic() < deadline, "".join(seen)
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    return process.returncode, "".join(seen) + rest


def test_rollback_after_a_deploy_interrupted_during_smoke_stays_on_the_promoted_release(
    local_project: LocalProject, capsys: pytest.CaptureFixture[str]
) -> None:
    env = start(local_project)
    code, output = interrupted_deploy(local_project, "2.1.0", slow_failing_smoke(local_project.root), "checks against")
    assert code == 130, output
    assert "Traceback" not in output and "interrupted" in output and "rollback --stack" in output
    config = local_project.config()
    assert (config.live_color, config.green_version, config.warm_idle) == ("blue", "2.1.0", True)

    args = local_project.cli_args()
    capsys.readouterr()
    assert main(["status", *args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["last_decision"]["kind"] == "interrupted"

    with SteadyLoad(env.live_url, rate=40, connections=4) as load:
        time.sleep(0.5)
        assert main(["rollback", *args, "--reason", "deploy interrupted"]) == 0
        time.sleep(1.0)
    stats = load.stats
    assert stats.failed == 0, stats.summary()
    assert {(a.color, a.version) for a in stats.answers} == {("blue", "1.0.0")}, "prod never saw the unsmoked 2.1.0"
    config = local_project.config()
    assert (config.live_color, config.warm_idle) == ("blue", False)
    assert env.status()["live_color"] == "blue"
    assert "nothing to roll back to" in capsys.readouterr().err.replace("\n", " ")


def test_a_killed_deploy_is_reported_by_status_until_a_rollback(
    local_project: LocalProject, capsys: pytest.CaptureFixture[str]
) -> None:
    start(local_project)
    command = [sys.executable, "-m", "scripts", "deploy", *local_project.cli_args(), "--version", "2.1.0"]
    smoke = slow_failing_smoke(local_project.root)
    process = subprocess.Popen([*command, "--file", str(smoke)], cwd=REPO, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    for line in process.stderr:
        if "checks against" in line:
            break
    process.kill()  # SIGKILL: nothing of ours runs
    process.wait(30)
    args = local_project.cli_args()
    capsys.readouterr()
    assert main(["status", *args]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "deploy --version 2.1.0" in out and "ended without finishing" in out and "rollback" in out
    assert main(["rollback", *args]) == 0
    assert local_project.config().live_color == "blue"
    capsys.readouterr()
    assert main(["status", *args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["interrupted"] is None
