"""Only HAProxy feeds the monitor: another local user's forged request lines never reach it.

The monitor judges a release by HAProxy's per-request log. A user who could write to
that channel could make a failing release look healthy (the issue's reproduction: as
``nobody``, 99,360 forged ``status=200`` datagrams got a faulty release promoted). Here
``nobody`` floods every channel the monitor could read (its own internet sockets, the
sockets the metrics output names) while a real faulty colour answers 500s.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import httpx
import pytest

from components.local.sockets import sockets_of
from scripts.decision import BREACH, check_sample
from scripts.metrics import metrics_source_for
from tests.local.other_user import forge, require_root
from tests.local.sandbox import LocalProject, children

pytestmark = pytest.mark.e2e

REAL_REQUESTS = 40
FORGED_PER_CHANNEL = 5000


def forged_line() -> str:
    """A line as good as HAProxy's own: green answered 200 just now."""
    at_ms = int(time.time() * 1000)
    return (
        f"bluegreen at={at_ms} frontend=preview backend=be_green server=app status=200 "
        "tr_ms=1 tt_ms=1 ta_ms=1 bytes=1\n"
    )


def monitor_channels(metrics: dict) -> list[tuple[str, str | int]]:
    """Every way in: the monitor's own UDP sockets, and the unix sockets the metrics output names."""
    channels: list[tuple[str, str | int]] = [
        ("udp", s.port) for s in sockets_of([os.getpid()]) if s.protocol.startswith("udp")
    ]
    if "log_udp_port" in metrics:
        channels.append(("udp", int(metrics["log_udp_port"])))
    if "log_socket" in metrics:
        channels.append(("unix-dgram", str(metrics["log_socket"])))
    channels.append(("unix-stream", str(metrics["stats_socket"])))
    return sorted(set(channels))


def test_forged_lines_from_another_user_never_reach_the_monitor(local_project: LocalProject) -> None:
    require_root()
    local_project.write(
        green_version="6.6.6",
        local={"app_workers": 1, "app_threads": 4, "faults": {"6.6.6": {"error_rate": 1.0}}},
    )
    env = local_project.environment()
    env.up()
    metrics = env.metrics()
    source = metrics_source_for(metrics)
    start = datetime.now(UTC)
    channels = monitor_channels(metrics)

    attempts = forge(channels, forged_line(), FORGED_PER_CHANNEL)
    statuses = {httpx.get(env.preview_url + "/", timeout=10).status_code for _ in range(REAL_REQUESTS)}
    attempts_after = forge(channels, forged_line(), FORGED_PER_CHANNEL)
    assert statuses == {500}, "green, the idle colour behind preview, fails every request"

    deadline = time.monotonic() + 30
    sample = source.sample("green", start, datetime.now(UTC))
    while (sample.requests or 0) < REAL_REQUESTS and time.monotonic() < deadline:
        source.wait_for_requests("green", 1.0)
        sample = source.sample("green", start, datetime.now(UTC))
    time.sleep(0.5)  # anything still in flight, forged or real, has arrived
    sample = source.sample("green", start, datetime.now(UTC))

    forged_accepted = (sample.requests or 0) - REAL_REQUESTS
    assert forged_accepted == 0, f"{forged_accepted} forged lines reached the monitor via {attempts}"
    assert (sample.requests, sample.errors) == (REAL_REQUESTS, REAL_REQUESTS), "every real line still counts"
    check = check_sample(sample, env.config.monitor, datetime.now(UTC))
    assert check.status == BREACH, check.reasons

    # No internet socket to send to, and every unix socket is out of that user's reach.
    assert not [c for c in channels if c[0] == "udp"], "the monitor listens on no UDP port"
    for outcome in (*attempts.values(), *attempts_after.values()):
        assert outcome.startswith("PermissionError"), attempts


def test_the_monitor_follows_a_reload_and_lets_the_old_worker_go(local_project: LocalProject) -> None:
    """A reload starts a new worker with an empty ring: its lines count too, and the old worker can exit."""
    env = local_project.environment()
    env.up()
    source = metrics_source_for(env.metrics())
    record = env.haproxy.record()
    assert record is not None
    before = env.haproxy.worker_pid()
    for _ in range(10):
        assert httpx.get(env.live_url + "/").status_code == 200
    assert env.apply(local_project.write(preview_cidrs=["127.0.0.1/32", "10.0.0.0/8"]))["haproxy"] == "reloaded"
    assert env.haproxy.worker_pid() != before
    for _ in range(10):
        assert httpx.get(env.live_url + "/").status_code == 200

    deadline = time.monotonic() + 30
    while source.listener.received["blue"] < 20 and time.monotonic() < deadline:
        source.wait_for_requests("blue", 1.0)
    assert source.listener.received["blue"] == 20
    workers = children(record.pid)
    while before in workers and time.monotonic() < deadline:
        time.sleep(0.1)
        workers = children(record.pid)
    assert workers == [env.haproxy.worker_pid()], "the old worker exited: no log reader holds it"
