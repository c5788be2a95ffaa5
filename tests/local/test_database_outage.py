"""The example service rides out a PostgreSQL restart: no broken pooled connection reaches a request.

Real PostgreSQL stopped and started under a running stack (no supervisor: the Python
API starts none), the app's port asked directly so HAProxy's retries hide nothing.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from components.local.runtime import LocalEnvironment

pytestmark = pytest.mark.e2e


def _app_url(env: LocalEnvironment) -> str:
    return f"http://127.0.0.1:{env.ports.apps['blue']}"


def _fill_the_pool(url: str) -> None:
    """Concurrent requests, so the pool holds several connections that the restart will break."""
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _i: httpx.get(f"{url}/orders?limit=1", timeout=10).status_code, range(16)))
    assert set(codes) == {200}


def test_requests_right_after_a_database_restart_succeed(running_env: LocalEnvironment) -> None:
    url = _app_url(running_env)
    _fill_the_pool(url)
    running_env.stop_database()
    running_env.ensure_database()
    codes = [httpx.get(f"{url}/orders?limit=1", timeout=10).status_code for _ in range(10)]
    assert codes == [200] * 10
    assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200


def test_during_an_outage_liveness_holds_and_requests_get_503_then_all_recovers(
    running_env: LocalEnvironment,
) -> None:
    url = _app_url(running_env)
    _fill_the_pool(url)
    running_env.stop_database()
    # Long enough for the pool's reconnect attempts to back off several times.
    until = time.monotonic() + 8
    while time.monotonic() < until:
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        unavailable = httpx.get(f"{url}/orders?limit=1", timeout=10)
        assert unavailable.status_code == 503 and "database unavailable" in unavailable.json()["error"]
        assert httpx.get(f"{url}/readyz", timeout=10).status_code == 503
        time.sleep(0.5)
    running_env.ensure_database()
    deadline = time.monotonic() + 30
    while httpx.get(f"{url}/readyz", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "readiness never came back after the database did"
        time.sleep(0.2)
    codes = [httpx.get(f"{url}/orders?limit=1", timeout=10).status_code for _ in range(10)]
    assert codes == [200] * 10
