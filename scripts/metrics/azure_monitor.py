"""Azure Monitor source: a colour's requests, 5xx and p99 from the Application Gateway's access log.

The Azure target exports ``metrics = {"source": "azure_monitor", "gateway_id": ..., "pools":
{"blue": ..., "green": ...}}`` and sends the gateway's access log (one row per request, with
``BackendPoolName``, ``HttpStatus`` and ``ServerResponseLatency``) to Log Analytics in the
resource-specific table ``AGWAccessLogs``. One KQL query per sample, scoped to the gateway
resource, gives the colour's request count, 5xx count and a real 99th percentile of backend
response time. Platform metrics would not do: App Gateway publishes averages and maxima of
latency, no percentiles, and ``azure-monitor-query`` 2.x queries logs only.

Log Analytics ingests with a lag (typically under a few minutes), so the newest seconds of a
window may not be there yet; a window with no rows at all is reported as missing data (None),
never as zero traffic, and the monitor's ``on_no_data`` policy decides. A partial result (the
service hit a limit) is also reported as missing rather than as a possibly wrong number.

Health (:meth:`AzureMonitorSource.health`) is the platform's own view of a colour: its
Container App (``containerApps.get``: provisioning state, running status, and the newest
revision being the ready one), that revision's replicas (``listReplicas``: running, every
container ready) and the gateway's backend health for the colour's pool
(``applicationGateways.backendHealth``, a long-running operation: each server ``Up``). The
app names come from ``metrics.apps``; stacks exported before it are read from the pool's
backend FQDN (``<app>.<environment domain>``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from scripts.metrics import (
    ColorHealth,
    LiveRoute,
    MetricsSample,
    MetricsSourceError,
    require_fields,
    route_from_weights,
)

TABLE = "AGWAccessLogs"
_POOL_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}"
# Application Gateway applies an update one update domain at a time, draining each
# instance's connections for up to 5 minutes first (learn.microsoft.com/azure/
# application-gateway/application-gateway-faq, "How does Application Gateway handle routine
# maintenance?"), and a v2 deployment takes about 6 minutes (same page). ``pulumi up``
# returns once the gateway's PUT has finished; verification then requires the gateway's
# ``provisioningState`` to be ``Succeeded`` and allows two update domains' drain.
VERIFY_TIMEOUT_S = 600.0
CLOUD = "azure"
# Log Analytics ingests with a typical latency of 20 seconds to 3 minutes (learn.microsoft.com/
# azure/azure-monitor/logs/data-ingestion-time): five-minute windows hold data, and the bake
# outlasts the lag.
MONITOR_DEFAULTS = {"window_s": 300, "bake_s": 600}
_APP_NAME_PATTERN = r"[a-z][a-z0-9-]{0,30}[a-z0-9]"
_GATEWAY_ID_PATTERN = (
    r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/applicationGateways/[^/]+"
)


class LogsClient(Protocol):
    """The part of ``azure.monitor.query.LogsQueryClient`` this source uses."""

    def query_resource(
        self, resource_id: str, query: str, *, timespan: Any, server_timeout: int | None = None
    ) -> Any: ...


def pool_query(pool: str) -> str:
    """KQL for one backend pool: requests, responses >= 500 and p99 backend latency in seconds."""
    if not re.fullmatch(_POOL_PATTERN, pool):
        raise MetricsSourceError(f"metrics.pools value {pool!r} is not an Application Gateway backend pool name")
    return (
        f"{TABLE}\n"
        f"| where BackendPoolName == {json.dumps(pool)}\n"
        "| summarize requests = count(), errors = countif(HttpStatus >= 500),"
        " p99_s = percentile(todouble(ServerResponseLatency), 99)"
    )


@dataclass(frozen=True)
class AzureMonitorSource:
    """Reads one colour's traffic over a window from the gateway's access log."""

    client: LogsClient
    gateway_id: str
    pools: Mapping[str, str]
    server_timeout_s: int = 30
    prod_rule: str = "prod"
    # azure.mgmt.network.NetworkManagementClient (made on first use) and the credential for it.
    network: Any = None
    credential: Any = None
    # Colour -> Container App name, and azure.mgmt.appcontainers.ContainerAppsAPIClient.
    apps: Mapping[str, str] = field(default_factory=dict)
    container_apps: Any = None
    verify_timeout_s: float = VERIFY_TIMEOUT_S

    @property
    def _where(self) -> tuple[str, str, str]:
        """(subscription, resource group, gateway name) from the gateway's resource id."""
        parts = self.gateway_id.split("/")  # "", subscriptions, <id>, resourceGroups, <group>, ..., <name>
        return parts[2], parts[4], parts[-1]

    def _network(self) -> Any:
        if self.network is not None:
            return self.network
        from azure.identity import DefaultAzureCredential
        from azure.mgmt.network import NetworkManagementClient

        return NetworkManagementClient(self.credential or DefaultAzureCredential(), self._where[0])

    def _gateway(self) -> Any:
        from azure.core.exceptions import HttpResponseError

        _subscription, group, name = self._where
        try:
            return self._network().application_gateways.get(group, name)
        except HttpResponseError as exc:
            raise MetricsSourceError(f"reading Application Gateway {name} failed: {exc.message}") from exc

    def live_route(self) -> LiveRoute:
        """The prod routing rule's backend pool as the gateway holds it (``applicationGateways.get``).

        A gateway whose ``provisioningState`` is not ``Succeeded`` is still applying an
        update, one update domain at a time: its route is reported as pending.
        """
        name = self._where[2]
        gateway = self._gateway()
        rule = next((r for r in gateway.request_routing_rules or [] if r.name == self.prod_rule), None)
        if rule is None:
            names = sorted(r.name for r in gateway.request_routing_rules or [])
            raise MetricsSourceError(f"gateway {name} has no routing rule {self.prod_rule!r} (has {names})")
        pool = rule.backend_address_pool.id if rule.backend_address_pool else ""
        suffixes = {color: f"/backendAddressPools/{p}" for color, p in self.pools.items()}
        route = route_from_weights([(pool, 1)], suffixes, f"gateway {name} rule {self.prod_rule}")
        state = _text(gateway.provisioning_state)
        if state is not None and state != "Succeeded":
            return LiveRoute(route.weights, route.detail, pending=f"gateway {name} is {state}, not Succeeded yet")
        return route

    def health(self, color: str) -> ColorHealth:
        """The colour's Container App, its newest revision's replicas and the gateway's pool health."""
        from azure.core.exceptions import HttpResponseError

        pool = self._pool(color)
        _subscription, group, name = self._where
        try:
            app = self._app_name(color)
            units = self._app_units(group, app)
            poller = self._network().application_gateways.begin_backend_health(group, name)
            units += _pool_units(poller.result(), pool, name)
        except HttpResponseError as exc:
            raise MetricsSourceError(
                f"reading the health of {color} failed: {exc.message} (the identity needs Reader on the resource group)"
            ) from exc
        healthy = sum(ok for ok, _why in units)
        details = "; ".join(why for _ok, why in units)
        return ColorHealth(color, healthy, len(units), f"{color}: {healthy}/{len(units)} healthy ({details})")

    def _app_name(self, color: str) -> str:
        """The colour's Container App: ``metrics.apps``, else the first label of its pool's backend FQDN."""
        if color in self.apps:
            return self.apps[color]
        gateway = self._gateway()
        pool = next((p for p in gateway.backend_address_pools or [] if p.name == self.pools[color]), None)
        fqdns = [a.fqdn for a in (pool.backend_addresses or []) if a.fqdn] if pool is not None else []
        if not fqdns or not re.fullmatch(_APP_NAME_PATTERN, fqdns[0].split(".", 1)[0]):
            raise MetricsSourceError(
                f"stack output metrics.apps names no Container App for {color}, and pool {self.pools[color]} "
                f"has no Container App FQDN ({fqdns}); run pulumi up"
            )
        return fqdns[0].split(".", 1)[0]

    def _app_units(self, group: str, app_name: str) -> list[tuple[bool, str]]:
        """(healthy, why): the app's rollout as one target, then each replica of its newest revision."""
        client = self.container_apps
        if client is None:
            from azure.identity import DefaultAzureCredential
            from azure.mgmt.appcontainers import ContainerAppsAPIClient

            client = ContainerAppsAPIClient(self.credential or DefaultAzureCredential(), self._where[0])
        props = client.container_apps.get(group, app_name).properties
        problems = []
        if _text(props.provisioning_state) != "Succeeded":
            problems.append(f"provisioning {_text(props.provisioning_state)}")
        running_status = _text(props.running_status)
        if running_status is not None and running_status not in ("Running", "Ready"):
            problems.append(f"running status {running_status}")
        newest, ready = props.latest_revision_name, props.latest_ready_revision_name
        if not ready:
            problems.append("no revision is ready")
        elif newest and newest != ready:
            problems.append(f"its newest revision {newest} is not ready ({ready} still serves)")
        units = [(not problems, f"app {app_name}: " + ("; ".join(problems) or f"revision {ready} ready"))]
        if not newest:
            return units
        replicas = client.container_apps_revision_replicas.list_replicas(group, app_name, newest).value or []
        for replica in replicas:
            rp = replica.properties
            waiting = [c.name for c in rp.containers or [] if not c.ready]
            running = _text(rp.running_state) == "Running"
            state = (
                "running and ready" if running and not waiting else f"{_text(rp.running_state)}, not ready: {waiting}"
            )
            units.append((running and not waiting, f"replica {replica.name} {state}"))
        if not replicas:
            units.append((False, f"revision {newest} has no replicas"))
        return units

    def _pool(self, color: str) -> str:
        if color not in self.pools:
            raise MetricsSourceError(f"no backend pool for colour {color!r} in metrics.pools ({sorted(self.pools)})")
        return self.pools[color]

    def sample(self, color: str, start: datetime, end: datetime) -> MetricsSample:
        self._pool(color)
        from azure.core.exceptions import HttpResponseError
        from azure.monitor.query import LogsQueryStatus

        try:
            result = self.client.query_resource(
                self.gateway_id,
                pool_query(self.pools[color]),
                timespan=(start, end),
                server_timeout=self.server_timeout_s,
            )
        except HttpResponseError as exc:
            raise MetricsSourceError(
                f"Azure Monitor logs query for {color} on {self.gateway_id} failed: {exc.message} "
                "(the identity needs Log Analytics Reader, or Reader on the gateway)"
            ) from exc
        missing = MetricsSample(color=color, start=start, end=end, requests=None, errors=None, p99_ms=None)
        if result.status != LogsQueryStatus.SUCCESS or not result.tables or not result.tables[0].rows:
            return missing
        row = result.tables[0].rows[0]
        requests = row["requests"]
        if not requests:
            return missing
        p99_s = row["p99_s"]
        return MetricsSample(
            color=color,
            start=start,
            end=end,
            requests=int(requests),
            errors=int(row["errors"] or 0),
            p99_ms=None if p99_s is None else float(p99_s) * 1000.0,
        )


def _pool_units(report: Any, pool: str, gateway: str) -> list[tuple[bool, str]]:
    """(healthy, why) per server the gateway probes in ``pool`` (``ApplicationGatewayBackendHealth``)."""
    entry = next(
        (
            p
            for p in report.backend_address_pools or []
            if p.backend_address_pool and p.backend_address_pool.id.endswith(f"/backendAddressPools/{pool}")
        ),
        None,
    )
    servers = (
        [s for settings in (entry.backend_http_settings_collection or []) for s in settings.servers or []]
        if entry
        else []
    )
    if not servers:
        return [(False, f"gateway {gateway}: no server in {pool} reports health")]
    return [(_text(s.health) == "Up", f"gateway {gateway} {pool} {s.address}: {_text(s.health)}") for s in servers]


def _text(value: Any) -> str | None:
    """An SDK enum's wire value (``str()`` of a str-enum gives ``Class.MEMBER``), else the text given."""
    return None if value is None else str(getattr(value, "value", value))


def from_outputs(
    metrics: Mapping[str, Any],
    client: LogsClient | None = None,
    credential: Any = None,
    server_timeout_s: int = 30,
    network: Any = None,
    container_apps: Any = None,
    **_other_sources_options: Any,
) -> AzureMonitorSource:
    """Build the source from the stack's ``metrics`` output (credentials: ``DefaultAzureCredential``)."""
    gateway_id = metrics.get("gateway_id")
    if not isinstance(gateway_id, str) or not re.fullmatch(_GATEWAY_ID_PATTERN, gateway_id):
        raise MetricsSourceError(
            f"stack output metrics.gateway_id = {gateway_id!r} is not an Application Gateway resource id "
            "(/subscriptions/.../providers/Microsoft.Network/applicationGateways/...)"
        )
    require_fields(metrics, "azure_monitor", ("pools",), per_color="pools")
    pools = metrics["pools"]
    for pool in pools.values():
        pool_query(str(pool))
    apps = metrics.get("apps") or {}
    if not isinstance(apps, Mapping) or any(not re.fullmatch(_APP_NAME_PATTERN, str(a)) for a in apps.values()):
        raise MetricsSourceError(f"stack output metrics.apps = {apps!r} must map colours to Container App names")
    if client is None:
        from azure.identity import DefaultAzureCredential
        from azure.monitor.query import LogsQueryClient

        client = LogsQueryClient(credential or DefaultAzureCredential())
    return AzureMonitorSource(
        client=client,
        gateway_id=gateway_id,
        pools={c: str(p) for c, p in pools.items()},
        server_timeout_s=server_timeout_s,
        prod_rule=str(metrics.get("prod_rule") or "prod"),
        network=network,
        credential=credential,
        apps={c: str(a) for c, a in apps.items()},
        container_apps=container_apps,
    )
