"""Bad config every target must refuse before it registers anything (shared by the cloud tests)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from pulumi_harness import ProgramFailedError, run_stack

from components.config import ConfigError


def with_invalid_value(base: Mapping[str, Any], key: str, value: object) -> dict[str, Any]:
    """``base`` with one ``test_config.INVALID_VALUES`` case applied, and the keys that case relies on."""
    config = {**base, key.split(".")[0]: value}
    if key == "idle_capacity" and value == 5:
        config["capacity"] = 2
    if key == "preview_port":
        config["listen_port"] = value
    return config


def assert_refused_before_any_resource(
    config: Mapping[str, Any], stack: str, provider_config: Mapping[str, str], message: str
) -> None:
    """The program stops on a ConfigError that contains ``message``, with nothing registered."""
    with pytest.raises(ProgramFailedError) as err:
        run_stack(config, stack=stack, provider_config=provider_config)
    assert isinstance(err.value.cause, ConfigError), err.value.cause
    assert message in str(err.value.cause)
    assert err.value.resources == []
