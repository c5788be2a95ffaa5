"""Cloud Monitoring metrics of a backend service, the GCP target's per-colour metrics source.

The GCP component exports ``metrics = {"source": "cloud_monitoring", "project": ...,
"url_map": <production URL map name>, "backend_services": {"blue": ..., "green": ...}}``.
Load balancer metrics (resource type ``https_lb_rule``) are written once a minute, so a
window is widened to whole minutes ending at ``end``. Each colour's production traffic
has its own backend service (preview traffic goes through separate preview backend
services), so filtering on the production URL map and the colour's backend service
counts only the requests the release's users made.

Cloud Monitoring writes a series only when there was traffic: once requests show up, a
missing 5xx class means zero errors, but no request series at all means no data
(``None``), never zero traffic. Load balancer data arrives up to a few minutes late, so
a window that ends now can be empty; the monitor's ``on_no_data`` decides what that means.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from google.cloud import monitoring_v3

from scripts.metrics import LiveRoute, MetricsSample, MetricsSourceError, require_fields, route_from_weights

REQUEST_COUNT = "loadbalancing.googleapis.com/https/request_count"
BACKEND_LATENCIES = "loadbalancing.googleapis.com/https/backend_latencies"
RESOURCE_TYPE = "https_lb_rule"
CODE_CLASS_LABEL = "response_code_class"
SERVER_ERROR_CLASS = "500"
PERIOD_S = 60

Aligner = monitoring_v3.Aggregation.Aligner
Reducer = monitoring_v3.Aggregation.Reducer


class CloudMonitoringSource:
    """Reads one colour's backend service: requests by response code class, p99 backend latency."""

    def __init__(
        self, client: Any, project: str, url_map: str, backend_services: Mapping[str, str], url_maps: Any = None
    ) -> None:
        self.client = client
        self.project = project
        self.url_map = url_map
        self.backend_services = dict(backend_services)
        self.url_maps = url_maps  # compute_v1.UrlMapsClient, made on first use

    def live_route(self) -> LiveRoute:
        """The production URL map's default route as Compute Engine holds it (``urlMaps.get``)."""
        from google.api_core.exceptions import GoogleAPIError
        from google.cloud import compute_v1

        if self.url_maps is None:
            self.url_maps = compute_v1.UrlMapsClient()
        try:
            url_map = self.url_maps.get(project=self.project, url_map=self.url_map)
        except GoogleAPIError as exc:
            raise MetricsSourceError(f"reading URL map {self.url_map} in {self.project} failed: {exc}") from exc
        weighted = [(w.backend_service, w.weight) for w in url_map.default_route_action.weighted_backend_services]
        if not weighted and url_map.default_service:
            weighted = [(url_map.default_service, 1)]
        suffixes = {color: f"/backendServices/{name}" for color, name in self.backend_services.items()}
        return route_from_weights(weighted, suffixes, f"URL map {self.url_map}")

    def query(self, metric: str, color: str, start: datetime, end: datetime) -> monitoring_v3.ListTimeSeriesRequest:
        """The ListTimeSeries request for one metric of one colour over ``[start, end]`` (one period)."""
        if color not in self.backend_services:
            raise MetricsSourceError(f"metrics.backend_services has no {color!r}; has {sorted(self.backend_services)}")
        period = timedelta(seconds=_period_s(start, end))
        metric_filter = (
            f'metric.type = "{metric}" AND resource.type = "{RESOURCE_TYPE}" '
            f'AND resource.labels.url_map_name = "{self.url_map}" '
            f'AND resource.labels.backend_target_name = "{self.backend_services[color]}"'
        )
        if metric == REQUEST_COUNT:
            aggregation = monitoring_v3.Aggregation(
                alignment_period=period,
                per_series_aligner=Aligner.ALIGN_DELTA,
                cross_series_reducer=Reducer.REDUCE_SUM,
                group_by_fields=[f"metric.labels.{CODE_CLASS_LABEL}"],
            )
        else:
            # The service merges the latency distributions of every series before taking p99.
            aggregation = monitoring_v3.Aggregation(
                alignment_period=period,
                per_series_aligner=Aligner.ALIGN_DELTA,
                cross_series_reducer=Reducer.REDUCE_PERCENTILE_99,
            )
        return monitoring_v3.ListTimeSeriesRequest(
            name=f"projects/{self.project}",
            filter=metric_filter,
            interval=monitoring_v3.TimeInterval(start_time=end - period, end_time=end),
            aggregation=aggregation,
            view=monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
        )

    def sample(self, color: str, start: datetime, end: datetime) -> MetricsSample:
        counts = self.query(REQUEST_COUNT, color, start, end)
        by_class: dict[str, int] = {}
        for series in self._series(counts):
            code_class = series.metric.labels.get(CODE_CLASS_LABEL, "")
            for point in series.points:
                by_class[code_class] = by_class.get(code_class, 0) + int(point.value.int64_value)
        requests = sum(by_class.values()) if by_class else None
        errors = None if requests is None else by_class.get(SERVER_ERROR_CLASS, 0)
        latencies = [
            point.value.double_value
            for series in self._series(self.query(BACKEND_LATENCIES, color, start, end))
            for point in series.points
        ]
        return MetricsSample(
            color=color,
            start=end - timedelta(seconds=_period_s(start, end)),
            end=end,
            requests=requests,
            errors=errors,
            # The worst period's p99 (one period unless the window straddles a boundary).
            p99_ms=max(latencies) if latencies else None,
        )

    def _series(self, request: monitoring_v3.ListTimeSeriesRequest) -> Iterable[monitoring_v3.TimeSeries]:
        """Every series of every page (the client's pager follows ``next_page_token``)."""
        return self.client.list_time_series(request=request)


def _period_s(start: datetime, end: datetime) -> int:
    """The window in whole minutes, at least one (load balancer metrics are per minute)."""
    return max(PERIOD_S, math.ceil((end - start).total_seconds() / PERIOD_S) * PERIOD_S)


def from_outputs(
    metrics: Mapping[str, Any], client: Any = None, url_maps: Any = None, **_: Any
) -> CloudMonitoringSource:
    """Build the source from the stack's ``metrics`` output (``client``, ``url_maps``: tests pass their own)."""
    require_fields(
        metrics, "cloud_monitoring", ("project", "url_map", "backend_services"), per_color="backend_services"
    )
    backend_services = metrics["backend_services"]
    if client is None:
        client = monitoring_v3.MetricServiceClient()
    return CloudMonitoringSource(
        client, str(metrics["project"]), str(metrics["url_map"]), backend_services, url_maps=url_maps
    )
