"""The LocalBlueGreen component under Pulumi mocks, and its providers' diffs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import StackConfig
from components.local.component import PROVIDERS
from components.local.haproxy import LOG_RING
from tests.pulumi_harness import ProgramFailedError, StackRun, run_stack

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "pulumi-python:dynamic/bluegreen/local:"


def dev_config(**changes: Any) -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    raw = {k.split(":", 1)[1]: v for k, v in doc.items()}
    raw.update(changes)
    return raw


def with_log_ring(args: Any) -> dict[str, Any]:
    return {"log_ring": LOG_RING} if args.typ.endswith("LoadBalancer") else {}


def run(**changes: Any) -> StackRun:
    return run_stack(dev_config(**changes), stack="dev", extra_outputs=with_log_ring)


def part_name(resource_name: str) -> str:
    return resource_name.removeprefix("dev-bluegreen-")


def test_dev_stack_builds_every_part_under_the_component() -> None:
    stack = run()
    component = stack.one("bluegreen:local:LocalBlueGreen")
    parts = {part_name(r.name): r for r in stack.resources if r.type.startswith(PREFIX)}
    assert set(parts) == set(PROVIDERS)
    assert all(r.parent == component.urn for r in parts.values())
    assert parts["blue"].inputs["port"] == 18081 and parts["green"].inputs["port"] == 18082
    assert parts["blue"].inputs["watch"]["faults"]["FAULT_ERROR_RATE"] == "0"
    outputs = stack.outputs
    assert outputs["live_color"] == "blue" and outputs["idle_color"] == "green"
    assert outputs["live_url"] == "http://127.0.0.1:18080" and outputs["preview_url"] == "http://127.0.0.1:18443"
    metrics = outputs["metrics"]
    assert metrics["source"] == "haproxy" and metrics["log_ring"] == LOG_RING
    assert metrics["stats_socket"].endswith(".bluegreen/dev/haproxy/admin.sock")
    assert metrics["backends"] == {"blue": "be_blue", "green": "be_green", "split": "be_split"}


def test_faulty_version_gets_its_faults() -> None:
    stack = run(green_version="2.1.0")
    green = next(r for r in stack.resources if r.name == "dev-bluegreen-green")
    assert green.inputs["watch"]["faults"]["FAULT_ERROR_RATE"] == "0.3"
    assert green.inputs["watch"]["faults"]["FAULT_AFTER_S"] == "8"


def _diffs(before: StackRun, after: StackRun) -> dict[str, tuple[bool, list[str]]]:
    olds = {part_name(r.name): r.inputs for r in before.resources if r.type.startswith(PREFIX)}
    out = {}
    for resource in after.resources:
        if resource.type.startswith(PREFIX):
            part = part_name(resource.name)
            result = PROVIDERS[part]().diff("id", olds[part], resource.inputs)
            out[part] = (bool(result.changes), list(result.replaces or []))
    return out


def test_flipping_live_color_updates_only_the_route_and_replaces_nothing() -> None:
    diffs = _diffs(run(), run(live_color="green"))
    assert {part for part, (changed, _) in diffs.items() if changed} == {"live-route"}
    assert all(replaces == [] for _, replaces in diffs.values())


def test_new_version_restarts_only_that_colour_and_reruns_migrations() -> None:
    diffs = _diffs(run(), run(green_version="2.0.0"))
    assert {part for part, (changed, _) in diffs.items() if changed} == {
        "green",
        "migrations-expand",
        "migrations-contract",
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"app_port": 18079}, "port clash"),
        ({"local": {"faults": {"2.1.0": {"error_rate": 2}}}}, "error_rate = 2 is invalid"),
    ],
)
def test_bad_local_config_registers_nothing(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ProgramFailedError) as info:
        run(**changes)
    assert message in str(info.value)
    assert [r for r in info.value.resources if r.type.startswith(PREFIX)] == []


def test_contract_inputs_parse_back_to_the_same_config() -> None:
    stack = run(live_color="green", blue_version="2.0.0")
    route = next(r for r in stack.resources if r.name == "dev-bluegreen-live-route")
    parsed = StackConfig.parse(json.loads(route.inputs["config"]), route.inputs["stack"])
    assert parsed.live_color == "green" and parsed.blue_version == "2.0.0"


def test_providers_serialize_for_the_dynamic_provider_host() -> None:
    """The engine runs providers in another process from the project root: they must unpickle there."""
    import base64
    import subprocess
    import sys

    from pulumi.dynamic.dynamic import serialize_provider

    for provider_class in set(PROVIDERS.values()):
        blob = serialize_provider(provider_class())
        code = (
            "import base64, sys, dill; "
            "p = dill.loads(base64.b64decode(sys.argv[1])); "
            "print(type(p).__module__ + '.' + type(p).__name__, type(p).kind)"
        )
        result = subprocess.run(
            [sys.executable, "-c", code, blob], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
        )
        assert result.stdout.split()[0] == f"components.local.providers.{provider_class.__name__}"
        assert base64.b64decode(blob)
