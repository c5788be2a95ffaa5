"""Fault injection from the environment, so tests and the demo can make a release bad.

``FAULT_AFTER_S`` delays every fault, so a bad release passes its pre-switch smoke
tests and only misbehaves once it is live: exactly what post-switch monitoring is for.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

ENV_ERROR_RATE = "FAULT_ERROR_RATE"
ENV_LATENCY_MS = "FAULT_LATENCY_MS"
ENV_SLOW_RATE = "FAULT_SLOW_RATE"  # the share of requests delayed by FAULT_LATENCY_MS (default: all)
ENV_FAIL_READINESS = "FAULT_FAIL_READINESS"
ENV_AFTER_S = "FAULT_AFTER_S"


class FaultSettingsError(ValueError):
    """A fault variable holds a value the service cannot use."""


@dataclass(frozen=True)
class Faults:
    """What to break and from when (seconds after the process started)."""

    error_rate: float = 0.0
    latency_ms: float = 0.0
    slow_rate: float = 1.0
    fail_readiness: bool = False
    after_s: float = 0.0
    started_at: float = field(default_factory=time.monotonic)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Faults:
        env = os.environ if env is None else env

        def number(name: str, lo: float, hi: float, default: float = 0.0) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise FaultSettingsError(f"{name}={raw!r}: expected a number in [{lo:g}, {hi:g}]") from None
            if not lo <= value <= hi:
                raise FaultSettingsError(f"{name}={raw!r}: expected a number in [{lo:g}, {hi:g}]")
            return value

        readiness = env.get(ENV_FAIL_READINESS, "").strip().lower()
        if readiness not in ("", "0", "1", "true", "false"):
            raise FaultSettingsError(f"{ENV_FAIL_READINESS}={readiness!r}: expected true/false or 1/0")
        return cls(
            error_rate=number(ENV_ERROR_RATE, 0.0, 1.0),
            latency_ms=number(ENV_LATENCY_MS, 0.0, 600_000.0),
            slow_rate=number(ENV_SLOW_RATE, 0.0, 1.0, default=1.0),
            fail_readiness=readiness in ("1", "true"),
            after_s=number(ENV_AFTER_S, 0.0, 86_400.0),
        )

    @property
    def active(self) -> bool:
        return time.monotonic() - self.started_at >= self.after_s

    def should_fail_request(self) -> bool:
        return self.error_rate > 0 and self.active and random.random() < self.error_rate

    def delay(self) -> None:
        if self.latency_ms > 0 and self.active and (self.slow_rate >= 1 or random.random() < self.slow_rate):
            time.sleep(self.latency_ms / 1000.0)

    def readiness_broken(self) -> bool:
        return self.fail_readiness and self.active
