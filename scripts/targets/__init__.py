"""Where the pipeline deploys to, behind one small interface.

A :class:`Target` applies a config change and waits for it, reads the stack outputs,
and reports each colour's health as its load balancer sees it. Cloud stacks go through
the Pulumi Automation API (:mod:`scripts.targets.pulumi_stack`); the local target
through its runtime (:mod:`scripts.targets.local`). The stack config stays the single
source of truth: every change, a switch included, is a config change plus an apply.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from components.config import ConfigError, StackConfig
from scripts.metrics import ColorHealth, LiveRoute, MetricsSource

Progress = Callable[[str], None]


class TargetError(RuntimeError):
    """Applying a change failed; the previous config was restored."""


@dataclass(frozen=True)
class SharedDatabase:
    """How the migration rehearsal reaches a stack's shared database.

    ``admin_url`` set: the rehearsal copies the database (the local target's server).
    Otherwise it rebuilds the schema from the migrations the database has applied, in a
    throwaway server. ``app_environment`` is what the live release runs with, minus
    ``DATABASE_URL``, which the rehearsal points at its scratch copy.
    """

    url: str
    admin_url: str | None
    app_environment: Mapping[str, str]


class Target(Protocol):
    stack: str
    project_dir: Path
    path: str  # how changes are applied, said at the start of every run

    def config(self) -> StackConfig:
        """The stack config as it is now."""
        ...

    def apply(
        self, changes: Mapping[str, Any], progress: Progress | None = None, urgent: bool = False
    ) -> Mapping[str, Any]:
        """Set ``bluegreen:`` keys and apply; return the new outputs, or restore and raise TargetError.

        ``urgent``: a rollback, back to what served before; a target may skip checks that
        only a new release needs (the local target's readiness check).
        """
        ...

    def outputs(self) -> Mapping[str, Any]:
        """The stack outputs contract (live/preview URLs, versions, metrics ids)."""
        ...

    def health(self, color: str) -> ColorHealth:
        """A colour's targets as the load balancer sees them."""
        ...

    def metrics(self) -> MetricsSource:
        """The metrics source named by the ``metrics`` output."""
        ...

    def live_route(self) -> LiveRoute:
        """The production route read back from the load balancer; TargetError when it cannot be read."""
        ...

    def verify_timeout_s(self) -> float:
        """How long a route change may take to show at the load balancer (its documented propagation)."""
        ...

    def migrate(self, progress: Progress) -> str:
        """Apply pending migrations the running colours allow; a one-line summary."""
        ...

    def shared_database(self, live: str) -> SharedDatabase | None:
        """The shared database as the rehearsal reaches it; None when it cannot be reached from here."""
        ...


ENGINE_ENV = "BLUEGREEN_ENGINE"  # auto (default) | pulumi | runtime: which path local stacks take


def local_path(project_dir: Path | str) -> str:
    """``pulumi`` when the CLI is here and ``project_dir`` is a Pulumi project, else ``runtime``.

    ``BLUEGREEN_ENGINE=runtime`` forces the local runtime (no CLI involved); ``pulumi``
    insists on the engine and fails when it is missing.
    """
    from scripts.engine import cli_available

    wanted = os.environ.get(ENGINE_ENV, "auto")
    if wanted not in ("auto", "pulumi", "runtime"):
        raise ConfigError(f"{ENGINE_ENV}={wanted!r} is invalid; allowed: auto, pulumi, runtime")
    is_project = (Path(project_dir) / "Pulumi.yaml").is_file()
    if wanted == "pulumi":
        if not (cli_available() and is_project):
            missing = "no Pulumi CLI is here (run `make pulumi`)" if is_project else f"no Pulumi.yaml in {project_dir}"
            raise TargetError(f"{ENGINE_ENV}=pulumi but {missing}")
        return "pulumi"
    if wanted == "runtime":
        return "runtime"
    return "pulumi" if is_project and cli_available() else "runtime"


def open_target(stack: str, project_dir: Path | str = ".", **options: Any) -> Target:
    """Every stack through the Automation API where the CLI is; local ones via the runtime otherwise."""
    config = StackConfig.from_stack_file(stack, project_dir)
    if config.cloud != "local":
        # A setting the program would refuse (a certificate without a domain) stops here: exit 2.
        from components.targets import validate_target

        validate_target(config)
    if config.cloud == "local":
        if local_path(project_dir) == "pulumi":
            from scripts.targets.local_engine import LocalEngineTarget

            return LocalEngineTarget(stack, project_dir, **options)
        from scripts.targets.local import LocalTarget

        return LocalTarget(stack, project_dir, **options)
    from scripts.targets.pulumi_stack import PulumiStackTarget

    return PulumiStackTarget(stack, project_dir, **options)
