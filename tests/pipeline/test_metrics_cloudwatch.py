"""The CloudWatch source against moto: metrics put per target group are read back per colour."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from scripts.metrics import MetricsSourceError, metrics_source_for

REGION = "eu-west-1"
LB = "app/bluegreen-alb/50dc6c495c0c9188"
TGS = {"blue": "targetgroup/bluegreen-blue/73e2d6bc24d8a067", "green": "targetgroup/bluegreen-green/943f017f100becff"}
OUTPUTS = {"source": "cloudwatch", "region": REGION, "load_balancer": LB, "target_groups": TGS}


def put(client, color: str | None, name: str, value: float, at: datetime, load_balancer: str = LB) -> None:
    """A datapoint per target group (``color``) or, with ``color`` None, per load balancer only."""
    dimensions = [{"Name": "LoadBalancer", "Value": load_balancer}]
    if color is not None:
        dimensions.insert(0, {"Name": "TargetGroup", "Value": TGS[color]})
    client.put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[{"MetricName": name, "Dimensions": dimensions, "Timestamp": at, "Value": value, "Unit": "Count"}],
    )


@pytest.fixture
def cloudwatch():
    with mock_aws():
        yield boto3.client("cloudwatch", region_name=REGION)


def test_counts_are_read_back_per_target_group(cloudwatch) -> None:
    end = datetime.now(UTC).replace(microsecond=0)
    at = end - timedelta(seconds=30)
    put(cloudwatch, "blue", "RequestCount", 1000, at)
    put(cloudwatch, "blue", "HTTPCode_Target_5XX_Count", 3, at)
    put(cloudwatch, "blue", "TargetConnectionErrorCount", 2, at)
    put(cloudwatch, "green", "RequestCount", 400, at)
    put(cloudwatch, "green", "HTTPCode_Target_5XX_Count", 40, at)

    source = metrics_source_for(OUTPUTS)
    blue = source.sample("blue", end - timedelta(seconds=60), end)
    green = source.sample("green", end - timedelta(seconds=60), end)

    # A failed target connection is a 502 the ALB made: it counts against the colour.
    assert (blue.requests, blue.errors) == (1000, 5)
    assert blue.error_rate == pytest.approx(0.005)
    # green had no connection errors: CloudWatch omits zero counts, so only target 5xx count
    assert (green.requests, green.errors) == (400, 40)
    assert green.error_rate == pytest.approx(0.1)


def alb(weights: dict[str, int]) -> tuple[dict, Callable[[int, int], None]]:
    """An ALB, two target groups and a prod listener on :80 in moto; the metrics output and a re-weigher."""
    ec2 = boto3.client("ec2", region_name=REGION)
    elbv2 = boto3.client("elbv2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    lb = elbv2.create_load_balancer(Name="bluegreen-alb", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    groups = {
        color: elbv2.create_target_group(Name=color, Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip")[
            "TargetGroups"
        ][0]["TargetGroupArn"]
        for color in ("blue", "green")
    }

    def forward(blue: int, green: int) -> list[dict]:
        weighted = [
            {"TargetGroupArn": groups["blue"], "Weight": blue},
            {"TargetGroupArn": groups["green"], "Weight": green},
        ]
        return [{"Type": "forward", "ForwardConfig": {"TargetGroups": weighted}}]

    prod = elbv2.create_listener(
        LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=forward(weights["blue"], weights["green"])
    )["Listeners"][0]["ListenerArn"]

    def reweigh(blue: int, green: int) -> None:
        elbv2.modify_listener(ListenerArn=prod, DefaultActions=forward(blue, green))

    outputs = {
        **OUTPUTS,
        "load_balancer": lb.split(":loadbalancer/", 1)[1],
        "target_groups": {c: arn.split(":", 5)[5] for c, arn in groups.items()},
        "listen_port": 80,
    }
    return outputs, reweigh


def test_load_balancer_5xx_count_for_the_colour_with_all_traffic_only(cloudwatch) -> None:
    """HTTPCode_ELB_5XX_Count exists per load balancer only: attributed while one colour has it all."""
    outputs, reweigh = alb({"blue": 0, "green": 100})
    source = metrics_source_for(outputs)
    tgs = outputs["target_groups"]
    end = datetime.now(UTC).replace(microsecond=0)
    at = end - timedelta(seconds=30)
    for color, requests in (("blue", 0), ("green", 1000)):
        if requests:
            cloudwatch.put_metric_data(
                Namespace="AWS/ApplicationELB",
                MetricData=[
                    {
                        "MetricName": "RequestCount",
                        "Dimensions": [
                            {"Name": "TargetGroup", "Value": tgs[color]},
                            {"Name": "LoadBalancer", "Value": outputs["load_balancer"]},
                        ],
                        "Timestamp": at,
                        "Value": requests,
                    }
                ],
            )
    put(cloudwatch, None, "HTTPCode_ELB_5XX_Count", 60, at, outputs["load_balancer"])

    green = source.sample("green", end - timedelta(seconds=60), end)
    assert (green.requests, green.errors) == (1000, 60), "green has all prod traffic: the ALB's 504s are green's"
    assert source.sample("blue", end - timedelta(seconds=60), end).errors is None  # no traffic, no data

    # A minute that began before the window (the switch) may hold the other colour's errors.
    assert source.sample("green", end - timedelta(seconds=30), end).errors == 0

    reweigh(50, 50)  # a split: the load balancer's count cannot be told apart by colour
    assert source.sample("green", end - timedelta(seconds=60), end).errors == 0


def test_a_dead_colour_with_all_traffic_is_all_errors_not_no_data(cloudwatch) -> None:
    """No request reached green's targets, but the ALB answered 503 for every one: that is a breach."""
    outputs, _reweigh = alb({"blue": 0, "green": 100})
    end = datetime.now(UTC).replace(microsecond=0)
    put(cloudwatch, None, "HTTPCode_ELB_5XX_Count", 75, end - timedelta(seconds=20), outputs["load_balancer"])
    sample = metrics_source_for(outputs).sample("green", end - timedelta(seconds=60), end)
    assert (sample.requests, sample.errors) == (75, 75) and sample.error_rate == 1.0


def test_missing_data_is_none_not_zero(cloudwatch) -> None:
    end = datetime.now(UTC).replace(microsecond=0)
    put(cloudwatch, "blue", "RequestCount", 10, end - timedelta(seconds=20))
    sample = metrics_source_for(OUTPUTS).sample("green", end - timedelta(seconds=60), end)
    assert sample.requests is None
    assert sample.errors is None
    assert sample.p99_ms is None
    assert sample.error_rate is None
    assert not sample.has_data


def test_data_outside_the_window_is_not_counted(cloudwatch) -> None:
    end = datetime.now(UTC).replace(microsecond=0)
    put(cloudwatch, "blue", "RequestCount", 999, end - timedelta(minutes=10))
    sample = metrics_source_for(OUTPUTS).sample("blue", end - timedelta(seconds=60), end)
    assert sample.requests is None


def test_p99_is_read_from_extended_statistics_in_milliseconds() -> None:
    """moto computes no percentiles, so the p99 request and its parsing are checked with botocore's Stubber."""
    client = boto3.client("cloudwatch", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    end = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    dims = [{"Name": "TargetGroup", "Value": TGS["green"]}, {"Name": "LoadBalancer", "Value": LB}]
    with Stubber(client) as stub:
        stub.add_response("get_metric_data", {"MetricDataResults": []})
        stub.add_response(
            "get_metric_statistics",
            {
                "Label": "TargetResponseTime",
                "Datapoints": [
                    {"Timestamp": end - timedelta(seconds=120), "ExtendedStatistics": {"p99": 0.25}},
                    {"Timestamp": end - timedelta(seconds=60), "ExtendedStatistics": {"p99": 0.61}},
                ],
            },
            {
                "Namespace": "AWS/ApplicationELB",
                "MetricName": "TargetResponseTime",
                "Dimensions": dims,
                "StartTime": end - timedelta(seconds=180),
                "EndTime": end,
                "Period": 180,
                "ExtendedStatistics": ["p99"],
            },
        )
        sample = metrics_source_for(OUTPUTS, client=client).sample("green", end - timedelta(seconds=150), end)
    assert sample.p99_ms == pytest.approx(610.0)
    assert sample.requests is None


@pytest.mark.parametrize(
    "outputs, message",
    [
        ({"source": "cloudwatch", "region": REGION, "target_groups": TGS}, "load_balancer"),
        ({**OUTPUTS, "target_groups": {"blue": "x"}}, "blue and green"),
        ({**OUTPUTS, "source": "nope"}, "no metrics source module"),
    ],
)
def test_bad_metrics_output_is_a_clear_error(outputs, message) -> None:
    with pytest.raises(MetricsSourceError, match=message):
        metrics_source_for(outputs)


def test_health_is_the_target_groups_view(cloudwatch) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    elbv2 = boto3.client("elbv2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    groups = {}
    for color in ("blue", "green"):
        tg = elbv2.create_target_group(Name=color, Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip")
        groups[color] = tg["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=groups["blue"], Targets=[{"Id": "10.0.0.5"}, {"Id": "10.0.0.6"}])
    outputs = {**OUTPUTS, "target_groups": {c: arn.split(":", 5)[5] for c, arn in groups.items()}}
    source = metrics_source_for(outputs)
    blue, green = source.health("blue"), source.health("green")
    assert (blue.healthy, blue.total, blue.ok) == (2, 2, True)
    assert (green.total, green.ok) == (0, False)
    assert "no registered targets" in green.detail


def test_the_live_route_is_the_prod_listener_read_back(cloudwatch) -> None:
    """A switch is verified from the ALB's own listener (moto), not from the stack config."""
    ec2 = boto3.client("ec2", region_name=REGION)
    elbv2 = boto3.client("elbv2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    lb = elbv2.create_load_balancer(Name="bluegreen-alb", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    groups = {
        color: elbv2.create_target_group(Name=color, Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip")[
            "TargetGroups"
        ][0]["TargetGroupArn"]
        for color in ("blue", "green")
    }

    def forward(blue: int, green: int) -> list[dict]:
        weighted = [
            {"TargetGroupArn": groups["blue"], "Weight": blue},
            {"TargetGroupArn": groups["green"], "Weight": green},
        ]
        return [{"Type": "forward", "ForwardConfig": {"TargetGroups": weighted}}]

    prod = elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=forward(100, 0))
    elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=8443, DefaultActions=forward(0, 100))
    outputs = {
        **OUTPUTS,
        "load_balancer": lb.split(":loadbalancer/", 1)[1],
        "target_groups": {c: arn.split(":", 5)[5] for c, arn in groups.items()},
        "listen_port": 80,
    }
    source = metrics_source_for(outputs)
    route = source.live_route()
    assert dict(route.weights) == {"blue": 100, "green": 0} and route.served_by_header is None
    assert "listener :80 sends prod" in route.detail

    elbv2.modify_listener(ListenerArn=prod["Listeners"][0]["ListenerArn"], DefaultActions=forward(25, 75))
    assert dict(source.live_route().weights) == {"blue": 25, "green": 75}

    with pytest.raises(MetricsSourceError, match=r"no listener on port 443 \(has \[80, 8443\]\)"):
        metrics_source_for({**outputs, "listen_port": 443}).live_route()
    with pytest.raises(MetricsSourceError, match="lacks listen_port"):
        metrics_source_for({k: v for k, v in outputs.items() if k != "listen_port"}).live_route()
