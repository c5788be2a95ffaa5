"""The language host launcher (tools/language_host) on programs that are not this project's.

A stack with no config at all, and a program that reads its own stack's last outputs
through a stack reference (which a target can use to judge a change against what is
deployed), both through the real CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.engine import engine_env, pulumi_executable

pytestmark = pytest.mark.e2e

PROGRAM = """
import pulumi

me = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
previous = pulumi.StackReference("self", me).outputs
pulumi.export("previous_runs", previous.apply(lambda outputs: outputs.get("runs", 0)))
pulumi.export("runs", previous.apply(lambda outputs: outputs.get("runs", 0) + 1))
"""


@pytest.fixture
def project() -> Iterator[Path]:
    pulumi_executable()
    with tempfile.TemporaryDirectory(prefix="bg-host-") as tmp:
        root = Path(tmp)
        (root / "Pulumi.yaml").write_text(
            "name: hosttest\nruntime:\n  name: python\n  options:\n    toolchain: pip\n"
            f"    virtualenv: {Path(sys.executable).parent.parent}\n"
        )
        (root / "__main__.py").write_text(PROGRAM)
        yield root


def pulumi(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(pulumi_executable()), *args],
        cwd=root,
        env=engine_env(root),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_stack_without_config_runs_and_reads_its_own_last_outputs(project: Path) -> None:
    assert pulumi(project, "stack", "init", "s").returncode == 0
    for _ in range(2):
        done = pulumi(project, "up", "--yes", "--skip-preview", "--non-interactive", "-s", "s")
        assert done.returncode == 0, done.stdout + done.stderr
    outputs = json.loads(pulumi(project, "stack", "output", "--json", "-s", "s").stdout)
    assert outputs == {"previous_runs": 1, "runs": 2}
