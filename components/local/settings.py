"""The ``bluegreen:local`` settings object and the local target's port plan, validated.

Example (``Pulumi.dev.yaml``)::

    bluegreen:local:
      faults:
        "2.1.0": {error_rate: 0.3, after_s: 20}
      app_workers: 2
      app_threads: 4
      supervise: true   # restart a crashed part (see components/local/supervisor.py)

Every problem raises :class:`~components.config.ConfigError` naming the key, the value
and what is allowed, before anything is started.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from components.config import COLORS, ConfigError, StackConfig, invalid

KEY = "bluegreen:local"
FAULT_FIELDS = ("error_rate", "latency_ms", "slow_rate", "fail_readiness", "after_s")
SETTINGS_FIELDS = ("faults", "app_workers", "app_threads", "supervise")


@dataclass(frozen=True)
class FaultSpec:
    """Faults one app version gets, passed to it as ``FAULT_*`` environment variables."""

    error_rate: float = 0.0
    latency_ms: float = 0.0
    slow_rate: float = 1.0  # the share of requests that get latency_ms
    fail_readiness: bool = False
    after_s: float = 0.0

    def environment(self) -> dict[str, str]:
        return {
            "FAULT_ERROR_RATE": f"{self.error_rate:g}",
            "FAULT_LATENCY_MS": f"{self.latency_ms:g}",
            "FAULT_SLOW_RATE": f"{self.slow_rate:g}",
            "FAULT_FAIL_READINESS": "true" if self.fail_readiness else "false",
            "FAULT_AFTER_S": f"{self.after_s:g}",
        }


@dataclass(frozen=True)
class LocalSettings:
    faults: Mapping[str, FaultSpec] = field(default_factory=dict)
    app_workers: int = 2
    app_threads: int = 4
    # ``up`` starts a supervisor that restarts the stack's crashed parts; false: it does not.
    supervise: bool = True

    def faults_for(self, version: str) -> FaultSpec:
        return self.faults.get(version, FaultSpec())

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> LocalSettings:
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{KEY} = {raw!r} is invalid: an object with {', '.join(SETTINGS_FIELDS)}")
        unknown = sorted(set(raw) - set(SETTINGS_FIELDS))
        if unknown:
            raise ConfigError(f"{KEY} has unknown field(s) {unknown}; allowed: {', '.join(SETTINGS_FIELDS)}")
        faults_raw = raw.get("faults", {})
        faults_raw = {} if faults_raw is None else faults_raw
        if not isinstance(faults_raw, Mapping):
            raise ConfigError(f"{KEY}.faults = {faults_raw!r} is invalid: an object mapping app version -> faults")
        faults = {str(version): _fault_spec(str(version), spec) for version, spec in faults_raw.items()}
        supervise = raw.get("supervise", True)
        if not isinstance(supervise, bool):
            raise invalid(f"{KEY}.supervise", supervise, "true or false")
        return cls(
            faults=faults,
            app_workers=_bounded_int("app_workers", raw.get("app_workers", 2), 1, 32),
            app_threads=_bounded_int("app_threads", raw.get("app_threads", 4), 1, 64),
            supervise=supervise,
        )


def _bounded_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise invalid(f"{KEY}.{name}", value, f"an integer {lo}-{hi}")
    return value


def _fault_spec(version: str, spec: Any) -> FaultSpec:
    where = f"{KEY}.faults.{version}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}", version):
        raise ConfigError(f"{KEY}.faults key {version!r} is invalid: an app version such as 2.1.0")
    if not isinstance(spec, Mapping):
        raise invalid(where, spec, f"an object with {', '.join(FAULT_FIELDS)}")
    unknown = sorted(set(spec) - set(FAULT_FIELDS))
    if unknown:
        raise ConfigError(f"{where} has unknown field(s) {unknown}; allowed: {', '.join(FAULT_FIELDS)}")

    def number(name: str, hi: float, default: float = 0) -> float:
        value = spec.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= hi:
            raise invalid(f"{where}.{name}", value, f"a number 0-{hi:g}")
        return float(value)

    fail_readiness = spec.get("fail_readiness", False)
    if not isinstance(fail_readiness, bool):
        raise ConfigError(f"{where}.fail_readiness = {fail_readiness!r} is invalid: true or false")
    return FaultSpec(
        error_rate=number("error_rate", 1.0),
        latency_ms=number("latency_ms", 600_000),
        slow_rate=number("slow_rate", 1.0, default=1.0),
        fail_readiness=fail_readiness,
        after_s=number("after_s", 86_400),
    )


@dataclass(frozen=True)
class PortPlan:
    """Which local port serves what: blue on ``app_port``, green on ``app_port + 1``."""

    listen: int
    preview: int
    apps: Mapping[str, int]

    @classmethod
    def from_config(cls, config: StackConfig) -> PortPlan:
        if config.app_port + 1 > 65535:
            raise ConfigError(
                f"bluegreen:app_port = {config.app_port} is invalid: green uses app_port + 1, so at most 65534"
            )
        plan = cls(
            listen=config.listen_port,
            preview=config.preview_port,
            apps={"blue": config.app_port, "green": config.app_port + 1},
        )
        named = {
            "listen_port": plan.listen,
            "preview_port": plan.preview,
            "app_port (blue)": plan.apps["blue"],
            "app_port + 1 (green)": plan.apps["green"],
        }
        seen: dict[int, str] = {}
        for name, port in named.items():
            if port < 1024:
                raise ConfigError(
                    f"bluegreen:{name.split()[0]} = {port} is invalid: the local target needs unprivileged "
                    "ports 1024-65535"
                )
            if port in seen:
                raise ConfigError(
                    f"port clash: {name} and {seen[port]} are both {port}; the local target needs four distinct "
                    "ports (listen_port, preview_port, app_port and app_port + 1)"
                )
            seen[port] = name
        return plan

    def all_ports(self) -> dict[str, int]:
        return {"listen_port": self.listen, "preview_port": self.preview, **{f"{c} app": self.apps[c] for c in COLORS}}
