"""The dynamic providers called directly (create/diff/update/delete) against real processes."""

from __future__ import annotations

import httpx
import pytest

from components.local.component import PROVIDERS, part_inputs
from components.local.haproxy import LOG_RING
from components.local.providers import config_json
from components.local.runtime import SwitchRefusedError
from tests.local.sandbox import LocalProject

pytestmark = pytest.mark.e2e
ORDER = ["postgres", "migrations-expand", "haproxy", "blue", "green", "live-route", "migrations-contract"]


def test_providers_create_update_and_delete_the_environment(local_project: LocalProject) -> None:
    config = local_project.config()
    inputs = part_inputs(config, local_project.root)
    state = {}
    for part in ORDER:
        created = PROVIDERS[part]().create(inputs[part])
        state[part] = created.outs
    assert state["blue"]["running"] and state["green"]["running"] and state["blue"]["pid"] > 0
    assert state["migrations-expand"]["applied"][0] == "001_create_orders.sql"
    assert state["haproxy"]["log_ring"] == LOG_RING
    live_url = state["live-route"]["live_url"]
    assert httpx.get(live_url).headers["X-App-Color"] == "blue"

    # Flip live_color: only the route's diff reports a change, and its update switches.
    flipped = part_inputs(config.with_changes(live_color="green"), local_project.root)
    changed = [p for p in ORDER if PROVIDERS[p]().diff("id", state[p], flipped[p]).changes]
    assert changed == ["live-route"]
    PROVIDERS["live-route"]().update("id", state["live-route"], flipped["live-route"])
    assert httpx.get(live_url).headers["X-App-Color"] == "green"

    # A new version for the idle colour: update restarts that process, the route stays.
    upgraded = part_inputs(config.with_changes(live_color="green", blue_version="2.0.0"), local_project.root)
    assert PROVIDERS["blue"]().diff("id", state["blue"], upgraded["blue"]).changes
    outs = PROVIDERS["blue"]().update("id", state["blue"], upgraded["blue"]).outs
    assert outs["pid"] != state["blue"]["pid"]
    preview = httpx.get(state["live-route"]["preview_url"])
    assert preview.headers["X-App-Color"] == "blue" and preview.headers["X-App-Version"] == "2.0.0"

    # A route update to a colour that is down is refused and changes nothing.
    PROVIDERS["blue"]().delete("id", upgraded["blue"])
    with pytest.raises(SwitchRefusedError):
        PROVIDERS["live-route"]().update(
            "id", flipped["live-route"], upgraded["live-route"] | {"config": config_json(config)}
        )
    assert httpx.get(live_url).headers["X-App-Color"] == "green"

    for part in reversed(ORDER):
        PROVIDERS[part]().delete("id", upgraded[part])
    env = local_project.environment()
    status = env.status()
    assert not status["haproxy"]["running"] and not status["postgres"]["running"]
    assert not any(info["running"] for info in status["colors"].values())
