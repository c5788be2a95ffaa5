"""Cloud stacks through the Pulumi Automation API: ``set_config`` then ``up``, undone on failure.

A failed ``up`` must not leave the stack config saying something the infrastructure
does not do, so the previous values are put back (or removed, if they were unset) and
the stack is brought back in line with them before the error is raised.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from components.config import NAMESPACE, StackConfig
from scripts.metrics import ColorHealth, HealthSource, MetricsSource, MetricsSourceError, metrics_source_for
from scripts.targets import Progress, SharedDatabase, TargetError

STDERR_SHOWN = 1500
DATABASE_URL_ENV = "BLUEGREEN_DATABASE_URL"


def config_text(value: Any) -> str:
    """Config values as the CLI stores them: ``true``/``false`` for booleans, JSON-free text otherwise."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class PulumiStackTarget:
    """A stack of this project driven by the Pulumi CLI via ``pulumi.automation``."""

    def __init__(
        self,
        stack: str,
        project_dir: Path | str = ".",
        pulumi_command: auto.PulumiCommand | None = None,
        env_vars: Mapping[str, str] | None = None,
        **metrics_options: Any,
    ) -> None:
        self.stack = stack
        self.project_dir = Path(project_dir).resolve()
        self.metrics_options = metrics_options
        options = auto.LocalWorkspaceOptions(pulumi_command=pulumi_command, env_vars=dict(env_vars or {}))
        try:
            self._stack = auto.select_stack(stack, work_dir=str(self.project_dir), opts=options)
        except FileNotFoundError:
            raise TargetError(
                f"stack {stack!r} is a cloud stack and needs the Pulumi CLI, which is not installed here "
                "(https://www.pulumi.com/docs/install/); the local target needs none"
            ) from None
        except auto.CommandError as exc:
            raise TargetError(f"cannot select stack {stack!r}: {str(exc)[-STDERR_SHOWN:]}") from exc

    def _raw_config(self) -> dict[str, auto.ConfigValue]:
        prefix = f"{NAMESPACE}:"
        return {k[len(prefix) :]: v for k, v in self._stack.get_all_config().items() if k.startswith(prefix)}

    def config(self) -> StackConfig:
        return StackConfig.parse({k: v.value for k, v in self._raw_config().items()}, self.stack)

    def apply(self, changes: Mapping[str, Any], progress: Progress | None = None) -> Mapping[str, Any]:
        before = self._raw_config()
        # Validate the whole resulting config first: a bad value changes nothing.
        self.config().with_changes(**changes)
        say = progress or (lambda _line: None)
        self._stack.set_all_config({f"{NAMESPACE}:{k}": auto.ConfigValue(config_text(v)) for k, v in changes.items()})
        say("pulumi up: " + ", ".join(f"{k}={config_text(v)}" for k, v in changes.items()))
        try:
            result = self._stack.up(on_output=lambda line: say(line.rstrip()))
        except auto.CommandError as exc:
            self._restore(before, changes)
            recovered = self._reconverge(say)
            raise TargetError(
                f"pulumi up failed while setting {', '.join(sorted(changes))}; previous config restored "
                f"({'stack re-applied with it' if recovered else 're-applying it failed too: run pulumi up'}):\n"
                f"{str(exc)[-STDERR_SHOWN:]}"
            ) from exc
        return {k: v.value for k, v in result.outputs.items()}

    def _restore(self, before: Mapping[str, auto.ConfigValue], changes: Mapping[str, Any]) -> None:
        restore = {f"{NAMESPACE}:{k}": before[k] for k in changes if k in before}
        if restore:
            self._stack.set_all_config(restore)
        for key in changes:
            if key not in before:
                self._stack.remove_config(f"{NAMESPACE}:{key}")

    def _reconverge(self, say: Progress) -> bool:
        say("pulumi up: re-applying the restored config")
        try:
            self._stack.up(on_output=lambda line: say(line.rstrip()))
        except auto.CommandError:
            return False
        return True

    def migrate(self, progress: Progress) -> str:
        """Cloud databases are private: migrations run where ``BLUEGREEN_DATABASE_URL`` reaches one."""
        url = os.environ.get(DATABASE_URL_ENV)
        if not url:
            return f"migrations not run: set {DATABASE_URL_ENV} to reach the stack's database from here"
        from scripts.migrate import apply_migrations

        config = self.config()
        report = apply_migrations(
            url, config.blue_version, config.green_version, self.project_dir / "migrations", progress
        )
        return "migrations: " + report.summary()

    def outputs(self) -> Mapping[str, Any]:
        return {k: v.value for k, v in self._stack.outputs().items()}

    def metrics(self) -> MetricsSource:
        metrics = self.outputs().get("metrics")
        if not isinstance(metrics, Mapping):
            raise MetricsSourceError(f"stack {self.stack!r} exports no 'metrics' object; run pulumi up first")
        return metrics_source_for(metrics, **self.metrics_options)

    def health(self, color: str) -> ColorHealth:
        source = self.metrics()
        if not hasattr(source, "health"):
            raise MetricsSourceError(f"metrics source {type(source).__name__} cannot report target health")
        checker: HealthSource = source  # type: ignore[assignment]
        return checker.health(color)

    def shared_database(self, live: str) -> SharedDatabase | None:
        """Cloud databases are private: reachable only where ``BLUEGREEN_DATABASE_URL`` points at one."""
        url = os.environ.get(DATABASE_URL_ENV)
        if not url:
            return None
        config = self.config()
        return SharedDatabase(url, None, {"APP_VERSION": config.version_of(live), "APP_COLOR": live})
