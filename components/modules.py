"""Finding a plug-in module by name (a target, a metrics source) without masking its own bugs."""

from __future__ import annotations

import importlib
from types import ModuleType


def import_optional(module_name: str) -> ModuleType | None:
    """The module, or None when that module itself does not exist.

    An ImportError raised *inside* an existing module (a missing dependency, a typo)
    propagates: only "no such plug-in" is turned into None for a clear message upstream.
    """
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return None
