"""The three clouds faked at their SDKs' API boundary, and the app they route to, on 127.0.0.1.

Each fake holds what the provider holds for one stack: the load balancer's route as its API
reads back (the control plane), the route its front ends actually apply (the data plane,
which the app server below follows), each colour's health and the traffic each colour
gets. Their methods have the real clients' signatures and answer with the client
libraries' own response types (``compute_v1``/``run_v2``/``monitoring_v3`` messages,
``azure-mgmt-*`` and ``azure-monitor-query`` models); AWS is moto. :func:`apply` is what a
``pulumi up`` of the stack does to the cloud; a test makes the cloud misbehave by flags.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any

import boto3
from azure.mgmt.appcontainers import models as apps_models
from azure.mgmt.network import models as network_models
from azure.monitor.query import LogsQueryResult, LogsTable
from google.api import metric_pb2
from google.cloud import compute_v1, monitoring_v3, run_v2

COLORS = ("blue", "green")


def other(color: str) -> str:
    return "green" if color == "blue" else "blue"


@dataclass
class Traffic:
    """What a colour's production traffic looks like to the provider's metrics."""

    requests: int = 0
    errors: int = 0
    p99_ms: float = 40.0


@dataclass
class Cloud:
    """State every fake cloud shares; subclasses answer their SDKs from it."""

    route: dict[str, int] = field(default_factory=lambda: {"blue": 100, "green": 0})  # what the API reads back
    served: dict[str, int] = field(default_factory=lambda: {"blue": 100, "green": 0})  # what the front ends do
    healthy: dict[str, bool] = field(default_factory=lambda: {"blue": True, "green": True})
    traffic: dict[str, Traffic] = field(default_factory=lambda: {c: Traffic() for c in COLORS})
    versions: dict[str, str] = field(default_factory=lambda: {"blue": "1.0.0", "green": "1.0.0"})
    idle: str = "green"
    # How each colour's production traffic fares (per minute) once it has some.
    profile: dict[str, Traffic] = field(default_factory=lambda: {c: Traffic(1000, 0, 40.0) for c in COLORS})
    # Misbehaviour: the API never shows a route change; the front ends apply one only after
    # ``lag_s`` (never, if None); the colour that dies as soon as traffic moves off it.
    route_stuck: bool = False
    lag_s: float | None = 0.0
    dies_on_switch: str | None = None
    _next: tuple[float, dict[str, int]] | None = None

    def apply(self, config: Mapping[str, str]) -> None:
        """What ``pulumi up`` with this stack config does to the cloud."""
        live = config.get("live_color", "blue")
        percent = int(config.get("live_traffic_percent", "100"))
        self.versions = {c: config.get(f"{c}_version", "1.0.0") for c in COLORS}
        self.idle = other(live)
        weights = {live: percent, other(live): 100 - percent}
        if weights != self.route and self.dies_on_switch == other(live):
            self.healthy[other(live)] = False
        if not self.route_stuck:
            self.route = weights
        if self.lag_s is not None:
            self._next = (time.monotonic() + self.lag_s, weights)
        self.front_ends()

    def front_ends(self) -> dict[str, int]:
        """The weights the front ends apply now (a pending change lands ``lag_s`` after the up)."""
        if self._next is not None and time.monotonic() >= self._next[0]:
            self.served, self._next = dict(self._next[1]), None
            for color in COLORS:
                share, fares = self.served[color], self.profile[color]
                self.traffic[color] = (
                    Traffic(fares.requests * share // 100, fares.errors * share // 100, fares.p99_ms)
                    if share
                    else Traffic()
                )
        return self.served


# -- the app behind every cloud: one colour per answer, as the data plane routes ------------------


class AppServer:
    """``/live/...`` answers as the colour the cloud's front ends send prod to, ``/preview/...`` as the idle one."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.requests = count()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                color = server.color_for(self.path)
                body = json.dumps({"status": "ok", "color": color, "version": server.cloud.versions[color]}).encode()
                self.send_response(200 if server.cloud.healthy[color] else 503)
                self.send_header("X-App-Color", color)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def color_for(self, path: str) -> str:
        if path.startswith("/preview"):
            return self.cloud.idle
        n = next(self.requests) % 100
        return "blue" if n < self.cloud.front_ends()["blue"] else "green"

    def url(self, route: str) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/{route}"

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


# -- GCP: Compute Engine (URL map, backend services, NEGs), Cloud Run, Cloud Monitoring ------------

GCP_PROJECT = "shop-prod-1234"
GCP_REGION = "europe-west1"
COMPUTE = "https://www.googleapis.com/compute/v1"


@dataclass
class GcpCloud(Cloud):
    url_map: str = "prod-bluegreen-urlmap-a1b2c3d"

    def backend(self, color: str) -> str:
        return f"prod-bluegreen-{color}-backend-a1b2c3d"

    def neg(self, color: str) -> str:
        return f"prod-bluegreen-{color}-neg-a1b2c3d"

    def run_service(self, color: str) -> str:
        return f"prod-bluegreen-{color}-run-a1b2c3d"

    @property
    def metrics(self) -> dict[str, Any]:
        return {
            "source": "cloud_monitoring",
            "project": GCP_PROJECT,
            "url_map": self.url_map,
            "backend_services": {c: self.backend(c) for c in COLORS},
        }

    def options(self) -> dict[str, Any]:
        """The clients the metrics source takes (``from_outputs`` keyword arguments)."""
        return {
            "client": self,
            "url_maps": self,
            "backends": _GcpBackends(self),
            "negs": self,
            "run_services": self,
            "run_revisions": self,
        }

    # compute_v1.UrlMapsClient
    def get(
        self,
        *,
        project: str,
        url_map: str | None = None,
        region: str | None = None,
        network_endpoint_group: str | None = None,
    ) -> Any:
        assert project == GCP_PROJECT
        if url_map is not None:
            assert url_map == self.url_map
            weighted = [
                compute_v1.WeightedBackendService(
                    backend_service=f"{COMPUTE}/projects/{project}/global/backendServices/{self.backend(c)}",
                    weight=self.route[c],
                )
                for c in COLORS
            ]
            return compute_v1.UrlMap(
                name=url_map, default_route_action=compute_v1.HttpRouteAction(weighted_backend_services=weighted)
            )
        # compute_v1.RegionNetworkEndpointGroupsClient
        assert region == GCP_REGION and network_endpoint_group is not None
        color = next(c for c in COLORS if self.neg(c) == network_endpoint_group)
        return compute_v1.NetworkEndpointGroup(
            name=network_endpoint_group,
            network_endpoint_type="SERVERLESS",
            cloud_run=compute_v1.NetworkEndpointGroupCloudRun(service=self.run_service(color)),
        )

    # run_v2.ServicesClient
    def get_service(self, *, name: str) -> run_v2.Service:
        color = next(c for c in COLORS if name.endswith(f"/services/{self.run_service(c)}"))
        assert name == run_v2.ServicesClient.service_path(GCP_PROJECT, GCP_REGION, self.run_service(color))
        revision = f"{name}/revisions/{self.run_service(color)}-{self.versions[color].replace('.', '-')}"
        state = run_v2.Condition.State
        ready = self.healthy[color]
        condition = run_v2.Condition(
            type_="Ready",
            state=state.CONDITION_SUCCEEDED if ready else state.CONDITION_FAILED,
            message="" if ready else "The user-provided container failed the configured startup probe checks.",
        )
        return run_v2.Service(
            name=name,
            terminal_condition=condition,
            latest_ready_revision=revision,
            latest_created_revision=revision,
            traffic_statuses=[
                run_v2.TrafficTargetStatus(
                    type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST, percent=100
                )
            ],
        )

    # run_v2.RevisionsClient
    def get_revision(self, *, name: str) -> run_v2.Revision:
        color = next(c for c in COLORS if f"/services/{self.run_service(c)}/" in name)
        state = run_v2.Condition.State
        healthy = self.healthy[color]
        return run_v2.Revision(
            name=name,
            conditions=[
                run_v2.Condition(
                    type_="ContainerHealthy",
                    state=state.CONDITION_SUCCEEDED if healthy else state.CONDITION_FAILED,
                    severity=run_v2.Condition.Severity.ERROR,
                )
            ],
            scaling_status=run_v2.RevisionScalingStatus(desired_min_instance_count=2),
        )

    # monitoring_v3.MetricServiceClient
    def list_time_series(self, *, request: monitoring_v3.ListTimeSeriesRequest) -> Iterator[monitoring_v3.TimeSeries]:
        backend = re.search(r'backend_target_name = "([^"]+)"', request.filter).group(1)
        color = next(c for c in COLORS if self.backend(c) == backend)
        self.front_ends()
        traffic = self.traffic[color]
        interval = monitoring_v3.TimeInterval(
            start_time=request.interval.start_time, end_time=request.interval.end_time
        )
        if not traffic.requests:
            return iter([])
        if "request_count" in request.filter:
            classes = {"200": traffic.requests - traffic.errors, "500": traffic.errors}
            return iter(
                monitoring_v3.TimeSeries(
                    metric=metric_pb2.Metric(
                        type="loadbalancing.googleapis.com/https/request_count", labels={"response_code_class": code}
                    ),
                    points=[monitoring_v3.Point(interval=interval, value=monitoring_v3.TypedValue(int64_value=n))],
                )
                for code, n in classes.items()
                if n
            )
        point = monitoring_v3.Point(interval=interval, value=monitoring_v3.TypedValue(double_value=traffic.p99_ms))
        return iter([monitoring_v3.TimeSeries(points=[point])])


class _GcpBackends:
    """compute_v1.BackendServicesClient: each production backend service has its colour's serverless NEG."""

    def __init__(self, cloud: GcpCloud) -> None:
        self.cloud = cloud

    def get(self, *, project: str, backend_service: str) -> compute_v1.BackendService:
        color = next(c for c in COLORS if self.cloud.backend(c) == backend_service)
        group = f"{COMPUTE}/projects/{project}/regions/{GCP_REGION}/networkEndpointGroups/{self.cloud.neg(color)}"
        return compute_v1.BackendService(name=backend_service, backends=[compute_v1.Backend(group=group)])

    def get_health(self, **_: Any) -> compute_v1.BackendServiceGroupHealth:
        raise AssertionError("serverless NEGs report no load balancer health: getHealth must not be asked")


# -- Azure: Application Gateway (network), Container Apps, Log Analytics --------------------------

AZURE_GATEWAY_ID = (
    "/subscriptions/00000000-0000-0000-0000-00000000005b/resourceGroups/prod-rg"
    "/providers/Microsoft.Network/applicationGateways/prod-agw"
)


@dataclass
class AzureCloud(Cloud):
    gateway_state: str = "Succeeded"
    pending_forever: bool = False  # the gateway stays "Updating" after every change

    @property
    def metrics(self) -> dict[str, Any]:
        return {
            "source": "azure_monitor",
            "gateway_id": AZURE_GATEWAY_ID,
            "pools": {c: f"{c}-pool" for c in COLORS},
            "prod_rule": "prod",
            "apps": {c: f"prod-{c}" for c in COLORS},
        }

    def options(self) -> dict[str, Any]:
        return {"client": self, "network": self, "container_apps": self}

    def apply(self, config: Mapping[str, str]) -> None:
        super().apply(config)
        self.gateway_state = "Updating" if self.pending_forever else "Succeeded"

    # NetworkManagementClient: .application_gateways.get / .begin_backend_health
    @property
    def application_gateways(self) -> AzureCloud:
        return self

    def pool_id(self, color: str) -> str:
        return f"{AZURE_GATEWAY_ID}/backendAddressPools/{color}-pool"

    def get(self, resource_group_name: str, name: str) -> Any:
        if resource_group_name == "prod-rg" and name == "prod-agw":
            live = max(COLORS, key=lambda c: self.route[c])
            return network_models.ApplicationGateway(
                {
                    "properties": {
                        "provisioningState": self.gateway_state,
                        "requestRoutingRules": [
                            {"name": rule, "properties": {"backendAddressPool": {"id": self.pool_id(color)}}}
                            for rule, color in (("prod", live), ("preview", other(live)))
                        ],
                    }
                }
            )
        # ContainerAppsAPIClient.container_apps.get(resource_group_name, container_app_name)
        color = next(c for c in COLORS if name == f"prod-{c}")
        revision = f"prod-{color}--v{self.versions[color].replace('.', '-')}"
        ready = self.healthy[color]
        return apps_models.ContainerApp(
            {
                "location": "westeurope",
                "name": name,
                "properties": {
                    "provisioningState": "Succeeded",
                    "runningStatus": "Running",
                    "latestRevisionName": revision,
                    "latestReadyRevisionName": revision if ready else f"prod-{color}--previous",
                },
            }
        )

    def begin_backend_health(self, resource_group_name: str, application_gateway_name: str) -> _Done:
        assert (resource_group_name, application_gateway_name) == ("prod-rg", "prod-agw")
        return _Done(
            network_models.ApplicationGatewayBackendHealth(
                {
                    "backendAddressPools": [
                        {
                            "backendAddressPool": {"id": self.pool_id(c)},
                            "backendHttpSettingsCollection": [
                                {"servers": [{"address": "10.60.4.10", "health": "Up" if self.healthy[c] else "Down"}]}
                            ],
                        }
                        for c in COLORS
                    ]
                }
            )
        )

    # ContainerAppsAPIClient: .container_apps / .container_apps_revision_replicas
    @property
    def container_apps(self) -> AzureCloud:
        return self

    @property
    def container_apps_revision_replicas(self) -> AzureCloud:
        return self

    def list_replicas(self, resource_group_name: str, container_app_name: str, revision_name: str) -> Any:
        color = next(c for c in COLORS if container_app_name == f"prod-{c}")
        ready = self.healthy[color]
        return apps_models.ReplicaCollection(
            {
                "value": [
                    {
                        "name": f"{revision_name}-{i}",
                        "properties": {
                            "runningState": "Running" if ready else "NotRunning",
                            "containers": [{"name": "app", "ready": ready, "runningState": "Running"}],
                        },
                    }
                    for i in range(2)
                ]
            }
        )

    # LogsQueryClient
    def query_resource(self, resource_id: str, query: str, *, timespan: Any, server_timeout: int | None = None) -> Any:
        assert resource_id == AZURE_GATEWAY_ID
        pool = re.search(r'BackendPoolName == "([^"]+)"', query).group(1)
        self.front_ends()
        traffic = self.traffic[pool.removesuffix("-pool")]
        columns = {"columns": ["requests", "errors", "p99_s"], "columns_types": ["long", "long", "real"]}
        row = [traffic.requests, traffic.errors, traffic.p99_ms / 1000 if traffic.requests else None]
        return LogsQueryResult(tables=[LogsTable(name="PrimaryResult", rows=[row], **columns)])


@dataclass
class _Done:
    """An ``LROPoller`` that has finished."""

    value: Any

    def result(self, timeout: float | None = None) -> Any:
        return self.value


# -- AWS: moto's ELBv2 and CloudWatch ------------------------------------------------------------

AWS_REGION = "eu-west-1"


@dataclass
class AwsCloud(Cloud):
    """An ALB with a prod listener weighting two ip target groups, in moto (inside ``mock_aws``)."""

    outputs: dict[str, Any] = field(default_factory=dict)
    listener: str = ""
    groups: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ec2 = boto3.client("ec2", region_name=AWS_REGION)
        self.elbv2 = boto3.client("elbv2", region_name=AWS_REGION)
        self.cloudwatch = boto3.client("cloudwatch", region_name=AWS_REGION)
        vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{i}.0/24", AvailabilityZone=f"{AWS_REGION}{z}")["Subnet"][
                "SubnetId"
            ]
            for i, z in ((1, "a"), (2, "b"))
        ]
        lb = self.elbv2.create_load_balancer(Name="prod-alb", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
        for color in COLORS:
            arn = self.elbv2.create_target_group(
                Name=f"prod-{color}", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip"
            )["TargetGroups"][0]["TargetGroupArn"]
            self.groups[color] = arn
            self.elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": "10.40.1.10"}, {"Id": "10.40.2.10"}])
        self.listener = self.elbv2.create_listener(
            LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=self._forward(self.route)
        )["Listeners"][0]["ListenerArn"]
        self.outputs = {
            "source": "cloudwatch",
            "region": AWS_REGION,
            "load_balancer": lb.split(":loadbalancer/", 1)[1],
            "target_groups": {c: arn.split(":", 5)[5] for c, arn in self.groups.items()},
            "listen_port": 80,
        }

    @property
    def metrics(self) -> dict[str, Any]:
        return self.outputs

    def options(self) -> dict[str, Any]:
        return {}

    def _forward(self, weights: Mapping[str, int]) -> list[dict[str, Any]]:
        groups = [{"TargetGroupArn": self.groups[c], "Weight": weights[c]} for c in COLORS]
        return [{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}]

    def apply(self, config: Mapping[str, str]) -> None:
        before = dict(self.healthy)
        super().apply(config)
        self.elbv2.modify_listener(ListenerArn=self.listener, DefaultActions=self._forward(self.route))
        for color in COLORS:
            if before[color] and not self.healthy[color]:  # its tasks stopped: the ALB deregisters them
                targets = self.elbv2.describe_target_health(TargetGroupArn=self.groups[color])
                ids = [{"Id": t["Target"]["Id"]} for t in targets["TargetHealthDescriptions"]]
                self.elbv2.deregister_targets(TargetGroupArn=self.groups[color], Targets=ids)
        self.publish()

    def publish(self) -> None:
        """This minute's CloudWatch datapoints for each colour's target group."""
        at = datetime.now(UTC) - timedelta(seconds=1)
        for color in COLORS:
            traffic = self.traffic[color]
            dims = [
                {"Name": "TargetGroup", "Value": self.outputs["target_groups"][color]},
                {"Name": "LoadBalancer", "Value": self.outputs["load_balancer"]},
            ]
            data = [("RequestCount", traffic.requests), ("HTTPCode_Target_5XX_Count", traffic.errors)]
            self.cloudwatch.put_metric_data(
                Namespace="AWS/ApplicationELB",
                MetricData=[
                    {"MetricName": name, "Dimensions": dims, "Timestamp": at, "Value": value, "Unit": "Count"}
                    for name, value in data
                    if value
                ]
                or [{"MetricName": "ActiveConnectionCount", "Dimensions": dims, "Timestamp": at, "Value": 0}],
            )
