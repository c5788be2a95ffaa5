"""Stacks through the Pulumi Automation API: ``set_config`` then ``up``, undone on failure.

A failed ``up`` must not leave the stack config saying something the infrastructure
does not do, so the previous values are put back (or removed, if they were unset) and
the stack is brought back in line with them before the error is raised. Every ``up``
and ``preview`` runs the project's policy pack (``policies/``), so releases, switches
and rollbacks pass the same guardrails as a ``pulumi up --policy-pack`` by hand.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pulumi import automation as auto

from components.config import NAMESPACE, NO_MIGRATIONS, StackConfig
from components.migration_runner import apply_migrations
from scripts.engine import engine_env, pulumi_bin_dir
from scripts.metrics import (
    DEFAULT_VERIFY_TIMEOUT_S,
    ColorHealth,
    HealthSource,
    LiveRoute,
    MetricsSource,
    MetricsSourceError,
    RouteSource,
    metrics_source_for,
    monitor_defaults,
)
from scripts.targets import Progress, SharedDatabase, TargetError

STDERR_SHOWN = 1500
DATABASE_URL_ENV = "BLUEGREEN_DATABASE_URL"
POLICY_PACK_DIR = "policies"


def config_text(value: Any) -> str:
    """A scalar as ``pulumi config set`` takes it: ``true``/``false`` for booleans, text otherwise."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def config_paths(key: str, value: Any) -> dict[str, str]:
    """A list or mapping as ``pulumi config set --path`` lines (``key[0]``, ``key.name``, ``key["2.1.0"]``).

    Structured keys must be stored structured: the CLI validates typed project keys
    (``preview_cidrs: array<string>``) and refuses a JSON string for them. An empty list
    or mapping has no path, so it is stored as its JSON text.
    """
    if isinstance(value, Mapping) and value:
        out: dict[str, str] = {}
        for name, item in value.items():
            name = str(name)
            step = f".{name}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else f"[{json.dumps(name)}]"
            out.update(config_paths(key + step, item))
        return out
    if isinstance(value, list | tuple) and value:
        out = {}
        for index, item in enumerate(value):
            out.update(config_paths(f"{key}[{index}]", item))
        return out
    if isinstance(value, list | tuple | Mapping):
        return {key: json.dumps(list(value) if isinstance(value, tuple) else value)}
    return {key: config_text(value)}


def with_cloud_monitor_defaults(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``raw`` with the cloud's own ``monitor`` defaults under the keys the stack does not set.

    Cloud metrics arrive per minute and minutes late (``monitor_defaults``: CloudWatch,
    Cloud Monitoring, Log Analytics), so the generic 60 s window and 120 s bake would judge
    windows that cannot hold data yet. Never written to the stack file.
    """
    cloud, monitor = raw.get("cloud"), raw.get("monitor")
    defaults = monitor_defaults(cloud) if isinstance(cloud, str) else {}
    if not defaults or not (monitor is None or isinstance(monitor, Mapping)):
        return dict(raw)
    return {**raw, "monitor": {**defaults, **(monitor or {})}}


def pulumi_command_default() -> auto.PulumiCommand | None:
    """The CLI ``make pulumi`` built (``.tools/pulumi/bin``), else whatever PATH has."""
    bin_dir = pulumi_bin_dir()
    return auto.PulumiCommand(root=str(bin_dir.parent)) if bin_dir is not None else None


def _config_value(raw: Any) -> auto.ConfigValue:
    """A stack-file value back as a config value (a ``secure:`` one stays encrypted text)."""
    if isinstance(raw, Mapping) and set(raw) == {"secure"}:
        raise TargetError("bluegreen: keys are not secrets; a secure value cannot be restored in plain text")
    return auto.ConfigValue(config_text(raw))


class PulumiStackTarget:
    """A stack of this project driven by the Pulumi CLI via ``pulumi.automation``."""

    path = "the Pulumi engine (Automation API)"

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
        pack = self.project_dir / POLICY_PACK_DIR
        self.policy_packs = [str(pack)] if (pack / "PulumiPolicy.yaml").is_file() else []
        env = {**engine_env(self.project_dir), **dict(env_vars or {})}
        try:
            command = pulumi_command or pulumi_command_default()
        except auto.InvalidVersionError as exc:
            raise TargetError(f"the Pulumi CLI is too old for the pulumi SDK here: {exc}") from exc
        options = auto.LocalWorkspaceOptions(pulumi_command=command, env_vars=env)
        try:
            self._stack = self._open(stack, options)
        except FileNotFoundError:
            raise TargetError(
                f"stack {stack!r} is a cloud stack and needs the Pulumi CLI, which is not installed here "
                "(https://www.pulumi.com/docs/install/); the local target needs none"
            ) from None
        except auto.CommandError as exc:
            raise TargetError(f"cannot select stack {stack!r}: {str(exc)[-STDERR_SHOWN:]}") from exc

    def _open(self, stack: str, options: auto.LocalWorkspaceOptions) -> auto.Stack:
        """Select the stack (a cloud stack must exist already)."""
        return auto.select_stack(stack, work_dir=str(self.project_dir), opts=options)

    def _raw_config(self) -> dict[str, Any]:
        """The stack's own ``bluegreen:`` values, as its stack file holds them.

        Not ``get_all_config``: that includes the project's defaults, so a restore would
        write every defaulted key into the stack file.
        """
        prefix = f"{NAMESPACE}:"
        # Read with YAML, not ``workspace.stack_settings``: the SDK drops every value that
        # is not a string there (lists, mappings, numbers written by hand).
        path = self.project_dir / f"Pulumi.{self.stack.split('/')[-1]}.yaml"
        try:
            own = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        except FileNotFoundError:
            return {}
        except yaml.YAMLError as exc:
            raise TargetError(f"{path}: not valid YAML: {exc}") from exc
        return {k[len(prefix) :]: v for k, v in own.items() if isinstance(k, str) and k.startswith(prefix)}

    def config(self) -> StackConfig:
        return StackConfig.parse(with_cloud_monitor_defaults(self._raw_config()), self.stack)

    def _up(self, say: Progress) -> auto.UpResult:
        return self._stack.up(
            on_output=lambda line: say(line.rstrip()), policy_packs=self.policy_packs or None, show_secrets=False
        )

    def preview(self, progress: Progress | None = None) -> auto.PreviewResult:
        say = progress or (lambda _line: None)
        return self._stack.preview(on_output=lambda line: say(line.rstrip()), policy_packs=self.policy_packs or None)

    def apply(
        self, changes: Mapping[str, Any], progress: Progress | None = None, urgent: bool = False
    ) -> Mapping[str, Any]:
        before = self._raw_config()
        # Validate the whole resulting config first: a bad value changes nothing.
        self.config().with_changes(**changes)
        say = progress or (lambda _line: None)
        self._set_config(changes)
        say("pulumi up: " + (", ".join(f"{k}={config_text(v)}" for k, v in changes.items()) or "no config change"))
        try:
            result = self._up(say)
        except auto.CommandError as exc:
            self._restore(before, changes)
            recovered = self._reconverge(say)
            raise TargetError(
                f"pulumi up failed while setting {', '.join(sorted(changes))}; previous config restored "
                f"({'stack re-applied with it' if recovered else 're-applying it failed too: run pulumi up'}):\n"
                f"{str(exc)[-STDERR_SHOWN:]}"
            ) from exc
        return {k: v.value for k, v in result.outputs.items()}

    def _set_config(self, changes: Mapping[str, Any]) -> None:
        scalars = {k: v for k, v in changes.items() if not isinstance(v, list | tuple | Mapping)}
        if scalars:
            self._stack.set_all_config({f"{NAMESPACE}:{k}": _config_value(v) for k, v in scalars.items()})
        current = self._raw_config() if len(scalars) < len(changes) else {}
        for key, value in changes.items():
            if key in scalars:
                continue
            # A list that shrinks would keep its old tail: replace the whole key.
            if key in current:
                self._stack.remove_config(f"{NAMESPACE}:{key}")
            paths = config_paths(f"{NAMESPACE}:{key}", value)
            self._stack.set_all_config({k: auto.ConfigValue(v) for k, v in paths.items()}, path=True)

    def _restore(self, before: Mapping[str, Any], changes: Mapping[str, Any]) -> None:
        self._set_config({k: before[k] for k in changes if k in before})
        for key in changes:
            if key not in before:
                self._stack.remove_config(f"{NAMESPACE}:{key}")

    def _reconverge(self, say: Progress) -> bool:
        say("pulumi up: re-applying the restored config")
        try:
            self._up(say)
        except auto.CommandError:
            return False
        return True

    def migrate(self, progress: Progress) -> str:
        """Cloud databases are private: migrations run where ``BLUEGREEN_DATABASE_URL`` reaches one."""
        config = self.config()
        directory = config.migrations_location(self.project_dir)
        if directory is None:
            return NO_MIGRATIONS
        url = os.environ.get(DATABASE_URL_ENV)
        if not url:
            return f"migrations not run: set {DATABASE_URL_ENV} to reach the stack's database from here"

        report = apply_migrations(url, config.blue_version, config.green_version, directory, progress)
        return "migrations: " + report.summary()

    def outputs(self) -> Mapping[str, Any]:
        return {k: v.value for k, v in self._stack.outputs().items()}

    def secret_outputs(self) -> set[str]:
        """The outputs the stack keeps as secrets (the preview header's value, the database endpoint)."""
        return {k for k, v in self._stack.outputs().items() if v.secret}

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

    def live_route(self) -> LiveRoute:
        """The listener / URL map / gateway rule read back through the cloud's API (the metrics source)."""
        source = self.metrics()
        if not hasattr(source, "live_route"):
            raise TargetError(f"{type(source).__name__} cannot read this cloud's live route back")
        reader: RouteSource = source  # type: ignore[assignment]
        try:
            return reader.live_route()
        except MetricsSourceError as exc:
            raise TargetError(f"cannot read the live route back: {exc}") from exc

    def verify_timeout_s(self) -> float:
        """The cloud's propagation time, as its metrics source states it (``verify_timeout_s``)."""
        try:
            source = self.metrics()
        except MetricsSourceError:
            return DEFAULT_VERIFY_TIMEOUT_S
        return float(getattr(source, "verify_timeout_s", DEFAULT_VERIFY_TIMEOUT_S))

    def shared_database(self, live: str) -> SharedDatabase | None:
        """Cloud databases are private: reachable only where ``BLUEGREEN_DATABASE_URL`` points at one."""
        url = os.environ.get(DATABASE_URL_ENV)
        if not url:
            return None
        config = self.config()
        return SharedDatabase(url, None, {"APP_VERSION": config.version_of(live), "APP_COLOR": live})
