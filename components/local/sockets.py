"""Which process holds which internet socket, read from ``/proc`` (Linux).

The local target must name what holds a port it wants (a reload onto a busy port is a
failure, not a silent no-op) and its tests check that nothing it runs binds beyond
127.0.0.1. ``/proc/net/{tcp,tcp6,udp,udp6}`` list the sockets of this network namespace
by inode; ``/proc/<pid>/fd`` links a process to the inodes it holds. Processes of
another user are visible only to root, so a holder may be "not visible".
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROTOCOLS = ("tcp", "tcp6", "udp", "udp6")
TCP_LISTEN = "0A"
TCP_TIME_WAIT = "06"  # holds no port against a bind with SO_REUSEADDR


@dataclass(frozen=True)
class InetSocket:
    """One row of /proc/net/<protocol>."""

    protocol: str
    address: str
    port: int
    state: str
    inode: int

    @property
    def listening(self) -> bool:
        return self.protocol.startswith("tcp") and self.state == TCP_LISTEN

    def describe(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.protocol} {host}:{self.port}" + (" (listening)" if self.listening else "")


def _address(hex_address: str) -> str:
    """The kernel prints addresses as host-order 32-bit words in hex."""
    raw = bytes.fromhex(hex_address)
    packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(packed))


def inet_sockets() -> dict[int, InetSocket]:
    """Every TCP/UDP socket of this network namespace, by inode."""
    found: dict[int, InetSocket] = {}
    for protocol in PROTOCOLS:
        try:
            lines = Path(f"/proc/net/{protocol}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            host, port = fields[1].rsplit(":", 1)
            inode = int(fields[9])
            if inode:
                found[inode] = InetSocket(protocol, _address(host), int(port, 16), fields[3], inode)
    return found


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets ``pid`` holds open (empty when it is gone or not ours to read)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with contextlib.suppress(OSError):
                    pending += [int(c) for c in Path(f"/proc/{current}/task/{task}/children").read_text().split()]
    return tree


def sockets_of(pids: Iterable[int]) -> list[InetSocket]:
    """The internet sockets held by any of ``pids``."""
    table = inet_sockets()
    inodes = set().union(*(socket_inodes(pid) for pid in pids))
    return [table[inode] for inode in sorted(inodes) if inode in table]


def listening_on(pids: Iterable[int], port: int) -> bool:
    """Whether one of ``pids`` holds a listening TCP socket on ``port`` (any address)."""
    return any(s.listening and s.port == port for s in sockets_of(pids))


def _command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def holder_of(port: int) -> str:
    """Who holds TCP ``port`` (listening, or bound): ``pid 123 (python3)``, or why that cannot be told."""
    inodes = {
        s.inode
        for s in inet_sockets().values()
        if s.protocol.startswith("tcp") and s.port == port and s.state != TCP_TIME_WAIT
    }
    if not inodes:
        return "a socket bound without listening (which /proc does not list), or one gone again"
    holders = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and socket_inodes(int(entry)) & inodes:
            holders.append(f"pid {entry} ({_command_name(int(entry))})")
    if holders:
        return ", ".join(holders)
    return "a process this user cannot see (another user's, or outside this PID namespace)"
