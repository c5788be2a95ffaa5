"""The local target: HAProxy + PostgreSQL + one app process per colour, all on 127.0.0.1.

``build(name, config)`` is what ``__main__.py`` calls (via ``components.targets``);
:class:`~components.local.runtime.LocalEnvironment` is the runtime API the pipeline
and ``python -m scripts up/down/status`` use.
"""

from __future__ import annotations

from pathlib import Path

from components.config import StackConfig
from components.local.component import LocalBlueGreen, LocalBlueGreenArgs

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def build(name: str, config: StackConfig) -> LocalBlueGreen:
    return LocalBlueGreen(name, LocalBlueGreenArgs(config=config, project_root=PROJECT_ROOT))


__all__ = ["LocalBlueGreen", "LocalBlueGreenArgs", "build"]
