"""``LocalBlueGreen``: the local target as a Pulumi component built from dynamic resources.

Children, in dependency order: the PostgreSQL cluster, the expand migrations, HAProxy,
one app process per colour, the live route (the switch), the scale-down of a colour
kept at no capacity (after the route moved off it), then the contract migrations
that the new versions allow. ``outputs`` satisfies the stack outputs contract, with a
``metrics`` object for the pipeline's HAProxy metrics source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from components.config import COLORS, StackConfig
from components.local.haproxy import LOG_FORMAT, SPLIT_BACKEND, backend_of
from components.local.providers import (
    AppColorProvider,
    DatabaseProvider,
    LiveRouteProvider,
    LoadBalancerProvider,
    MigrationsProvider,
    ScaleDownProvider,
    config_json,
)
from components.local.runtime import LocalEnvironment, validate_local_config
from components.migrations import load_migrations
from components.targets import contract_outputs


class LocalDatabase(Resource, module="bluegreen/local", name="Database"):
    port: pulumi.Output[int]
    url: pulumi.Output[str]


class LocalMigrations(Resource, module="bluegreen/local", name="Migrations"):
    applied: pulumi.Output[list[str]]


class LocalLoadBalancer(Resource, module="bluegreen/local", name="LoadBalancer"):
    log_ring: pulumi.Output[str]
    stats_socket: pulumi.Output[str]


class LocalAppColor(Resource, module="bluegreen/local", name="AppColor"):
    pid: pulumi.Output[int]


class LocalScaleDown(Resource, module="bluegreen/local", name="ScaleDown"):
    stopped: pulumi.Output[list[str]]


class LocalLiveRoute(Resource, module="bluegreen/local", name="LiveRoute"):
    live_url: pulumi.Output[str]
    preview_url: pulumi.Output[str]


@dataclass(frozen=True)
class LocalBlueGreenArgs:
    config: StackConfig
    project_root: Path


def part_inputs(config: StackConfig, project_root: Path) -> dict[str, dict[str, Any]]:
    """Plain inputs of every part, keyed by part; ``watch`` is what each part's diff compares."""
    settings, ports = validate_local_config(config)
    env = LocalEnvironment(config, project_root)  # computes names and paths only; starts nothing
    # The config travels as JSON text: the engine hands dynamic providers every number as a
    # float (protobuf Struct), and ``app_workers: 2.0`` is not a valid worker count.
    base = {"project_root": str(env.project_root), "stack": config.stack, "config": config_json(config)}
    directory = config.migrations_location(env.project_root)
    migration_files = [
        {"name": m.name, "kind": m.kind, "after": m.after, "checksum": m.checksum}
        for m in (load_migrations(directory) if directory is not None and directory.is_dir() else [])
    ]
    versions = {"blue": config.blue_version, "green": config.green_version}
    parts: dict[str, dict[str, Any]] = {
        "postgres": {**base, "port": None, "url": None, "watch": {"db": config.db.name, "user": config.db.username}},
        "migrations-expand": {
            **base,
            "phase": "expand",
            "migrations": migration_files,
            "watch": [migration_files, versions],
        },
        "haproxy": {
            **base,
            "stats_socket": str(env.haproxy.socket_path),
            "log_ring": None,
            "watch": {
                **ports.all_ports(),
                "health_path": config.health_path,
                "preview_cidrs": list(config.preview_cidrs),
                "log_format": LOG_FORMAT,
            },
        },
    }
    for color in COLORS:
        version = config.version_of(color)
        parts[color] = {
            **base,
            "color": color,
            "version": version,
            "port": ports.apps[color],
            "pid": None,
            "watch": {
                "version": version,
                "port": ports.apps[color],
                "command": config.app_command,
                "faults": settings.faults_for(version).environment(),
                "workers": [settings.app_workers, settings.app_threads],
                "running": config.desired_capacity(color) > 0 or config.traffic_percent(color) > 0,
            },
        }
    parts["live-route"] = {
        **base,
        "live_url": env.live_url,
        "preview_url": env.preview_url,
        "watch": {"live_color": config.live_color, "live_traffic_percent": config.live_traffic_percent},
    }
    parts["scale-down"] = {
        **base,
        "stopped": None,
        "watch": [c for c in COLORS if config.desired_capacity(c) == 0 and config.traffic_percent(c) == 0],
    }
    parts["migrations-contract"] = {**parts["migrations-expand"], "phase": "contract"}
    return parts


PROVIDERS: dict[str, type[Any]] = {
    "postgres": DatabaseProvider,
    "migrations-expand": MigrationsProvider,
    "haproxy": LoadBalancerProvider,
    "blue": AppColorProvider,
    "green": AppColorProvider,
    "live-route": LiveRouteProvider,
    "scale-down": ScaleDownProvider,
    "migrations-contract": MigrationsProvider,
}


class LocalBlueGreen(pulumi.ComponentResource):
    outputs: dict[str, Any]

    def __init__(self, name: str, args: LocalBlueGreenArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("bluegreen:local:LocalBlueGreen", name, None, opts)
        parts = part_inputs(args.config, args.project_root)

        def child(depends_on: list[pulumi.Resource]) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, depends_on=depends_on)

        database = LocalDatabase(
            DatabaseProvider(),
            f"{name}-postgres",
            parts["postgres"],
            pulumi.ResourceOptions.merge(child([]), pulumi.ResourceOptions(additional_secret_outputs=["url"])),
        )
        expand = LocalMigrations(
            MigrationsProvider(), f"{name}-migrations-expand", parts["migrations-expand"], child([database])
        )
        load_balancer = LocalLoadBalancer(LoadBalancerProvider(), f"{name}-haproxy", parts["haproxy"], child([expand]))
        colors = [
            LocalAppColor(AppColorProvider(), f"{name}-{color}", parts[color], child([load_balancer]))
            for color in COLORS
        ]
        route = LocalLiveRoute(LiveRouteProvider(), f"{name}-live-route", parts["live-route"], child(colors))
        LocalScaleDown(ScaleDownProvider(), f"{name}-scale-down", parts["scale-down"], child([route]))
        LocalMigrations(
            MigrationsProvider(), f"{name}-migrations-contract", parts["migrations-contract"], child([route])
        )
        metrics = {
            "source": "haproxy",
            "stats_socket": load_balancer.stats_socket,
            "log_ring": load_balancer.log_ring,
            "log_format": LOG_FORMAT,
            "backends": {color: backend_of(color) for color in COLORS} | {"split": SPLIT_BACKEND},
        }
        self.outputs = contract_outputs(args.config, route.live_url, route.preview_url, metrics)
        self.register_outputs(self.outputs)
