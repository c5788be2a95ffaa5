"""Finds the component that builds a stack's target, one module per cloud.

Each target module (``components.aws``, ``components.gcp``, ``components.azure``,
``components.local``) exposes ``build(name, config)`` returning a component with
an ``outputs`` mapping that satisfies the stack outputs contract.  Looking the module
up by name keeps a new cloud to one new module, with nothing else to edit.
"""

from __future__ import annotations

import importlib.util
import ipaddress
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from components.config import NAMESPACE, ConfigError, StackConfig, invalid
from components.modules import import_optional

if TYPE_CHECKING:
    import pulumi

# The header the preview route of a cloud target demands (``bluegreen:preview_header``); the
# pipeline reads its name and value from these stack outputs and sends it with every smoke request.
PREVIEW_HEADER = "X-Bluegreen-Preview"
PREVIEW_HEADER_NAME_OUTPUT = "preview_header_name"
PREVIEW_HEADER_VALUE_OUTPUT = "preview_header_value"  # a secret output
# Clients reach a public frontend (an internet-facing ALB, Google's front ends, a gateway's
# public IP) from their public NAT or egress address: a source in these ranges never matches.
NEVER_PUBLIC_SOURCES = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
    )
)


class BlueGreenTarget(Protocol):
    """What ``__main__`` needs from a target's component."""

    outputs: Mapping[str, Any]


def build_target(config: StackConfig, name: str | None = None) -> BlueGreenTarget:
    """Build the component for ``config.cloud``; a missing module is a clear config error."""
    module_name = f"components.{config.cloud}"
    module = import_optional(module_name)
    if module is None:
        raise ConfigError(
            f"bluegreen:cloud = {config.cloud!r}: the {config.cloud} target is not built in this checkout yet "
            f"(no module {module_name}); available: {', '.join(available_targets())}"
        )
    return module.build(name or f"{config.stack}-bluegreen", config)


def validate_target(config: StackConfig) -> None:
    """The target's own settings (``bluegreen:<cloud>``), checked without building anything.

    The pipeline calls this before it touches a stack, so a setting the program would refuse
    (a certificate without a domain, say) is a config error up front (exit 2). Provider config
    (region, project) is left to the program: it may come from an ESC environment.
    """
    module = import_optional(f"components.{config.cloud}")
    check = getattr(module, "validate", None)
    if check is not None:
        check(config)


def available_targets() -> list[str]:
    from components.config import CLOUDS

    return [c for c in CLOUDS if importlib.util.find_spec(f"components.{c}") is not None]


def contract_outputs(
    config: StackConfig, live_url: Any, preview_url: Any, metrics: Mapping[str, Any]
) -> dict[str, Any]:
    """The outputs every target exports (see DESIGN.md "Stack outputs contract")."""
    return {
        "live_color": config.live_color,
        "idle_color": config.idle_color,
        "live_traffic_percent": config.live_traffic_percent,
        "live_url": live_url,
        "preview_url": preview_url,
        "blue_version": config.blue_version,
        "green_version": config.green_version,
        "metrics": dict(metrics),
    }


def refuse_private_preview_cidrs(config: StackConfig, frontend: str) -> None:
    """A private range in ``preview_cidrs`` never matches on a public frontend: refuse it, saying why."""
    for cidr in config.preview_cidrs:
        network = ipaddress.ip_network(cidr)
        if any(network.version == p.version and network.subnet_of(p) for p in NEVER_PUBLIC_SOURCES):  # type: ignore[arg-type]
            raise invalid(
                f"{NAMESPACE}:preview_cidrs",
                cidr,
                f"on {config.cloud} the preview route is reached through {frontend}, where each client arrives "
                "from its public (NAT or egress) address, never a private one, so this range never matches; "
                "list the public egress addresses of your office, VPN or CI runners (e.g. 203.0.113.7/32), or leave "
                f"preview_cidrs empty and let {NAMESPACE}:preview_header guard the route",
            )


def preview_token(name: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    """The preview header's value: generated once, kept as a Pulumi secret.

    Lowercase letters and digits only (48 of them): the ALB compares header values without
    regard to case and treats ``*`` and ``?`` as wildcards, and the value goes into a CEL
    string literal on GCP.
    """
    import pulumi
    import pulumi_random as random

    token = random.RandomPassword(
        f"{name}-preview-token", length=48, special=False, upper=False, opts=pulumi.ResourceOptions(parent=parent)
    )
    return pulumi.Output.secret(token.result)


def preview_header_outputs(token: pulumi.Output[str] | None) -> dict[str, Any]:
    """``preview_header_name`` and the secret ``preview_header_value``, or nothing when the route needs no header."""
    if token is None:
        return {}
    return {PREVIEW_HEADER_NAME_OUTPUT: PREVIEW_HEADER, PREVIEW_HEADER_VALUE_OUTPUT: token}
