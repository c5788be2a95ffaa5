"""A bare flip must never send production to a colour below capacity, where a target cannot order it.

``pulumi config set bluegreen:live_color green && pulumi up`` with ``warm_idle: false``
asks for three things at once: green up to ``capacity``, the route on green, blue down to
``idle_capacity``. AWS orders them by dependencies (components/aws.py) and the local
target in its providers. On GCP and Azure the routing resource depends on both colours'
compute (serverless NEGs and backend services; the gateway's pools name both apps), so
it cannot come after one colour and before the other. There the program judges the
change against what is deployed, read from the stack's own last outputs (a stack
reference to itself; the ``capacities`` and ``traffic`` outputs), and refuses, before the
routing and the colours' capacity change, a change that would

- send traffic to a colour that runs fewer than ``capacity`` instances now, or
- take capacity from a colour that has traffic now.

The message names the steps that work (warm the colour, flip, then cool the other one),
which is what ``bluegreen switch`` and ``deploy`` do. A stack's first update has
no outputs and is never refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from components.config import COLORS, NAMESPACE, ConfigError, StackConfig

CAPACITIES_OUTPUT = "capacities"
TRAFFIC_OUTPUT = "traffic"


def deployed_shape(config: StackConfig) -> dict[str, dict[str, int]]:
    """The outputs this check reads back next time: instances and traffic share per colour."""
    return {
        CAPACITIES_OUTPUT: {c: config.desired_capacity(c) for c in COLORS},
        TRAFFIC_OUTPUT: {c: config.traffic_percent(c) for c in COLORS},
    }


def flip_problem(config: StackConfig, deployed: Mapping[str, Any]) -> str | None:
    """Why applying ``config`` over what is ``deployed`` is unsafe in one update; None when it is safe."""
    capacities, traffic = deployed.get(CAPACITIES_OUTPUT), deployed.get(TRAFFIC_OUTPUT)
    if not isinstance(capacities, Mapping) or not isinstance(traffic, Mapping):
        return None  # the first update, or a stack deployed before these outputs existed
    steps = (
        f"do it in steps: `pulumi config set {NAMESPACE}:warm_idle true && pulumi up` (both colours at capacity), "
        f"then change {NAMESPACE}:live_color / live_traffic_percent and `pulumi up`, then "
        f"`pulumi config set {NAMESPACE}:warm_idle false && pulumi up`; `bluegreen switch` does exactly that"
    )
    for color in COLORS:
        running = int(capacities.get(color, 0))
        if config.traffic_percent(color) > 0 and running < config.capacity:
            return (
                f"refusing to send {config.traffic_percent(color)}% of production to {color}, which runs {running} "
                f"of capacity {config.capacity} instances now (this target cannot scale it up before the route "
                f"moves in one update); {steps}"
            )
    for color in COLORS:
        if int(traffic.get(color, 0)) > 0 and config.desired_capacity(color) < config.capacity:
            return (
                f"refusing to scale {color} down to {config.desired_capacity(color)} instances while it has "
                f"{int(traffic[color])}% of production (the route and its capacity would change in one update); {steps}"
            )
    return None


def checked(config: StackConfig, name: str, opts: pulumi.ResourceOptions) -> pulumi.Output[bool]:
    """True once the change is known safe; fails (ConfigError) otherwise.

    Feed it into the inputs of the routing resource and of each colour's capacity, so a
    refused change registers none of them and nothing is changed.
    """
    me = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    deployed = pulumi.StackReference(f"{name}-deployed", me, opts=opts).outputs

    def judge(outputs: Mapping[str, Any] | None) -> bool:
        problem = flip_problem(config, outputs or {})
        if problem:
            raise ConfigError(problem)
        return True

    return deployed.apply(judge)


def gated(check: pulumi.Output[bool], value: Any) -> pulumi.Output[Any]:
    """``value``, available only once ``check`` passed."""
    return check.apply(lambda _ok: value)
