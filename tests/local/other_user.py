"""Run a snippet as another local user (``nobody``), to show what such a user can and cannot reach.

The machine runs the tests as root; ``subprocess`` drops to ``nobody``/``nogroup`` (no
supplementary groups) before the snippet runs under the system Python, which that user
can execute (the project's virtualenv may sit where it cannot).
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

SYSTEM_PYTHON = "/usr/bin/python3"

# Sends ``count`` copies of ``line`` over each channel; reports per channel "sent" or the OS error.
FORGER = r"""
import json, socket, sys
channels, line, count = json.loads(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3])
result = {}
for kind, where in channels:
    key = f"{kind} {where}"
    try:
        if kind == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for _ in range(count):
                    sock.sendto(line, ("127.0.0.1", int(where)))
        elif kind == "unix-dgram":
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                for _ in range(count):
                    sock.sendto(line, where)
        else:  # a unix stream socket: connect and write the lines
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(where)
                sock.sendall(line * count)
        result[key] = "sent"
    except OSError as exc:
        result[key] = f"{type(exc).__name__}: {exc.strerror}"
print(json.dumps(result))
"""


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("acting as another local user needs root")


def as_nobody(code: str, *args: str, timeout_s: float = 120.0) -> Any:
    """Run ``code`` as ``nobody`` and return the JSON it prints."""
    require_root()
    done = subprocess.run(
        [SYSTEM_PYTHON, "-c", code, *args],
        user="nobody",
        group="nogroup",
        extra_groups=[],
        cwd="/",
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=True,
    )
    return json.loads(done.stdout)


def forge(channels: list[tuple[str, str | int]], line: str, count: int) -> dict[str, str]:
    """As ``nobody``, send ``count`` forged ``line``s over every channel; "sent" or the error per channel."""
    return as_nobody(FORGER, json.dumps(channels), line, str(count))
