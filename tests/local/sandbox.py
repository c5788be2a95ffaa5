"""Throwaway local stacks for end-to-end tests and benchmarks, each under its own project root.

The root holds a symlink to the repository's ``examples/`` (the orders service) plus a
``Pulumi.<stack>.yaml`` with ports picked free at runtime, so tests never collide with
a developer's dev stack or with other test runs. The directory is made under /tmp
with mode 711 so that the ``postgres`` user can reach its data directory when the
tests run as root (pytest's own tmp root is 700). Every environment is taken down in
a finalizer.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from components.config import StackConfig
from components.local.runtime import LocalEnvironment

REPO = Path(__file__).resolve().parents[2]


# The example service exactly as the dev stack names it.
SERVICE_KEYS = ("app_command", "migrations_dir", "smoke_file", "health_path", "ready_path")
_DEV = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())["config"]
EXAMPLE_SERVICE: dict[str, Any] = {key: _DEV[f"bluegreen:{key}"] for key in SERVICE_KEYS}


def free_ports(count: int, consecutive: int = 1) -> list[int]:
    """Distinct free TCP ports; the first ``consecutive`` are adjacent (app_port and app_port + 1)."""
    while True:
        held: list[socket.socket] = []
        try:
            ports: list[int] = []
            first = socket.socket()
            first.bind(("127.0.0.1", 0))
            held.append(first)
            base = first.getsockname()[1]
            ports.append(base)
            for offset in range(1, consecutive):
                sock = socket.socket()
                sock.bind(("127.0.0.1", base + offset))
                held.append(sock)
                ports.append(base + offset)
            while len(ports) < count:
                sock = socket.socket()
                sock.bind(("127.0.0.1", 0))
                held.append(sock)
                ports.append(sock.getsockname()[1])
            return ports
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid``, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


class LocalProject:
    """A throwaway project root with one local stack file."""

    def __init__(self, root: Path, stack: str) -> None:
        self.root = root
        self.stack = stack
        self.environments: list[LocalEnvironment] = []
        app_port, _green, listen, preview = free_ports(4, consecutive=2)
        self.values: dict[str, Any] = {
            "cloud": "local",
            "live_color": "blue",
            "blue_version": "1.0.0",
            "green_version": "1.0.0",
            "capacity": 1,
            "idle_capacity": 1,
            "app_port": app_port,
            "listen_port": listen,
            "preview_port": preview,
            "preview_cidrs": ["127.0.0.1/32"],
            **EXAMPLE_SERVICE,
            "local": {"app_workers": 1, "app_threads": 4},
        }
        self.initial = dict(self.values)
        self.write()

    def write(self, **changes: Any) -> StackConfig:
        self.values.update(changes)
        doc = {"config": {f"bluegreen:{k}": v for k, v in self.values.items()}}
        (self.root / f"Pulumi.{self.stack}.yaml").write_text(yaml.safe_dump(doc))
        return self.config()

    def config(self) -> StackConfig:
        return StackConfig.from_stack_file(self.stack, self.root)

    def initial_config(self) -> StackConfig:
        """The stack as first written: valid even after a test wrote a bad config."""
        return StackConfig.parse(self.initial, self.stack)

    def environment(self, config: StackConfig | None = None) -> LocalEnvironment:
        env = LocalEnvironment(config or self.config(), self.root)
        self.environments.append(env)
        return env

    def cli_args(self) -> list[str]:
        return ["--stack", self.stack, "--project-dir", str(self.root)]


# What a whole Pulumi project of this repository is, for tests that run the real engine.
PROGRAM_FILES = ("Pulumi.yaml", "__main__.py", "components", "policies", "scripts", "venv")


@contextlib.contextmanager
def scratch_project(stack: str = "t", pulumi_project: bool = False) -> Iterator[LocalProject]:
    """A project root under /tmp (mode 711) linking the repository's example service.

    ``pulumi_project`` links the program too (Pulumi.yaml, __main__.py, components, the
    policy pack, the pipeline, the virtualenv), so the real CLI can run the stack there.
    """
    root = Path(tempfile.mkdtemp(prefix="bg-"))
    root.chmod(0o711)
    for name in ("examples", *(PROGRAM_FILES if pulumi_project else ())):
        os.symlink(REPO / name, root / name)
    project = LocalProject(root, stack)
    try:
        yield project
    finally:
        try:
            for env in project.environments:
                env.down()
            LocalEnvironment(project.initial_config(), root).down()
        finally:
            shutil.rmtree(root, ignore_errors=True)
