"""CloudWatch metrics of an ALB target group, the AWS target's per-colour metrics source.

The AWS component exports ``metrics = {"source": "cloudwatch", "region": ..., "load_balancer": <ALB arn_suffix>,
"target_groups": {"blue": ..., "green": ...}, "listen_port": <prod listener port>}``.
ALB metrics have one-minute resolution, so a window is widened to whole minutes.
CloudWatch publishes a count metric only for minutes in which it was non-zero: once
``RequestCount`` has data, a missing 5xx count means zero errors, but a missing
``RequestCount`` means no data at all (``None``), never zero traffic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
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
COUNT_METRICS = {
    "requests": "RequestCount",
    "target_5xx": "HTTPCode_Target_5XX_Count",
    "elb_5xx": "HTTPCode_ELB_5XX_Count",
}
LATENCY_METRIC = "TargetResponseTime"


class CloudWatchSource:
    """Reads one colour's target group: request count, 5xx (target + load balancer), p99."""

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
        dimensions = self._dimensions(color)
        period = max(PERIOD_S, math.ceil((end - start).total_seconds() / PERIOD_S) * PERIOD_S)
        query_start = end - timedelta(seconds=period)
        response = self.client.get_metric_data(
            MetricDataQueries=[
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
            ],
            StartTime=query_start,
            EndTime=end,
        )
        sums: dict[str, float | None] = dict.fromkeys(COUNT_METRICS)
        for result in response.get("MetricDataResults", []):
            values = [v for v in result.get("Values", []) if v is not None]
            if values:
                sums[result["Id"]] = float(sum(values))
        requests = sums["requests"]
        errors = None if requests is None else int((sums["target_5xx"] or 0) + (sums["elb_5xx"] or 0))
        return MetricsSample(
            color=color,
            start=query_start,
            end=end,
            requests=None if requests is None else int(requests),
            errors=errors,
            p99_ms=self._p99_ms(dimensions, query_start, end, period),
        )

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
