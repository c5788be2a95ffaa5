"""Builds pulumi_policy's validation arguments by hand, or from what a mocked stack registered."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pulumi_harness import StackRun
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    StackValidationArgs,
)
from pulumi_policy.policy import _NotApplicableError

Validate = Callable[[StackValidationArgs, Callable[..., None]], None]


def policy_resource(
    type_: str,
    name: str,
    props: Mapping[str, Any],
    protect: bool = False,
    dependencies: Sequence[PolicyResource] = (),
    urn: str | None = None,
) -> PolicyResource:
    opts = PolicyResourceOptions(protect, [], False, [], PolicyCustomTimeouts(0, 0, 0), [])
    urn = urn or f"urn:pulumi:test::bluegreen::{type_}::{name}"
    return PolicyResource(type_, dict(props), urn, name, opts, None, None, list(dependencies), {})


def from_run(run: StackRun) -> list[PolicyResource]:
    """What the engine would hand the pack after this mocked run (inputs as props, protect flags)."""
    return [policy_resource(r.type, r.name, r.inputs, r.protect, urn=r.urn) for r in run.resources]


def violations(
    validate: Validate, resources: Iterable[PolicyResource], config: Mapping[str, Any] | None = None
) -> list[tuple[str, str | None]] | None:
    """(message, urn) per violation; None when the policy said it does not apply."""
    found: list[tuple[str, str | None]] = []
    args = StackValidationArgs(list(resources), dict(config or {}))
    try:
        validate(args, lambda message, urn=None: found.append((message, urn)))
    except _NotApplicableError:
        return None
    return found
