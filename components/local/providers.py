"""Pulumi dynamic providers that wrap the local runtime, one per part.

Each resource carries the stack's validated config (``config``, plain values) and the
project root, and compares only the props that matter to it (``watch``) in ``diff``,
so flipping ``live_color`` updates the route alone and replaces nothing. Create and
update bring the part to the config through :class:`LocalEnvironment` (the same code
``bluegreen up`` runs); delete stops the part's processes. Deleting the
database stops the server but keeps its data directory: a ``pulumi destroy`` of a
dev stack should not be the way data gets lost.
"""

from __future__ import annotations

import abc
import json
from typing import Any

from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from components.config import StackConfig


def config_json(config: StackConfig) -> str:
    """The validated config as the parts carry it: JSON text, so its numbers keep their types."""
    return json.dumps(config.to_raw(), sort_keys=True)


def environment_from(props: dict[str, Any]) -> Any:
    from components.local.runtime import LocalEnvironment

    config = StackConfig.parse(json.loads(props["config"]), props["stack"])
    return LocalEnvironment(config, props["project_root"])


class _LocalPartProvider(ResourceProvider, abc.ABC):
    """What every part shares: a stable id, diff on ``watch`` only, update = create."""

    # The serialized provider holds no secrets (passwords stay in the state directory).
    serialize_as_secret_always = False
    kind = "part"

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in ("project_root", "stack") if olds.get(key) != news.get(key)]
        changed = olds.get("watch") != news.get("watch") or bool(replaces)
        return DiffResult(changes=changed, replaces=replaces, delete_before_replace=True)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(f"{props['stack']}-{self.kind}", {**props, **self.apply(props)})

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult({**news, **self.apply(news)})

    @abc.abstractmethod
    def apply(self, props: dict[str, Any]) -> dict[str, Any]:
        """Bring this part to ``props`` and return the outputs it adds."""


class DatabaseProvider(_LocalPartProvider):
    kind = "postgres"

    def apply(self, props: dict[str, Any]) -> dict[str, Any]:
        env = environment_from(props)
        env.ensure_database()
        # The app's connection URL, password included: a secret output, encrypted in the state.
        return {"port": env.postgres.port, "url": env.database_url()}

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        environment_from(props).stop_database()


class MigrationsProvider(_LocalPartProvider):
    """Applies what both colours' versions allow; contract steps wait (see scripts/migrate.py)."""

    kind = "migrations"

    def apply(self, props: dict[str, Any]) -> dict[str, Any]:
        return {"applied": environment_from(props).ensure_migrations(before_apps=props.get("phase") == "expand")}

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Schema changes are not undone by deleting the resource."""


class LoadBalancerProvider(_LocalPartProvider):
    kind = "haproxy"

    def apply(self, props: dict[str, Any]) -> dict[str, Any]:
        env = environment_from(props)
        env.ensure_load_balancer()
        from components.local.haproxy import LOG_RING

        return {"log_ring": LOG_RING, "stats_socket": str(env.haproxy.socket_path)}

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        environment_from(props).stop_load_balancer()


class AppColorProvider(_LocalPartProvider):
    kind = "app"

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(f"{props['stack']}-{props['color']}", {**props, **self.apply(props)})

    def apply(self, props: dict[str, Any]) -> dict[str, Any]:
        env = environment_from(props)
        env.ensure_color(props["color"])
        record = env.apps[props["color"]].record()
        return {"pid": record.pid if record else 0, "running": record is not None}

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        environment_from(props).stop_color(props["color"])


class ScaleDownProvider(_LocalPartProvider):
    """After the route: stops the colours that keep no capacity (``idle_capacity: 0``)."""

    kind = "scale-down"

    def apply(self, props: dict[str, Any]) -> dict[str, Any]:
        return {"stopped": environment_from(props).scale_down_idle()}

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Deleting the colours stops them; nothing of its own to remove."""


class LiveRouteProvider(_LocalPartProvider):
    """The switch: ``set map`` on HAProxy's socket after checking the target colour is UP."""

    kind = "route"

    def apply(self, props: dict[str, Any]) -> dict[str, Any]:
        env = environment_from(props)
        env.ensure_route()
        return {"live_url": env.live_url, "preview_url": env.preview_url}

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """The route lives in HAProxy; deleting the load balancer removes it."""
