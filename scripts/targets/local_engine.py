"""A local stack through the Pulumi engine: the same Automation API path cloud stacks take.

Config changes and applies go through :class:`PulumiStackTarget` (``set_all_config``,
``up`` with the policy pack); what only the machine can tell (HAProxy's health view, the
database, the migrations) comes from the local runtime, as the dynamic providers see it.

A rollback cannot wait for a whole ``pulumi up`` (seconds of program start-up and
diffs): a change that only moves traffic (``live_color``, ``live_traffic_percent``) is
made on HAProxy first, with the same checks the route provider makes, and the stack is
reconciled with ``pulumi up`` right after; the route provider then finds the route
already in place, so the reconciling ``up`` changes nothing on the machine and a
``pulumi preview`` afterwards reports no change.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pulumi import automation as auto

from components.local.runtime import LocalTargetError
from scripts.metrics import ColorHealth, LiveRoute, MetricsSource
from scripts.targets import Progress, SharedDatabase, TargetError
from scripts.targets.local import ROUTING_KEYS, LocalTarget
from scripts.targets.pulumi_stack import STDERR_SHOWN, PulumiStackTarget


class LocalEngineTarget(PulumiStackTarget):
    """``cloud: local`` stacks driven by the Pulumi CLI, with the machine read directly."""

    path = "the Pulumi engine (Automation API), local target"

    def __init__(self, stack: str, project_dir: Path | str = ".", **options: Any) -> None:
        super().__init__(stack, project_dir, **options)
        self.machine = LocalTarget(stack, project_dir, **self.metrics_options)

    def _open(self, stack: str, options: auto.LocalWorkspaceOptions) -> auto.Stack:
        """A local stack is created in the file backend on first use, like ``pulumi stack init``."""
        return auto.create_or_select_stack(stack, work_dir=str(self.project_dir), opts=options)

    def apply(
        self, changes: Mapping[str, Any], progress: Progress | None = None, urgent: bool = False
    ) -> Mapping[str, Any]:
        say = progress or (lambda _line: None)
        self.clear_stale_engine_locks(say)
        if not changes or not set(changes) <= ROUTING_KEYS:
            return super().apply(changes, progress)
        wanted = self.config().with_changes(**changes)  # a bad value raises before anything changes
        try:
            moved = self.machine.environment(wanted, say).ensure_route(readiness=not urgent)
        except LocalTargetError as exc:
            raise TargetError(f"routing to {wanted.live_color} refused, nothing changed: {exc}") from exc
        say(f"HAProxy first: {moved}")
        self._set_config(changes)
        say("pulumi up: reconciling the stack with the route: " + ", ".join(f"{k}={v}" for k, v in changes.items()))
        try:
            result = self._up(say)
        except auto.CommandError as exc:
            # Traffic is where the config now says; undoing it would send prod back to what
            # this change moved it away from (for a rollback, the failing release).
            say(
                f"warning: prod is on {wanted.live_color} as the stack config says, but pulumi up failed to "
                f"reconcile the rest of the stack; fix the cause and run `pulumi up`: {str(exc)[-STDERR_SHOWN:]}"
            )
            return self.machine.outputs()
        return {k: v.value for k, v in result.outputs.items()}

    def destroy(self, progress: Progress | None = None) -> None:
        """``pulumi destroy``: every process stopped, ports freed; the database data stays."""
        say = progress or (lambda _line: None)
        self.clear_stale_engine_locks(say)
        try:
            self._stack.destroy(on_output=lambda line: say(line.rstrip()), show_secrets=False)
        except auto.CommandError as exc:
            raise TargetError(f"pulumi destroy failed: {str(exc)[-STDERR_SHOWN:]}") from exc

    def outputs(self) -> Mapping[str, Any]:
        return super().outputs() or self.machine.outputs()

    def health(self, color: str) -> ColorHealth:
        return self.machine.health(color)

    def metrics(self) -> MetricsSource:
        return self.machine.metrics()

    def live_route(self) -> LiveRoute:
        return self.machine.live_route()

    def verify_timeout_s(self) -> float:
        return self.machine.verify_timeout_s()

    def migrate(self, progress: Progress) -> str:
        return self.machine.migrate(progress)

    def shared_database(self, live: str) -> SharedDatabase | None:
        return self.machine.shared_database(live)

    def clear_stale_engine_locks(self, say: Progress) -> list[Path]:
        """Remove file-backend update locks left by a ``pulumi`` process of this host that died.

        A killed ``pulumi up`` leaves its lock, and every later update would be refused
        ("the stack is currently locked"). Callers hold the stack's deploy lock, so no
        other command of this project is updating; a lock whose process is alive stays.
        """
        backend = os.environ.get("PULUMI_BACKEND_URL") or self._stack.workspace.env_vars.get("PULUMI_BACKEND_URL", "")
        url = urlparse(backend)
        if url.scheme != "file":
            return []
        removed = []
        for lock in (Path(unquote(url.path)) / ".pulumi" / "locks").glob(f"**/{self.stack}/*.json"):
            try:
                holder = json.loads(lock.read_text())
            except (OSError, ValueError):
                continue
            if holder.get("hostname") != socket.gethostname() or _alive(int(holder.get("pid") or 0)):
                continue
            lock.unlink(missing_ok=True)
            removed.append(lock)
            say(f"removed a stale engine lock of dead process {holder.get('pid')} ({lock.name})")
        return removed


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
