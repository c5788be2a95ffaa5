"""The Azure Monitor metrics source against responses built from azure-monitor-query's own types."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.mgmt.network.models import (
    ApplicationGateway,
    ApplicationGatewayBackendAddress,
    ApplicationGatewayBackendAddressPool,
    ApplicationGatewayRequestRoutingRule,
    SubResource,
)
from azure.monitor.query import LogsQueryError, LogsQueryPartialResult, LogsQueryResult, LogsTable

from scripts.metrics import MetricsSourceError, metrics_source_for
from scripts.metrics.azure_monitor import AzureMonitorSource, from_outputs, pool_query
from tests.pipeline.fake_clouds import AzureCloud

GATEWAY_ID = (
    "/subscriptions/00000000-0000-0000-0000-00000000005b/resourceGroups/prod-rg"
    "/providers/Microsoft.Network/applicationGateways/prod-agw"
)
METRICS = {
    "source": "azure_monitor",
    "gateway_id": GATEWAY_ID,
    "pools": {"blue": "blue-pool", "green": "green-pool"},
}
START = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
END = START + timedelta(seconds=60)
COLUMNS = {"columns": ["requests", "errors", "p99_s"], "columns_types": ["long", "long", "real"]}


def table(*rows: list[Any]) -> LogsTable:
    return LogsTable(name="PrimaryResult", rows=list(rows), **COLUMNS)


class FakeLogsClient:
    """Answers ``query_resource`` like LogsQueryClient, and records what it was asked."""

    def __init__(self, *responses: Any) -> None:
        self.responses = list(responses)
        self.calls: list[dict[str, Any]] = []

    def query_resource(self, resource_id: str, query: str, *, timespan: Any, server_timeout: int | None = None) -> Any:
        self.calls.append({"resource_id": resource_id, "query": query, "timespan": timespan, "timeout": server_timeout})
        response = self.responses.pop(0)
        if isinstance(response, Exception):
            raise response
        return response


def source(*responses: Any) -> tuple[AzureMonitorSource, FakeLogsClient]:
    client = FakeLogsClient(*responses)
    built = metrics_source_for(METRICS, client=client)
    assert isinstance(built, AzureMonitorSource)
    return built, client


def test_query_is_scoped_to_the_gateway_the_colour_pool_and_the_window() -> None:
    monitor, client = source(LogsQueryResult(tables=[table([1200, 6, 0.184])]))
    monitor.sample("green", START, END)
    (call,) = client.calls
    assert call["resource_id"] == GATEWAY_ID
    assert call["timespan"] == (START, END)
    assert call["timeout"] == 30
    assert call["query"] == (
        "AGWAccessLogs\n"
        '| where BackendPoolName == "green-pool"\n'
        "| summarize requests = count(), errors = countif(HttpStatus >= 500),"
        " p99_s = percentile(todouble(ServerResponseLatency), 99)"
    )


def test_a_window_with_traffic_gives_counts_and_p99_in_milliseconds() -> None:
    monitor, _ = source(LogsQueryResult(tables=[table([1200, 6, 0.184])]))
    sample = monitor.sample("blue", START, END)
    assert (sample.color, sample.start, sample.end) == ("blue", START, END)
    assert (sample.requests, sample.errors) == (1200, 6)
    assert sample.p99_ms == pytest.approx(184.0)
    assert sample.error_rate == pytest.approx(0.005)
    assert sample.has_data


def test_only_failed_responses_without_latency_keep_errors_and_report_latency_missing() -> None:
    """All requests got a gateway 502 (backend down): no backend latency, but the errors count."""
    monitor, _ = source(LogsQueryResult(tables=[table([40, 40, None])]))
    sample = monitor.sample("green", START, END)
    assert (sample.requests, sample.errors, sample.p99_ms) == (40, 40, None)
    assert sample.error_rate == 1.0


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(LogsQueryResult(tables=[table([0, 0, None])]), id="summarize over no rows"),
        pytest.param(LogsQueryResult(tables=[table()]), id="empty table"),
        pytest.param(LogsQueryResult(tables=[]), id="no tables"),
        pytest.param(
            LogsQueryPartialResult(
                partial_data=[table([3, 0, 0.05])],
                partial_error=LogsQueryError(code="PartialError", message="query exceeded limits"),
            ),
            id="partial result",
        ),
    ],
)
def test_missing_data_is_reported_as_missing_never_as_zero(response: Any) -> None:
    monitor, _ = source(response)
    sample = monitor.sample("blue", START, END)
    assert (sample.requests, sample.errors, sample.p99_ms) == (None, None, None)
    assert not sample.has_data and sample.error_rate is None


def test_responses_parsed_from_the_wire_format_by_the_library() -> None:
    """The shape the service returns, turned into LogsQueryResult by azure-monitor-query itself."""
    wire = {
        "tables": [
            {
                "name": "PrimaryResult",
                "columns": [
                    {"name": "requests", "type": "long"},
                    {"name": "errors", "type": "long"},
                    {"name": "p99_s", "type": "real"},
                ],
                "rows": [[980, 0, 0.0421]],
            }
        ]
    }
    monitor, _ = source(LogsQueryResult._from_generated(wire))
    sample = monitor.sample("blue", START, END)
    assert (sample.requests, sample.errors) == (980, 0)
    assert sample.p99_ms == pytest.approx(42.1)


def test_a_failed_query_is_a_clear_error_not_missing_data() -> None:
    monitor, _ = source(ClientAuthenticationError(message="AuthorizationFailed"))
    with pytest.raises(MetricsSourceError, match=r"query for blue on .*prod-agw failed: AuthorizationFailed"):
        monitor.sample("blue", START, END)


def test_an_unknown_colour_is_refused() -> None:
    monitor, client = source()
    with pytest.raises(MetricsSourceError, match="no backend pool for colour 'red'"):
        monitor.sample("red", START, END)
    assert client.calls == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"gateway_id": None}, "metrics.gateway_id = None is not an Application Gateway resource id"),
        ({"gateway_id": "prod-agw"}, "is not an Application Gateway resource id"),
        ({"pools": {"blue": "blue-pool"}}, "must map blue and green"),
        ({"pools": {"blue": "blue-pool", "green": 'x" | take 1'}}, "is not an Application Gateway backend pool"),
    ],
)
def test_bad_stack_outputs_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(MetricsSourceError, match=message):
        from_outputs({**METRICS, **change}, client=FakeLogsClient())


def test_without_a_client_the_real_logs_client_is_built_with_the_given_credential() -> None:
    from azure.core.credentials import AccessToken
    from azure.monitor.query import LogsQueryClient

    class StaticCredential:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken("token", 0)

    built = from_outputs(METRICS, credential=StaticCredential(), unrelated_option="for another source")
    assert isinstance(built.client, LogsQueryClient)
    assert built.pools == {"blue": "blue-pool", "green": "green-pool"}


def test_pool_names_are_quoted_as_kql_strings() -> None:
    assert '== "blue.pool_1"' in pool_query("blue.pool_1")
    with pytest.raises(MetricsSourceError):
        pool_query("")


class FakeNetwork:
    """``NetworkManagementClient.application_gateways.get`` answering with the SDK's own models."""

    def __init__(self, gateway: ApplicationGateway) -> None:
        self.gateway = gateway
        self.asked: list[tuple[str, str]] = []
        self.application_gateways = self

    def get(self, resource_group_name: str, application_gateway_name: str) -> ApplicationGateway:
        self.asked.append((resource_group_name, application_gateway_name))
        return self.gateway


def gateway_routing(prod_pool: str) -> ApplicationGateway:
    def rule(name: str, pool: str) -> ApplicationGatewayRequestRoutingRule:
        return ApplicationGatewayRequestRoutingRule(
            name=name, backend_address_pool=SubResource(id=f"{GATEWAY_ID}/backendAddressPools/{pool}")
        )

    other = "green-pool" if prod_pool == "blue-pool" else "blue-pool"
    return ApplicationGateway(request_routing_rules=[rule("prod", prod_pool), rule("preview", other)])


def test_the_live_route_is_the_prod_rule_read_back() -> None:
    network = FakeNetwork(gateway_routing("green-pool"))
    route = from_outputs(METRICS, client=FakeLogsClient(), network=network).live_route()
    assert dict(route.weights) == {"blue": 0, "green": 100} and route.served_by_header is None
    assert network.asked == [("prod-rg", "prod-agw")]
    assert "gateway prod-agw rule prod sends prod" in route.detail

    with pytest.raises(MetricsSourceError, match=r"no routing rule 'live' \(has \['preview', 'prod'\]\)"):
        from_outputs({**METRICS, "prod_rule": "live"}, client=FakeLogsClient(), network=network).live_route()


# -- health: the Container App, its replicas and the gateway's backend health ------------------


def azure(**changes: Any) -> tuple[AzureCloud, AzureMonitorSource]:
    cloud = AzureCloud()
    for key, value in changes.items():
        setattr(cloud, key, value)
    built = metrics_source_for(cloud.metrics, **cloud.options())
    assert isinstance(built, AzureMonitorSource)
    return cloud, built


def test_a_running_app_with_ready_replicas_and_an_up_pool_is_healthy() -> None:
    _cloud, monitor = azure()
    health = monitor.health("green")
    assert (health.healthy, health.total, health.ok) == (4, 4, True)
    assert "app prod-green: revision prod-green--v1-0-0 ready" in health.detail
    assert "replica prod-green--v1-0-0-1 running and ready" in health.detail
    assert "gateway prod-agw green-pool 10.60.4.10: Up" in health.detail


def test_a_revision_that_never_got_ready_is_unhealthy_on_every_count() -> None:
    cloud, monitor = azure()
    cloud.healthy["green"] = False
    health = monitor.health("green")
    assert (health.healthy, health.total, health.ok) == (0, 4, False)
    assert "its newest revision prod-green--v1-0-0 is not ready (prod-green--previous still serves)" in health.detail
    assert "NotRunning, not ready: ['app']" in health.detail and "green-pool 10.60.4.10: Down" in health.detail


def test_the_gateway_alone_saying_down_makes_a_colour_unhealthy() -> None:
    class DownGateway(AzureCloud):
        def begin_backend_health(self, resource_group_name: str, application_gateway_name: str) -> Any:
            done = super().begin_backend_health(resource_group_name, application_gateway_name)
            for pool in done.value.backend_address_pools:
                pool.backend_http_settings_collection[0].servers[0].health = "Down"
            return done

    cloud = DownGateway()
    health = metrics_source_for(cloud.metrics, **cloud.options()).health("blue")
    assert (health.healthy, health.total) == (3, 4) and "blue-pool 10.60.4.10: Down" in health.detail


def test_without_metrics_apps_the_app_is_the_pools_backend_fqdn() -> None:
    """Stacks exported before ``apps``: the gateway's pool names the app by its FQDN."""

    class Gateway(AzureCloud):
        def get(self, resource_group_name: str, name: str) -> Any:
            answer = super().get(resource_group_name, name)
            if name == "prod-agw":
                answer.backend_address_pools = [
                    ApplicationGatewayBackendAddressPool(
                        name="green-pool",
                        backend_addresses=[
                            ApplicationGatewayBackendAddress(fqdn="prod-green.env1.azurecontainerapps.io")
                        ],
                    )
                ]
            return answer

    cloud = Gateway()
    metrics = {k: v for k, v in cloud.metrics.items() if k != "apps"}
    assert metrics_source_for(metrics, **cloud.options()).health("green").ok
    with pytest.raises(MetricsSourceError, match="names no Container App for blue"):
        metrics_source_for(metrics, **cloud.options()).health("blue")
    with pytest.raises(MetricsSourceError, match=r"metrics\.apps"):
        metrics_source_for({**cloud.metrics, "apps": {"blue": "Bad Name"}}, **cloud.options())


def test_a_gateway_still_updating_holds_its_route_as_pending() -> None:
    cloud, monitor = azure(gateway_state="Updating")
    route = monitor.live_route()
    assert dict(route.weights) == {"blue": 100, "green": 0}
    assert route.pending == "gateway prod-agw is Updating, not Succeeded yet"
    cloud.gateway_state = "Succeeded"
    assert monitor.live_route().pending is None


def test_health_that_cannot_be_read_is_a_clear_error() -> None:
    class Forbidden(AzureCloud):
        def list_replicas(self, *args: Any) -> Any:
            raise HttpResponseError(message="AuthorizationFailed")

    cloud = Forbidden()
    with pytest.raises(MetricsSourceError, match="reading the health of blue failed: AuthorizationFailed"):
        metrics_source_for(cloud.metrics, **cloud.options()).health("blue")
