"""Argument types every command line shares, so bad input is refused before anything runs."""

from __future__ import annotations

import argparse

from components.config import ConfigError, stack_name


def stack_argument(value: str) -> str:
    """``--stack``: refused by argparse (exit 2, the rule in the message) unless it is a plain name."""
    try:
        return stack_name(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
