"""Argument types every command line shares, so bad input is refused before anything runs."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from components.config import ConfigError, stack_name


def stack_argument(value: str) -> str:
    """``--stack``: refused by argparse (exit 2, the rule in the message) unless it is a plain name."""
    try:
        return stack_name(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cli_name() -> str:
    """How the person reading a hint can run this program from where they are.

    ``bluegreen`` when it is on their PATH (the virtualenv active), else the path of the
    virtualenv's ``bluegreen`` (``venv/bin/bluegreen``), so a pasted hint works.
    """
    ours = Path(sys.prefix) / "bin" / "bluegreen"
    found = shutil.which("bluegreen")
    if found and Path(found).resolve() == ours.resolve():
        return "bluegreen"
    if ours.exists():
        relative = os.path.relpath(ours)
        return relative if not relative.startswith("..") else str(ours)
    return f"{sys.executable} -m scripts"
