"""Finds the component that builds a stack's target, one module per cloud.

Each target module (``components.aws``, ``components.gcp``, ``components.azure``,
``components.local``) exposes ``build(name, config)`` returning a component with
an ``outputs`` mapping that satisfies the stack outputs contract.  Looking the module
up by name keeps a new cloud to one new module, with nothing else to edit.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any, Protocol

from components.config import ConfigError, StackConfig
from components.modules import import_optional


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
