"""The local target: HAProxy + PostgreSQL + one app process per colour, all on 127.0.0.1.

``build(name, config)`` is what ``__main__.py`` calls (via ``components.targets``);
:class:`~components.local.runtime.LocalEnvironment` is the runtime API the pipeline
and ``bluegreen up/down/status`` use.
"""

from __future__ import annotations

from pathlib import Path

from components.config import StackConfig
from components.local.component import LocalBlueGreen, LocalBlueGreenArgs


def build(name: str, config: StackConfig) -> LocalBlueGreen:
    # Pulumi runs the program in the project directory (where Pulumi.yaml is): the stack's
    # state and migrations belong to that project, even when its code is shared with others.
    return LocalBlueGreen(name, LocalBlueGreenArgs(config=config, project_root=Path.cwd()))


__all__ = ["LocalBlueGreen", "LocalBlueGreenArgs", "build"]
