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

Health (:meth:`CloudMonitoringSource.health`) is the platform's own view, read from what the
colour's production backend service points at: each serverless NEG backend counts as one
target, healthy when the Cloud Run service it names is ready and serving its newest
revision (``services.get``: ``terminal_condition``, ``reconciling``, ``latest_ready_revision``
against ``latest_created_revision``, ``traffic_statuses``; ``revisions.get``: the revision's
conditions). Load balancer health checks do not apply to serverless NEGs (Google: a backend
service with a serverless NEG takes no health check, and ``backendServices.getHealth``
reports nothing for one), so they are not asked; any other backend (instance groups, zonal
NEGs) counts its endpoints as ``backendServices.getHealth`` reports them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from google.cloud import monitoring_v3

from scripts.metrics import (
    ColorHealth,
    LiveRoute,
    MetricsSample,
    MetricsSourceError,
    require_fields,
    route_from_weights,
)

REQUEST_COUNT = "loadbalancing.googleapis.com/https/request_count"
BACKEND_LATENCIES = "loadbalancing.googleapis.com/https/backend_latencies"
RESOURCE_TYPE = "https_lb_rule"
CODE_CLASS_LABEL = "response_code_class"
SERVER_ERROR_CLASS = "500"
PERIOD_S = 60
# The URL map reads back changed as soon as its ``urlMaps.update`` operation is done, but
# the Google Front Ends serve the old map for seconds to tens of seconds more (about 8 s
# observed from the weight change to the new backend answering in argoproj/argo-rollouts
# issue 4710); verification waits for answers through the live URL that name the new
# colour, where the app names one, and gives the front ends three minutes.
VERIFY_TIMEOUT_S = 180.0
CLOUD = "gcp"
# Google's metrics list: the https load balancer metrics are "sampled every 60 seconds.
# After sampling, data is not visible for up to 210 seconds" (backend_latencies; 90 s for
# request_count). A window must reach back past that lag to hold any data, and the bake
# must outlast it by a few minutes: the 60 s / 120 s defaults would see nothing.
MONITOR_DEFAULTS = {"window_s": 300, "bake_s": 600}
REGIONAL_NEG = re.compile(r"projects/([^/]+)/regions/([^/]+)/networkEndpointGroups/([^/]+)$")

Aligner = monitoring_v3.Aggregation.Aligner
Reducer = monitoring_v3.Aggregation.Reducer


class CloudMonitoringSource:
    """Reads one colour's backend service: requests by response code class, p99 backend latency."""

    verify_timeout_s = VERIFY_TIMEOUT_S

    def __init__(
        self,
        client: Any,
        project: str,
        url_map: str,
        backend_services: Mapping[str, str],
        url_maps: Any = None,
        backends: Any = None,
        negs: Any = None,
        run_services: Any = None,
        run_revisions: Any = None,
    ) -> None:
        self.client = client
        self.project = project
        self.url_map = url_map
        self.backend_services = dict(backend_services)
        # Made on first use: compute_v1.UrlMapsClient, BackendServicesClient,
        # RegionNetworkEndpointGroupsClient; run_v2.ServicesClient, RevisionsClient.
        self.url_maps = url_maps
        self.backends = backends
        self.negs = negs
        self.run_services = run_services
        self.run_revisions = run_revisions

    def health(self, color: str) -> ColorHealth:
        """The colour's production backends as Google sees them (see the module docstring)."""
        from google.api_core.exceptions import GoogleAPIError
        from google.cloud import compute_v1

        name = self._backend_name(color)
        if self.backends is None:
            self.backends = compute_v1.BackendServicesClient()
        try:
            service = self.backends.get(project=self.project, backend_service=name)
            units = [unit for backend in service.backends for unit in self._backend_units(name, backend.group)]
        except GoogleAPIError as exc:
            raise MetricsSourceError(f"reading the health of backend service {name} failed: {exc}") from exc
        if not units:
            return ColorHealth(color, 0, 0, f"{color}: backend service {name} has no backends")
        healthy = sum(ok for ok, _why in units)
        details = "; ".join(why for _ok, why in units)
        return ColorHealth(color, healthy, len(units), f"{color}: {healthy}/{len(units)} healthy ({details})")

    def _backend_units(self, backend_service: str, group: str) -> list[tuple[bool, str]]:
        """(healthy, why) per target behind one backend: a serverless NEG is one, others per endpoint."""
        from google.cloud import compute_v1

        neg = REGIONAL_NEG.search(group)
        if neg is not None:
            project, region, neg_name = neg.groups()
            if self.negs is None:
                self.negs = compute_v1.RegionNetworkEndpointGroupsClient()
            endpoint_group = self.negs.get(project=project, region=region, network_endpoint_group=neg_name)
            if endpoint_group.network_endpoint_type == "SERVERLESS":
                if not endpoint_group.cloud_run.service:
                    return [(False, f"serverless NEG {neg_name} names no Cloud Run service")]
                return [self._cloud_run(project, region, endpoint_group.cloud_run.service, neg_name)]
        reference = compute_v1.ResourceGroupReference(group=group)
        report = self.backends.get_health(
            project=self.project, backend_service=backend_service, resource_group_reference_resource=reference
        )
        short = group.rsplit("/", 1)[-1]
        states = [
            (status.health_state == "HEALTHY", f"{short} {status.ip_address or status.instance}: {status.health_state}")
            for status in report.health_status
        ]
        return states or [(False, f"{short}: no endpoint reports health")]

    def _cloud_run(self, project: str, region: str, name: str, neg: str) -> tuple[bool, str]:
        """A serverless NEG's Cloud Run service: ready, rolled out, and serving its newest revision."""
        from google.cloud import run_v2

        if self.run_services is None:
            self.run_services = run_v2.ServicesClient()
        service = self.run_services.get_service(name=run_v2.ServicesClient.service_path(project, region, name))
        succeeded = run_v2.Condition.State.CONDITION_SUCCEEDED
        problems = []
        ready = service.terminal_condition
        if ready.state != succeeded:
            problems.append(f"{ready.type_ or 'Ready'} is {ready.state.name}: {ready.message or ready.reason.name}")
        if service.reconciling:
            problems.append("still rolling out (reconciling)")
        latest, newest = _short(service.latest_ready_revision), _short(service.latest_created_revision)
        if not latest:
            problems.append("no revision is ready")
        elif newest and newest != latest:
            problems.append(f"its newest revision {newest} is not ready ({latest} still serves)")
        latest_type = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
        share = sum(
            t.percent for t in service.traffic_statuses if t.type_ == latest_type or (latest and t.revision == latest)
        )
        if latest and service.traffic_statuses and share != 100:
            problems.append(f"{latest} has {share}% of the service's traffic")
        minimum = ""
        if latest:
            if self.run_revisions is None:
                self.run_revisions = run_v2.RevisionsClient()
            revision = self.run_revisions.get_revision(name=service.latest_ready_revision)
            info = (run_v2.Condition.Severity.INFO, run_v2.Condition.Severity.WARNING)
            problems += [
                f"revision {latest} {c.type_} is {c.state.name}: {c.message or c.reason.name}"
                for c in revision.conditions
                if c.state == run_v2.Condition.State.CONDITION_FAILED and c.severity not in info
            ]
            if "scaling_status" in revision:
                minimum = f", at least {revision.scaling_status.desired_min_instance_count} instance(s)"
        where = f"serverless NEG {neg} -> Cloud Run {name}"
        if problems:
            return False, f"{where}: {'; '.join(problems)}"
        return True, f"{where}: revision {latest} ready with 100% of its traffic{minimum}"

    def _backend_name(self, color: str) -> str:
        if color not in self.backend_services:
            raise MetricsSourceError(f"metrics.backend_services has no {color!r}; has {sorted(self.backend_services)}")
        return self.backend_services[color]

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
        self._backend_name(color)
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


def _short(revision: str) -> str:
    """A revision's own name from its full resource name (``projects/.../revisions/<name>``)."""
    return revision.rsplit("/", 1)[-1]


def _period_s(start: datetime, end: datetime) -> int:
    """The window in whole minutes, at least one (load balancer metrics are per minute)."""
    return max(PERIOD_S, math.ceil((end - start).total_seconds() / PERIOD_S) * PERIOD_S)


def from_outputs(
    metrics: Mapping[str, Any],
    client: Any = None,
    url_maps: Any = None,
    backends: Any = None,
    negs: Any = None,
    run_services: Any = None,
    run_revisions: Any = None,
    **_: Any,
) -> CloudMonitoringSource:
    """Build the source from the stack's ``metrics`` output (the clients: tests pass their own)."""
    require_fields(
        metrics, "cloud_monitoring", ("project", "url_map", "backend_services"), per_color="backend_services"
    )
    backend_services = metrics["backend_services"]
    if client is None:
        client = monitoring_v3.MetricServiceClient()
    return CloudMonitoringSource(
        client,
        str(metrics["project"]),
        str(metrics["url_map"]),
        backend_services,
        url_maps=url_maps,
        backends=backends,
        negs=negs,
        run_services=run_services,
        run_revisions=run_revisions,
    )
