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
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from scripts.metrics import LiveRoute, MetricsSample, MetricsSourceError, require_fields, route_from_weights

TABLE = "AGWAccessLogs"
_POOL_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}"
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

    def live_route(self) -> LiveRoute:
        """The prod routing rule's backend pool as the gateway holds it (``applicationGateways.get``)."""
        from azure.core.exceptions import HttpResponseError

        parts = self.gateway_id.split("/")  # "", subscriptions, <id>, resourceGroups, <group>, ..., <name>
        subscription, group, name = parts[2], parts[4], parts[-1]
        network = self.network
        if network is None:
            from azure.identity import DefaultAzureCredential
            from azure.mgmt.network import NetworkManagementClient

            network = NetworkManagementClient(self.credential or DefaultAzureCredential(), subscription)
        try:
            gateway = network.application_gateways.get(group, name)
        except HttpResponseError as exc:
            raise MetricsSourceError(f"reading Application Gateway {name} failed: {exc.message}") from exc
        rule = next((r for r in gateway.request_routing_rules or [] if r.name == self.prod_rule), None)
        if rule is None:
            names = sorted(r.name for r in gateway.request_routing_rules or [])
            raise MetricsSourceError(f"gateway {name} has no routing rule {self.prod_rule!r} (has {names})")
        pool = rule.backend_address_pool.id if rule.backend_address_pool else ""
        suffixes = {color: f"/backendAddressPools/{p}" for color, p in self.pools.items()}
        return route_from_weights([(pool, 1)], suffixes, f"gateway {name} rule {self.prod_rule}")

    def sample(self, color: str, start: datetime, end: datetime) -> MetricsSample:
        if color not in self.pools:
            raise MetricsSourceError(f"no backend pool for colour {color!r} in metrics.pools ({sorted(self.pools)})")
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


def from_outputs(
    metrics: Mapping[str, Any],
    client: LogsClient | None = None,
    credential: Any = None,
    server_timeout_s: int = 30,
    network: Any = None,
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
    )
