"""CloudWatch metrics of an ALB target group, the AWS target's per-colour metrics source.

The AWS component exports ``metrics = {"source": "cloudwatch", "region": ..., "load_balancer": <ALB arn_suffix>,
"target_groups": {"blue": ..., "green": ...}, "listen_port": <prod listener port>}``.
ALB metrics have one-minute resolution, so a window is widened to whole minutes.
CloudWatch publishes a count metric only for minutes in which it was non-zero: once
``RequestCount`` has data, a missing 5xx count means zero errors, but a missing
``RequestCount`` means no data at all (``None``), never zero traffic.

Errors per colour: ``HTTPCode_Target_5XX_Count`` (the app's own 5xx) and
``TargetConnectionErrorCount`` (connections the ALB could not open to a target, each one
a 502 to the client) per target group. The ALB's own 5xx (``HTTPCode_ELB_5XX_Count``:
502/503/504 from a dead or slow colour) has no ``TargetGroup`` dimension, only
``LoadBalancer`` (and ``AvailabilityZone``), so queried per target group it returns
nothing; it is read at load-balancer level and counted for a colour only while the prod
listener sends that colour all traffic (see :meth:`CloudWatchSource.sample`). Source:
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from scripts.metrics import (
    ColorHealth,
    LiveRoute,
    MetricsSample,
    MetricsSourceError,
    require_fields,
    route_from_weights,
)

NAMESPACE = "AWS/ApplicationELB"
PERIOD_S = 60
# Per target group (dimensions TargetGroup + LoadBalancer).
COUNT_METRICS = {
    "requests": "RequestCount",
    "target_5xx": "HTTPCode_Target_5XX_Count",
    "connection_errors": "TargetConnectionErrorCount",
}
# Per load balancer only: CloudWatch has no TargetGroup dimension for it.
ELB_5XX_METRIC = "HTTPCode_ELB_5XX_Count"
ELB_5XX_ID = "elb_5xx"
LATENCY_METRIC = "TargetResponseTime"
# The prod listener's forward weights read back right after ``pulumi up`` (ModifyListener
# has returned); the ALB's nodes pick a rule change up within a short time ("Rule updates
# do not take effect immediately, so requests could be routed using the previous rule
# configuration for a short time": https://docs.aws.amazon.com/elasticloadbalancing/latest/
# application/edit-rule.html). A minute covers the read-back and API retries with room.
VERIFY_TIMEOUT_S = 60.0
CLOUD = "aws"
# ALB metrics come per minute ("measures and sends its metrics in 60-second intervals", the
# CloudWatch metrics page above) and a minute or more late: a window of two whole minutes
# holds the last published one, and the bake sees a few of them.
MONITOR_DEFAULTS = {"window_s": 120, "bake_s": 300}


class CloudWatchSource:
    """Reads one colour's target group: request count, 5xx (target + load balancer), p99."""

    verify_timeout_s = VERIFY_TIMEOUT_S

    def __init__(
        self,
        client: Any,
        load_balancer: str,
        target_groups: Mapping[str, str],
        elbv2: Any = None,
        sts: Any = None,
        listen_port: int | None = None,
    ) -> None:
        self.client = client
        self.load_balancer = load_balancer
        self.target_groups = dict(target_groups)
        self.elbv2 = elbv2
        self.sts = sts
        self.listen_port = listen_port
        self._account: str | None = None

    def _arn(self, suffix: str) -> str:
        """A full ELB ARN from an ``arn_suffix`` (``app/...`` is a load balancer's)."""
        if self._account is None:
            self._account = self.sts.get_caller_identity()["Account"]
        kind = "loadbalancer/" if suffix.startswith(("app/", "net/")) else ""
        return f"arn:aws:elasticloadbalancing:{self.elbv2.meta.region_name}:{self._account}:{kind}{suffix}"

    def health(self, color: str) -> ColorHealth:
        """Target health as the ALB sees it (``describe_target_health``), not a metric that lags."""
        self._dimensions(color)
        arn = self._arn(self.target_groups[color])
        targets = self.elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        states = [t["TargetHealth"]["State"] for t in targets]
        healthy = states.count("healthy")
        counts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states))) or "no registered targets"
        return ColorHealth(color, healthy, len(states), f"{color}: {healthy}/{len(states)} healthy ({counts})")

    def live_route(self) -> LiveRoute:
        """The prod listener's forward weights as the ALB holds them (``describe_listeners``).

        This is the verification: per-target-group ``RequestCount`` has one-minute
        resolution and arrives minutes late, so it is the monitor's evidence, not the switch's.
        """
        if self.listen_port is None:
            raise MetricsSourceError("stack output metrics (cloudwatch) lacks listen_port; run pulumi up first")
        listeners = self.elbv2.describe_listeners(LoadBalancerArn=self._arn(self.load_balancer))["Listeners"]
        prod = next((item for item in listeners if item.get("Port") == self.listen_port), None)
        if prod is None:
            ports = sorted(item.get("Port") for item in listeners)
            raise MetricsSourceError(f"the ALB has no listener on port {self.listen_port} (has {ports})")
        forward = [a for a in prod.get("DefaultActions", []) if a.get("Type") == "forward"]
        groups = [
            (group["TargetGroupArn"], int(group.get("Weight", 1)))
            for action in forward
            for group in action.get("ForwardConfig", {}).get("TargetGroups")
            or [{"TargetGroupArn": action["TargetGroupArn"], "Weight": 1}]
        ]
        return route_from_weights(groups, self.target_groups, f"ALB listener :{self.listen_port}")

    def _dimensions(self, color: str) -> list[dict[str, str]]:
        if color not in self.target_groups:
            raise MetricsSourceError(f"metrics.target_groups has no {color!r}; has {sorted(self.target_groups)}")
        return [
            {"Name": "TargetGroup", "Value": self.target_groups[color]},
            {"Name": "LoadBalancer", "Value": self.load_balancer},
        ]

    def sample(self, color: str, start: datetime, end: datetime) -> MetricsSample:
        """Requests and errors of ``color``'s target group over whole minutes ending at ``end``.

        Errors are the target's 5xx plus the 502s of failed target connections; while the
        prod listener sends ``color`` all traffic, the load balancer's own 5xx too (the
        larger of those and the connection errors, since each failed connection is also
        an ELB 502). During a split (a gradual step, or the instant of a flip) the ALB's
        5xx cannot be attributed: CloudWatch counts them per load balancer, and both
        colours' failures land in the same number, so only the per-target-group counts are
        used. Minutes that began before ``start`` (the switch: the monitor never looks
        earlier) are left out of the load-balancer count, as they may hold the other
        colour's errors. Preview-listener 5xx land in that count too; smoke tests run
        before the switch, so a bake rarely sees any.
        """
        dimensions = self._dimensions(color)
        period = max(PERIOD_S, math.ceil((end - start).total_seconds() / PERIOD_S) * PERIOD_S)
        query_start = end - timedelta(seconds=period)
        queries = [
            {
                "Id": key,
                "MetricStat": {
                    "Metric": {"Namespace": NAMESPACE, "MetricName": name, "Dimensions": dimensions},
                    "Period": period,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
            for key, name in COUNT_METRICS.items()
        ]
        queries.append(
            {
                "Id": ELB_5XX_ID,
                "MetricStat": {
                    "Metric": {
                        "Namespace": NAMESPACE,
                        "MetricName": ELB_5XX_METRIC,
                        "Dimensions": [{"Name": "LoadBalancer", "Value": self.load_balancer}],
                    },
                    "Period": PERIOD_S,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
        )
        response = self.client.get_metric_data(MetricDataQueries=queries, StartTime=query_start, EndTime=end)
        sums: dict[str, float | None] = dict.fromkeys(COUNT_METRICS)
        elb_5xx: float | None = None
        for result in response.get("MetricDataResults", []):
            points = [
                (at, v)
                for at, v in zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
                if v is not None
            ]
            if result["Id"] == ELB_5XX_ID:
                # Whole minutes after the window began only: an earlier one straddles the switch.
                after = [v for at, v in points if _aware(at) >= _aware(start)]
                elb_5xx = float(sum(after)) if after else None
            elif points:
                sums[result["Id"]] = float(sum(v for _at, v in points))
        requests = sums["requests"]
        target_errors = (sums["target_5xx"] or 0) + (sums["connection_errors"] or 0)
        if elb_5xx and self.sole_color() == color:
            # Each failed target connection is an ELB 502 as well: count the larger, not both.
            target_errors = (sums["target_5xx"] or 0) + max(sums["connection_errors"] or 0, elb_5xx)
            if requests is None:
                # No request reached the target group, yet the ALB answered 5xx on its behalf
                # (no registered or healthy target): every one of those requests failed.
                requests = elb_5xx
        errors = None if requests is None else int(min(target_errors, requests))
        return MetricsSample(
            color=color,
            start=query_start,
            end=end,
            requests=None if requests is None else int(requests),
            errors=errors,
            p99_ms=self._p99_ms(dimensions, query_start, end, period),
        )

    def sole_color(self) -> str | None:
        """The colour the prod listener sends all traffic to now; None during a split or unknown."""
        if self.listen_port is None or self.elbv2 is None:
            return None
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            route = self.live_route()
        except (MetricsSourceError, BotoCoreError, ClientError):
            return None
        return next((color for color, share in route.weights.items() if share == 100), None)

    def _p99_ms(self, dimensions: list[dict[str, str]], start: datetime, end: datetime, period: int) -> float | None:
        """Worst per-period p99 of ``TargetResponseTime`` (seconds) in milliseconds, or None."""
        response = self.client.get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName=LATENCY_METRIC,
            Dimensions=dimensions,
            StartTime=start,
            EndTime=end,
            Period=period,
            ExtendedStatistics=["p99"],
        )
        values = [
            point["ExtendedStatistics"]["p99"]
            for point in response.get("Datapoints", [])
            if "p99" in point.get("ExtendedStatistics", {})
        ]
        return max(values) * 1000.0 if values else None


def _aware(at: datetime) -> datetime:
    """CloudWatch timestamps come timezone-aware; a naive one is UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def from_outputs(metrics: Mapping[str, Any], client: Any = None, **_: Any) -> CloudWatchSource:
    """Build the source from the stack's ``metrics`` output (``client`` lets tests pass their own)."""
    require_fields(metrics, "cloudwatch", ("region", "load_balancer", "target_groups"), per_color="target_groups")
    target_groups = metrics["target_groups"]
    import boto3

    region = metrics["region"]
    return CloudWatchSource(
        client or boto3.client("cloudwatch", region_name=region),
        str(metrics["load_balancer"]),
        target_groups,
        elbv2=boto3.client("elbv2", region_name=region),
        sts=boto3.client("sts", region_name=region),
        listen_port=int(metrics["listen_port"]) if metrics.get("listen_port") else None,
    )
