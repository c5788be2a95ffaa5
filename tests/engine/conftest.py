"""Local stacks run by the real Pulumi CLI (``make pulumi``), each in a throwaway project.

Every command goes through the CLI with the project's engine environment
(:func:`scripts.engine.engine_env`): a file backend and passphrase under the project's
``.bluegreen/``, no plugin downloads. Without a CLI these tests fail, they do not
skip: ``make test`` builds it first, and CI must run them.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scripts.engine import engine_env, pulumi_executable
from tests.local.sandbox import LocalProject, scratch_project

COMMAND_TIMEOUT_S = 300


@dataclass
class Cli:
    """``pulumi ARGS -s STACK`` in one project, with the engine environment."""

    project: LocalProject

    @property
    def root(self) -> Path:
        return self.project.root

    def run(self, *args: str, check: bool = True, stack: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(pulumi_executable()), *args, *(["--stack", self.project.stack] if stack else [])]
        done = subprocess.run(
            argv,
            cwd=self.root,
            env=engine_env(self.root),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"pulumi {' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def up(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run("up", "--yes", "--skip-preview", "--non-interactive", *extra)

    def preview_steps(self, *extra: str) -> list[tuple[str, str]]:
        """``(op, resource name)`` of every step that is not ``same``."""
        out = self.run("preview", "--json", "--non-interactive", *extra).stdout
        return [(s["op"], s["urn"].split("::")[-1]) for s in json.loads(out).get("steps", []) if s["op"] != "same"]

    def set(self, key: str, value: str) -> None:
        self.run("config", "set", f"bluegreen:{key}", value)

    def outputs(self) -> dict[str, Any]:
        return json.loads(self.run("stack", "output", "--json").stdout)

    def state(self) -> dict[str, Any]:
        return json.loads(self.run("stack", "export").stdout)


@pytest.fixture
def engine_project() -> Iterator[LocalProject]:
    pulumi_executable()  # fails here, with what to run, when there is no CLI
    with scratch_project("e", pulumi_project=True) as project:
        yield project


@pytest.fixture
def new_stack(engine_project: LocalProject) -> Callable[..., Cli]:
    """``new_stack(**config)``: write the stack file, ``pulumi stack init``, return the CLI.

    Later changes go through ``Cli.set`` (``pulumi config set``): the stack file then
    holds the passphrase salt the CLI wrote.
    """

    def make(**values: Any) -> Cli:
        engine_project.write(**values)
        cli = Cli(engine_project)
        cli.run("stack", "init", engine_project.stack, stack=False)
        return cli

    return make
