"""The Cloud Monitoring source: the requests it sends and how it reads the answers, empty ones included.

Responses are built from the client library's own types and served through the real
``MetricServiceClient``, with only its gRPC call replaced (the way the library's own
tests do it), so the pager, paging and proto conversion are the real ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from google.api import metric_pb2, monitored_resource_pb2
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1, monitoring_v3, run_v2
from test_gcp_component import EXPECTED_METRICS, gcp_stack

from scripts.metrics import MetricsSourceError, metrics_source_for
from scripts.metrics.cloud_monitoring import BACKEND_LATENCIES, REQUEST_COUNT, CloudMonitoringSource
from tests.pipeline.fake_clouds import GcpCloud

# What the GCP component exports (asserted there), so both sides agree on the shape.
OUTPUTS = EXPECTED_METRICS
END = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
START = END - timedelta(seconds=90)


def lb_series(
    metric: str, points: list[monitoring_v3.TypedValue], code_class: str | None = None
) -> monitoring_v3.TimeSeries:
    """A series shaped like Cloud Monitoring's answer for an aggregated load balancer query."""
    labels = {"response_code_class": code_class} if code_class is not None else {}
    return monitoring_v3.TimeSeries(
        metric=metric_pb2.Metric(type=metric, labels=labels),
        resource=monitored_resource_pb2.MonitoredResource(
            type="https_lb_rule", labels={"project_id": "shop-prod-1234"}
        ),
        metric_kind=metric_pb2.MetricDescriptor.MetricKind.DELTA,
        value_type=(
            metric_pb2.MetricDescriptor.ValueType.INT64
            if metric == REQUEST_COUNT
            else metric_pb2.MetricDescriptor.ValueType.DOUBLE
        ),
        points=[
            monitoring_v3.Point(
                interval=monitoring_v3.TimeInterval(start_time=END - timedelta(minutes=2 * (i + 1)), end_time=END),
                value=value,
            )
            for i, value in enumerate(points)
        ],
    )


def counts(code_class: str, *values: int) -> monitoring_v3.TimeSeries:
    return lb_series(REQUEST_COUNT, [monitoring_v3.TypedValue(int64_value=v) for v in values], code_class)


def p99(*values: float) -> monitoring_v3.TimeSeries:
    return lb_series(BACKEND_LATENCIES, [monitoring_v3.TypedValue(double_value=v) for v in values])


def page(*series: monitoring_v3.TimeSeries, next_token: str = "") -> monitoring_v3.ListTimeSeriesResponse:
    return monitoring_v3.ListTimeSeriesResponse(time_series=list(series), next_page_token=next_token)


@pytest.fixture
def client_calls() -> Iterator[tuple[monitoring_v3.MetricServiceClient, mock.MagicMock]]:
    client = monitoring_v3.MetricServiceClient(credentials=AnonymousCredentials(), transport="grpc")
    with mock.patch.object(type(client.transport.list_time_series), "__call__") as call:
        yield client, call


def sent_requests(call: mock.MagicMock) -> list[monitoring_v3.ListTimeSeriesRequest]:
    return [c.args[0] for c in call.mock_calls if c.args]


def test_counts_by_code_class_and_p99_of_the_colour(client_calls) -> None:
    client, call = client_calls
    call.side_effect = [
        page(counts("200", 900, 80), counts("400", 15), counts("500", 5)),
        page(p99(212.5)),
    ]
    source = metrics_source_for(OUTPUTS, client=client)
    sample = source.sample("green", START, END)
    assert (sample.requests, sample.errors, sample.p99_ms) == (1000, 5, 212.5)
    assert sample.error_rate == 0.005 and sample.color == "green"
    assert sample.end == END and sample.start == END - timedelta(seconds=120), "widened to whole minutes"

    count_request, latency_request = sent_requests(call)
    assert count_request.name == "projects/shop-prod-1234"
    assert count_request.filter == (
        f'metric.type = "{REQUEST_COUNT}" AND resource.type = "https_lb_rule" '
        'AND resource.labels.url_map_name = "prod-bluegreen-urlmap-a1b2c3d" '
        'AND resource.labels.backend_target_name = "prod-bluegreen-green-backend-a1b2c3d"'
    )
    assert count_request.interval.start_time == END - timedelta(seconds=120)
    assert count_request.interval.end_time == END
    aggregation = count_request.aggregation
    assert aggregation.alignment_period == timedelta(seconds=120)
    assert aggregation.per_series_aligner == monitoring_v3.Aggregation.Aligner.ALIGN_DELTA
    assert aggregation.cross_series_reducer == monitoring_v3.Aggregation.Reducer.REDUCE_SUM
    assert list(aggregation.group_by_fields) == ["metric.labels.response_code_class"]

    assert f'metric.type = "{BACKEND_LATENCIES}"' in latency_request.filter
    assert "prod-bluegreen-green-backend-a1b2c3d" in latency_request.filter
    assert latency_request.aggregation.cross_series_reducer == monitoring_v3.Aggregation.Reducer.REDUCE_PERCENTILE_99
    assert latency_request.aggregation.per_series_aligner == monitoring_v3.Aggregation.Aligner.ALIGN_DELTA


def test_every_page_is_read(client_calls) -> None:
    client, call = client_calls
    call.side_effect = [
        page(counts("200", 600), next_token="page-2"),
        page(counts("500", 30)),
        page(p99(150.0), next_token="p2"),
        page(p99(480.0)),
    ]
    sample = metrics_source_for(OUTPUTS, client=client).sample("blue", START, END)
    assert (sample.requests, sample.errors, sample.p99_ms) == (630, 30, 480.0), "the worst period's p99 counts"
    requests = sent_requests(call)
    assert [r.page_token for r in requests] == ["", "page-2", "", "p2"]
    assert all("prod-bluegreen-blue-backend-a1b2c3d" in r.filter for r in requests)


def test_no_series_is_missing_data_not_zero(client_calls) -> None:
    client, call = client_calls
    call.side_effect = [page(), page()]
    sample = metrics_source_for(OUTPUTS, client=client).sample("green", START, END)
    assert sample.requests is None and sample.errors is None and sample.p99_ms is None
    assert not sample.has_data and sample.error_rate is None


def test_traffic_without_5xx_is_zero_errors_and_empty_latency_is_missing(client_calls) -> None:
    client, call = client_calls
    call.side_effect = [page(counts("200", 40), counts("300", 2)), page(lb_series(BACKEND_LATENCIES, []))]
    sample = metrics_source_for(OUTPUTS, client=client).sample("green", START, END)
    assert (sample.requests, sample.errors) == (42, 0)
    assert sample.error_rate == 0.0 and sample.p99_ms is None


def test_a_short_window_queries_one_whole_minute() -> None:
    source = CloudMonitoringSource(mock.Mock(), "p-123456", "um", {"blue": "b", "green": "g"})
    request = source.query(REQUEST_COUNT, "blue", END - timedelta(seconds=5), END)
    assert request.aggregation.alignment_period == timedelta(seconds=60)
    assert request.interval.start_time == END - timedelta(seconds=60)


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ({"source": "cloud_monitoring", "url_map": "u", "backend_services": {"blue": "b", "green": "g"}}, "project"),
        ({"source": "cloud_monitoring", "project": "p", "backend_services": {"blue": "b", "green": "g"}}, "url_map"),
        ({"source": "cloud_monitoring", "project": "p", "url_map": "u", "backend_services": {"blue": "b"}}, "blue"),
    ],
)
def test_incomplete_outputs_are_refused(metrics: dict, message: str) -> None:
    with pytest.raises(MetricsSourceError, match=message):
        metrics_source_for(metrics, client=mock.Mock())


def test_an_unknown_colour_is_refused() -> None:
    source = metrics_source_for(OUTPUTS, client=mock.Mock())
    with pytest.raises(MetricsSourceError, match="has no 'red'"):
        source.sample("red", START, END)


def test_the_component_outputs_drive_the_source(client_calls) -> None:
    """What the GCP stack exports is exactly what this source needs to query the live colour."""
    metrics = gcp_stack(live_color="green").outputs["metrics"]
    client, call = client_calls
    call.side_effect = [page(counts("200", 10)), page(p99(30.0))]
    sample = metrics_source_for(metrics, client=client).sample("green", START, END)
    assert (sample.requests, sample.errors, sample.p99_ms) == (10, 0, 30.0)
    count_request = sent_requests(call)[0]
    assert count_request.name == f"projects/{metrics['project']}"
    assert f'url_map_name = "{metrics["url_map"]}"' in count_request.filter
    assert f'backend_target_name = "{metrics["backend_services"]["green"]}"' in count_request.filter


class FakeUrlMaps:
    """``compute_v1.UrlMapsClient.get`` answering with the library's own ``UrlMap`` type."""

    def __init__(self, url_map: compute_v1.UrlMap) -> None:
        self.url_map = url_map
        self.asked: list[tuple[str, str]] = []

    def get(self, *, project: str, url_map: str) -> compute_v1.UrlMap:
        self.asked.append((project, url_map))
        return self.url_map


def service_url(project: str, name: str) -> str:
    return f"https://www.googleapis.com/compute/v1/projects/{project}/global/backendServices/{name}"


def test_the_live_route_is_the_url_map_read_back() -> None:
    names = OUTPUTS["backend_services"]
    weighted = [
        compute_v1.WeightedBackendService(backend_service=service_url(OUTPUTS["project"], names[c]), weight=w)
        for c, w in (("blue", 10), ("green", 90))
    ]
    url_maps = FakeUrlMaps(
        compute_v1.UrlMap(default_route_action=compute_v1.HttpRouteAction(weighted_backend_services=weighted))
    )
    route = metrics_source_for(OUTPUTS, client=mock.Mock(), url_maps=url_maps).live_route()
    assert dict(route.weights) == {"blue": 10, "green": 90} and route.served_by_header is None
    assert url_maps.asked == [(OUTPUTS["project"], OUTPUTS["url_map"])]
    assert f"URL map {OUTPUTS['url_map']} sends prod" in route.detail

    single = FakeUrlMaps(compute_v1.UrlMap(default_service=service_url(OUTPUTS["project"], names["green"])))
    assert dict(metrics_source_for(OUTPUTS, client=mock.Mock(), url_maps=single).live_route().weights) == {
        "blue": 0,
        "green": 100,
    }


def test_a_url_map_that_cannot_be_read_is_a_clear_error() -> None:
    from google.api_core.exceptions import Forbidden

    class Refusing:
        def get(self, **_: str) -> compute_v1.UrlMap:
            raise Forbidden("compute.urlMaps.get denied")

    with pytest.raises(MetricsSourceError, match=r"reading URL map .* failed: 403 compute\.urlMaps\.get denied"):
        metrics_source_for(OUTPUTS, client=mock.Mock(), url_maps=Refusing()).live_route()


# -- health: the platform's own view of a colour ------------------------------------------------


class Backends:
    """``compute_v1.BackendServicesClient``: ``get`` and ``getHealth`` with the library's own types."""

    def __init__(self, groups: list[str], health: list[compute_v1.HealthStatus] | None = None) -> None:
        self.groups, self.health, self.asked = groups, health or [], []

    def get(self, *, project: str, backend_service: str) -> compute_v1.BackendService:
        return compute_v1.BackendService(
            name=backend_service, backends=[compute_v1.Backend(group=g) for g in self.groups]
        )

    def get_health(
        self,
        *,
        project: str,
        backend_service: str,
        resource_group_reference_resource: compute_v1.ResourceGroupReference,
    ) -> compute_v1.BackendServiceGroupHealth:
        self.asked.append(resource_group_reference_resource.group)
        return compute_v1.BackendServiceGroupHealth(health_status=self.health)


def gcp_cloud(**changes: object) -> tuple[GcpCloud, dict]:
    cloud = GcpCloud()
    for key, value in changes.items():
        setattr(cloud, key, value)
    return cloud, cloud.options()


def test_a_ready_cloud_run_service_behind_its_serverless_neg_is_healthy() -> None:
    cloud, options = gcp_cloud()
    health = metrics_source_for(cloud.metrics, **options).health("green")
    assert (health.healthy, health.total, health.ok) == (1, 1, True)
    assert "Cloud Run prod-bluegreen-green-run-a1b2c3d: revision" in health.detail
    assert "ready with 100% of its traffic, at least 2 instance(s)" in health.detail


def test_a_cloud_run_service_that_failed_its_probes_is_unhealthy() -> None:
    cloud, options = gcp_cloud()
    cloud.healthy["green"] = False
    health = metrics_source_for(cloud.metrics, **options).health("green")
    assert (health.healthy, health.total, health.ok) == (0, 1, False)
    assert "Ready is CONDITION_FAILED: The user-provided container failed" in health.detail
    assert "ContainerHealthy is CONDITION_FAILED" in health.detail


class Services:
    """``run_v2.ServicesClient.get_service`` answering one fixed ``Service``."""

    def __init__(self, service: run_v2.Service) -> None:
        self.service = service

    def get_service(self, *, name: str) -> run_v2.Service:
        return self.service


def test_a_newest_revision_that_is_not_ready_or_a_rollout_in_progress_is_unhealthy() -> None:
    """Cloud Run keeps serving the last ready revision: the release's version is not what serves."""
    cloud, options = gcp_cloud()
    base = run_v2.ServicesClient.service_path("shop-prod-1234", "europe-west1", cloud.run_service("green"))
    service = run_v2.Service(
        terminal_condition=run_v2.Condition(type_="Ready", state=run_v2.Condition.State.CONDITION_SUCCEEDED),
        latest_ready_revision=f"{base}/revisions/s-00001",
        latest_created_revision=f"{base}/revisions/s-00002",
        reconciling=True,
    )
    source = metrics_source_for(cloud.metrics, **{**options, "run_services": Services(service)})
    health = source.health("green")
    assert not health.ok
    assert "still rolling out (reconciling)" in health.detail
    assert "its newest revision s-00002 is not ready (s-00001 still serves)" in health.detail


def test_backends_that_report_health_count_their_endpoints() -> None:
    """Only non-serverless backends are asked ``getHealth``; each endpoint is a target."""
    cloud, options = gcp_cloud()
    group = "https://www.googleapis.com/compute/v1/projects/shop-prod-1234/zones/europe-west1-b/instanceGroups/web"
    backends = Backends(
        [group],
        [
            compute_v1.HealthStatus(health_state="HEALTHY", ip_address="10.0.0.2"),
            compute_v1.HealthStatus(health_state="HEALTHY", ip_address="10.0.0.3"),
            compute_v1.HealthStatus(health_state="UNHEALTHY", ip_address="10.0.0.4"),
        ],
    )
    health = metrics_source_for(cloud.metrics, **{**options, "backends": backends}).health("blue")
    assert (health.healthy, health.total) == (2, 3) and "web 10.0.0.4: UNHEALTHY" in health.detail
    assert backends.asked == [group]
    assert not metrics_source_for(cloud.metrics, **{**options, "backends": Backends([group])}).health("blue").ok


def test_health_that_cannot_be_read_is_a_clear_error() -> None:
    from google.api_core.exceptions import PermissionDenied

    class Refusing(Backends):
        def get(self, **_: str) -> compute_v1.BackendService:
            raise PermissionDenied("compute.backendServices.get denied")

    cloud, options = gcp_cloud()
    with pytest.raises(MetricsSourceError, match="health of backend service prod-bluegreen-blue-backend-a1b2c3d"):
        metrics_source_for(cloud.metrics, **{**options, "backends": Refusing([])}).health("blue")
