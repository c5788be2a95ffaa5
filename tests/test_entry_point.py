"""The `bluegreen` command that `make setup` installs: declared by the packaging, and the same program."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_packaging_declares_the_command() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"bluegreen": "scripts.__main__:main"}


def test_the_installed_command_runs_the_program_from_anywhere(tmp_path: Path) -> None:
    command = Path(sys.prefix) / "bin" / "bluegreen"
    if not command.exists():
        pytest.fail(f"{command} is missing: `make setup` installs it (pip install --no-deps -e .)")
    done = subprocess.run([str(command), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "usage: bluegreen" in done.stdout and "deploy" in done.stdout
    refused = subprocess.run(
        [str(command), "status", "--stack", "../x"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2 and "is not a stack name" in refused.stderr
