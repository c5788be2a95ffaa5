"""The local target through its runtime (:class:`components.local.runtime.LocalEnvironment`).

Like ``pulumi config set``, a change is written to ``Pulumi.<stack>.yaml`` first (the
stack file stays the single source of truth, comments kept), then the runtime makes
the machine match it. If that fails the file is put back and the previous config
applied again, so the file never claims a state the machine is not in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from components.config import COLORS, NAMESPACE, NO_MIGRATIONS, ConfigError, StackConfig
from components.local.haproxy import SERVED_BY_HEADER, HaproxyError
from components.local.runtime import LocalEnvironment, LocalTargetError
from components.migration_runner import apply_migrations
from components.targets import contract_outputs
from scripts.metrics import ColorHealth, LiveRoute, MetricsSource, metrics_source_for
from scripts.targets import Progress, SharedDatabase, TargetError


def yaml_scalar(value: Any) -> str:
    """A value as it would appear after ``key:`` in the stack file."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def update_stack_file(text: str, changes: Mapping[str, Any]) -> str:
    """Set scalar ``bluegreen:`` keys in the stack file's text, keeping every other line."""
    lines = text.splitlines()
    for key, value in changes.items():
        pattern = re.compile(rf"^(\s+){re.escape(NAMESPACE)}:{re.escape(key)}:(\s.*)?$")
        rendered = f"{NAMESPACE}:{key}: {yaml_scalar(value)}"
        for index, line in enumerate(lines):
            match = pattern.match(line)
            if match:
                lines[index] = match.group(1) + rendered
                break
        else:
            at = next((i for i, line in enumerate(lines) if line.rstrip() == "config:"), None)
            if at is None:
                lines += ["config:", f"  {rendered}"]
            else:
                lines.insert(at + 1, f"  {rendered}")
    return "\n".join(lines) + "\n"


ROUTING_KEYS = frozenset({"live_color", "live_traffic_percent"})


def routing_only(previous: StackConfig, wanted: StackConfig, changes: Mapping[str, Any]) -> bool:
    """The change only moves traffic: routing keys, and no colour's capacity changes with it."""
    return (
        bool(changes)
        and set(changes) <= ROUTING_KEYS
        and all(previous.desired_capacity(c) == wanted.desired_capacity(c) for c in COLORS)
    )


LOCAL_VERIFY_TIMEOUT_S = 30.0


class LocalTarget:
    path = "the local runtime (no Pulumi CLI)"

    def __init__(self, stack: str, project_dir: Path | str = ".", **metrics_options: Any) -> None:
        self.stack = stack
        self.project_dir = Path(project_dir).resolve()
        self.stack_file = self.project_dir / f"Pulumi.{stack}.yaml"
        self.metrics_options = metrics_options

    def config(self) -> StackConfig:
        return StackConfig.from_stack_file(self.stack, self.project_dir)

    def environment(self, config: StackConfig | None = None, progress: Progress | None = None) -> LocalEnvironment:
        return LocalEnvironment(config or self.config(), self.project_dir, progress=progress)

    def apply(
        self, changes: Mapping[str, Any], progress: Progress | None = None, urgent: bool = False
    ) -> Mapping[str, Any]:
        previous_text = self.stack_file.read_text()
        previous = self.config()
        wanted = previous.with_changes(**changes)  # a bad value raises before anything changes
        self.stack_file.write_text(update_stack_file(previous_text, changes))
        if self.config() != wanted:
            self.stack_file.write_text(previous_text)
            raise ConfigError(f"{self.stack_file}: could not write {dict(changes)} into the stack file")
        if routing_only(previous, wanted, changes):
            # A switch or a rollback with both colours at their capacity: move traffic and
            # nothing else, so it is fast and needs no other part (database, migrations) healthy.
            try:
                moved = self.environment(wanted, progress).ensure_route(readiness=not urgent)
            except LocalTargetError as exc:
                self.stack_file.write_text(previous_text)
                raise TargetError(f"routing to {wanted.live_color} refused, nothing changed: {exc}") from exc
            (progress or (lambda _line: None))(f"HAProxy: {moved}")
            return self.outputs()
        try:
            self.environment(wanted, progress).apply(wanted)
        except LocalTargetError as exc:
            self.stack_file.write_text(previous_text)
            try:
                self.environment(previous, progress).apply(previous)
                recovered = "re-applied"
            except LocalTargetError as again:
                recovered = f"re-applying it failed too ({again})"
            raise TargetError(
                f"applying {', '.join(f'{k}={v}' for k, v in changes.items())} failed: {exc}; "
                f"previous config restored and {recovered}"
            ) from exc
        return self.outputs()

    def outputs(self) -> Mapping[str, Any]:
        config = self.config()
        env = self.environment(config)
        return contract_outputs(config, env.live_url, env.preview_url, env.metrics())

    def health(self, color: str) -> ColorHealth:
        try:
            status = self.environment().haproxy.health(color)
        except HaproxyError as exc:
            return ColorHealth(color, 0, 0, f"{color}: HAProxy unreachable ({exc})")
        return ColorHealth(color, int(status == "UP"), 1, f"{color}: HAProxy health check {status}")

    def metrics(self) -> MetricsSource:
        return metrics_source_for(self.environment().metrics(), **self.metrics_options)

    def live_route(self) -> LiveRoute:
        """HAProxy's runtime map (what it routes by now, not the map file or the stack config)."""
        try:
            routing = self.environment().haproxy.current_routing()
        except HaproxyError as exc:
            raise TargetError(f"cannot read the live route from HAProxy: {exc}") from exc
        if routing is None:
            raise TargetError("HAProxy's runtime map holds no valid prod/preview route")
        weights = routing.weights()
        shares = ", ".join(f"{color} {weights[color]}%" for color in sorted(weights))
        return LiveRoute(weights, f"HAProxy runtime map: prod {shares}", SERVED_BY_HEADER)

    def verify_timeout_s(self) -> float:
        """``set map`` takes effect on HAProxy's next request (DESIGN.md); the wait covers a reload."""
        return LOCAL_VERIFY_TIMEOUT_S

    def migrate(self, progress: Progress) -> str:
        """Pending migrations for the versions the colours run now (a contract waits for both)."""

        env = self.environment()
        directory = self.config().migrations_location(self.project_dir)
        if directory is None:
            return NO_MIGRATIONS
        if not directory.is_dir():
            return f"no migrations directory {directory}"
        if not env.postgres.running() or not env.haproxy.running():
            raise TargetError(
                f"stack {self.stack!r} is not up (PostgreSQL or HAProxy not running): "
                f"run `bluegreen up --stack {self.stack}` first"
            )
        status = env.status()["colors"]
        versions = {c: status[c]["version"] or env.config.version_of(c) for c in ("blue", "green")}
        report = apply_migrations(env.database_url(), versions["blue"], versions["green"], directory, progress)
        return "migrations: " + report.summary()

    def shared_database(self, live: str) -> SharedDatabase | None:
        env = self.environment()
        if not env.postgres.running():
            return None
        return SharedDatabase(env.database_url(), env.postgres.admin_url(), dict(env.app_spec(live).environment))
