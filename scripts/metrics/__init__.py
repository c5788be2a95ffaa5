"""Metric sources the post-switch monitor reads, one module per provider.

Every target exports a ``metrics`` stack output whose ``source`` names the module here
that reads it (``cloudwatch``, ``cloud_monitoring``, ``azure_monitor``, ``haproxy``); the
rest of that object is what the module needs (ids, region). A new cloud adds one module
and touches nothing else, the way Argo Rollouts keeps its metric providers apart.
"""

from __future__ import annotations

import functools
import pkgutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from components.modules import import_optional


@dataclass(frozen=True)
class MetricsSample:
    """One colour's traffic over one window. ``None`` means the source had no data."""

    color: str
    start: datetime
    end: datetime
    requests: int | None
    errors: int | None
    p99_ms: float | None
    # Per request, oldest first: (failed, total time in ms or -1), where the source has it
    # (HAProxy's log); the decision rules then judge the most recent requests on their own.
    outcomes: tuple[tuple[bool, int], ...] | None = None

    @property
    def error_rate(self) -> float | None:
        if self.requests is None or self.errors is None or self.requests == 0:
            return None
        return self.errors / self.requests

    @property
    def has_data(self) -> bool:
        return self.requests is not None and self.requests > 0


class MetricsSource(Protocol):
    """Reads request count, 5xx count and p99 latency of one colour over a window."""

    def sample(self, color: str, start: datetime, end: datetime) -> MetricsSample: ...


@dataclass(frozen=True)
class ColorHealth:
    """How many of a colour's targets the load balancer itself counts as healthy."""

    color: str
    healthy: int
    total: int
    detail: str

    @property
    def ok(self) -> bool:
        return self.total > 0 and self.healthy == self.total


class HealthSource(Protocol):
    """Sources that also know the load balancer's view of target health implement this."""

    def health(self, color: str) -> ColorHealth: ...


@dataclass(frozen=True)
class LiveRoute:
    """The production route as the load balancer itself holds it, read back after a change.

    ``weights``: colour -> percent of production traffic. ``served_by_header``: a response
    header the load balancer adds naming the colour that served (HAProxy here); None where
    the load balancer adds none, and the read-back alone is the evidence. ``pending``: why
    the load balancer holds the route but does not serve it yet (an Application Gateway
    still ``Updating``), None when it says it has applied it.
    """

    weights: Mapping[str, int]
    detail: str
    served_by_header: str | None = None
    pending: str | None = None


class RouteSource(Protocol):
    """Sources that can read the load balancer's live route back implement this.

    ``verify_timeout_s``: how long a route change may take to show, from the provider's
    documented propagation (each source module says where that figure comes from).
    """

    verify_timeout_s: float

    def live_route(self) -> LiveRoute: ...


DEFAULT_VERIFY_TIMEOUT_S = 60.0  # a source that states no propagation time of its own


def route_from_weights(
    weighted: Iterable[tuple[str, int]], suffixes: Mapping[str, str], where: str, served_by_header: str | None = None
) -> LiveRoute:
    """A :class:`LiveRoute` from a load balancer's (target reference, weight) pairs.

    A reference belongs to the colour whose ``suffixes`` entry it ends with (an ARN suffix,
    ``/backendServices/<name>``, ``/backendAddressPools/<name>``); others count as no colour.
    """
    pairs = [(reference, int(weight)) for reference, weight in weighted]
    total = sum(weight for _ref, weight in pairs)
    weights = dict.fromkeys(suffixes, 0)
    for reference, weight in pairs:
        color = next((c for c, suffix in suffixes.items() if reference.endswith(suffix)), None)
        if color is not None and total:
            weights[color] += round(weight * 100 / total)
    shares = ", ".join(f"{color} {weights[color]}%" for color in sorted(weights))
    return LiveRoute(weights, f"{where} sends prod: {shares}", served_by_header)


class MetricsSourceError(RuntimeError):
    """The stack's ``metrics`` output names no known source or lacks what it needs."""


def require_fields(metrics: Mapping[str, Any], source: str, fields: tuple[str, ...], per_color: str = "") -> None:
    """A source's ``from_outputs`` check: these fields present, ``per_color`` mapping blue and green."""
    missing = [key for key in fields if not metrics.get(key)]
    if missing:
        raise MetricsSourceError(f"stack output metrics ({source}) lacks {', '.join(missing)}")
    if per_color:
        value = metrics.get(per_color)
        if not isinstance(value, Mapping) or set(value) != {"blue", "green"}:
            raise MetricsSourceError(f"stack output metrics.{per_color} = {value!r} must map blue and green")


@functools.cache
def monitor_defaults(cloud: str) -> Mapping[str, Any]:
    """The ``monitor`` defaults the cloud's metrics source asks for, from its data's resolution and lag.

    Each source module may name its ``CLOUD`` and ``MONITOR_DEFAULTS``; a stack's own
    ``monitor`` values always win. A cloud whose source states none keeps the defaults of
    ``components/config.py``.
    """
    for info in pkgutil.iter_modules(__path__):
        try:
            module = import_optional(f"{__name__}.{info.name}")
        except ImportError:
            continue  # another cloud's SDK is not installed here: not this cloud's source
        if module is not None and getattr(module, "CLOUD", None) == cloud:
            return dict(getattr(module, "MONITOR_DEFAULTS", {}))
    return {}


def metrics_source_for(metrics: Mapping[str, Any], **options: Any) -> MetricsSource:
    """Build the source named by ``metrics["source"]`` from the stack's ``metrics`` output.

    Each source module exposes ``from_outputs(metrics, **options) -> MetricsSource``.
    """
    name = metrics.get("source")
    if not isinstance(name, str) or not name.isidentifier():
        raise MetricsSourceError(f"stack output metrics.source = {name!r} is not a metrics source name")
    module_name = f"{__name__}.{name}"
    module = import_optional(module_name)
    if module is None:
        raise MetricsSourceError(f"no metrics source module {module_name} for metrics.source = {name!r}")
    return module.from_outputs(metrics, **options)
