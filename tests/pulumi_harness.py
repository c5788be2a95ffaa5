"""Runs the real ``__main__.py`` under Pulumi mocks and records every registration.

Each run gets a fresh event loop, a fresh root stack and fresh config (the design's
testing notes). The recorder keeps what the engine would see: type, name, parent,
custom or component, ``protect``, and the inputs with secrets still marked, so tests
can assert on routing, protection and secrecy, and diff two runs for the minimal
switch. Mocks apply no ``Pulumi.yaml`` defaults and do not detect duplicate names, so
the recorder checks duplicate URNs itself.
"""

from __future__ import annotations

import asyncio
import json
import runpy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.config import set_all_config

ROOT = Path(__file__).resolve().parent.parent

# What a secret looks like in the recorded inputs (so a test can tell it from plain text).
SECRET = "<<secret>>"

# Ids and outputs the mocks return for resources whose outputs the program reads.
MockOutputs = Callable[[pulumi.runtime.MockResourceArgs], dict[str, Any]]
# What an invoke returns instead of the default answer (None: the default).
MockCalls = Callable[[pulumi.runtime.MockCallArgs], dict[str, Any] | None]


@dataclass(frozen=True)
class Registration:
    """One resource as the engine would have received it."""

    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    protect: bool
    inputs: dict[str, Any]
    secret_paths: frozenset[str]
    additional_secret_outputs: tuple[str, ...]
    ignore_changes: tuple[str, ...]
    dependencies: tuple[str, ...] = ()  # URNs it waits for (depends_on and inputs' resources)
    retain_on_delete: bool = False


@dataclass
class StackRun:
    """The result of one mocked run of the program."""

    resources: list[Registration]
    outputs: dict[str, Any]
    stack: str
    secret_outputs: frozenset[str] = frozenset()
    invokes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name_contains: str = "") -> Registration:
        found = [r for r in self.of_type(type_) if name_contains in r.name]
        assert len(found) == 1, f"expected one {type_} named *{name_contains}*, got {[r.name for r in found]}"
        return found[0]

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.resources if r.urn == urn)

    def by_name(self) -> dict[tuple[str, str], Registration]:
        return {(r.type, r.name): r for r in self.resources}


class ProgramFailedError(Exception):
    """The program raised; ``resources`` says what it had registered by then."""

    def __init__(self, cause: Exception, resources: list[Registration]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.resources = resources


def _mark_secrets(value: Any, path: str, found: set[str]) -> Any:
    """Replace secret values by :data:`SECRET` and remember where they were."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            found.add(path)
            return SECRET
        return {k: _mark_secrets(v, f"{path}.{k}" if path else k, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_mark_secrets(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    return value


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.invokes: list[tuple[str, dict[str, Any]]] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            # Secrets arrive as {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", ...}.
            raw = json.loads(json.dumps(_struct_to_python(request.object)))
            found: set[str] = set()
            inputs = _mark_secrets(raw, "", found)
            urn = response.urn
            if any(r.urn == urn for r in self.registrations):
                raise AssertionError(f"duplicate resource URN {urn}: the engine would refuse this program")
            self.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    urn=urn,
                    parent=request.parent,
                    custom=request.custom,
                    protect=request.protect,
                    inputs=inputs,
                    secret_paths=frozenset(found),
                    additional_secret_outputs=tuple(request.additionalSecretOutputs),
                    ignore_changes=tuple(request.ignoreChanges),
                    dependencies=tuple(request.dependencies),
                    retain_on_delete=bool(request.retainOnDelete),
                )
            )
        return response

    def Invoke(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        self.invokes.append((request.tok, _struct_to_python(request.args)))
        return super().Invoke(request)


def _struct_to_python(struct: Any) -> Any:
    from google.protobuf import json_format

    return json_format.MessageToDict(struct)


# Outputs the clouds compute (never inputs) that programs read, keyed by resource type.
COMPUTED_OUTPUTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "aws:lb/loadBalancer:LoadBalancer": lambda n: {
        "dnsName": f"{n}-123.eu-west-1.elb.amazonaws.com",
        "arnSuffix": f"app/{n}/0123456789abcdef",
        "zoneId": "Z32O12XQLNTSW2",  # the ALB hosted zone of eu-west-1
    },
    "aws:lb/targetGroup:TargetGroup": lambda n: {"arnSuffix": f"targetgroup/{n}/0123456789abcdef"},
    "aws:rds/instance:Instance": lambda n: {"address": f"{n}.abc.eu-west-1.rds.amazonaws.com", "endpoint": f"{n}:5432"},
    "random:index/randomPassword:RandomPassword": lambda n: {"result": f"mock-password-of-{n}"},
}


class DefaultMocks(pulumi.runtime.Mocks):
    """Ids derived from names; outputs echo inputs, plus computed outputs and what ``extra`` adds."""

    def __init__(self, extra: MockOutputs | None = None, calls: MockCalls | None = None) -> None:
        self.extra = extra
        self.calls = calls
        self.states: dict[str, dict[str, Any]] = {}  # type + name -> state, for invokes that read one back

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        state.setdefault("arn", f"arn:mock:{args.typ}:{args.name}")
        state.setdefault("name", args.name)
        if args.typ in COMPUTED_OUTPUTS:
            state.update(COMPUTED_OUTPUTS[args.typ](args.name))
        if self.extra:
            state.update(self.extra(args))
        self.states[f"{args.typ}::{state['name']}"] = state
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        answer = self.calls(args) if self.calls else None
        if answer is not None:
            return answer
        if args.token == "aws:ecs/getService:getService":
            # ECS did what the update asked: the PRIMARY deployment runs the service's task definition.
            service = self.states.get(f"aws:ecs/service:Service::{args.args.get('serviceName')}", {})
            task_definition = service.get("taskDefinition")
            return {
                "serviceName": args.args.get("serviceName"),
                "clusterArn": args.args.get("clusterArn"),
                "taskDefinition": task_definition,
                "deployments": [{"status": "PRIMARY", "taskDefinition": task_definition}],
            }
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": ["eu-west-1a", "eu-west-1b", "eu-west-1c"], "zoneIds": ["z1", "z2", "z3"]}
        if args.token in ("aws:index/getRegion:getRegion",):
            return {"name": "eu-west-1", "region": "eu-west-1", "id": "eu-west-1"}
        if args.token in ("aws:index/getCallerIdentity:getCallerIdentity",):
            return {"accountId": "123456789012", "arn": "arn:aws:iam::123456789012:user/ci", "userId": "ci"}
        if args.token == "azure-native:authorization:getClientConfig":
            return {
                "clientId": "00000000-0000-0000-0000-0000000000c1",
                "objectId": "00000000-0000-0000-0000-0000000000b1",
                "subscriptionId": "00000000-0000-0000-0000-00000000005b",
                "tenantId": "00000000-0000-0000-0000-00000000007e",
            }
        return {}


def _config_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def with_deployed(extra: MockOutputs | None, deployed: Mapping[str, Any] | None) -> MockOutputs:
    """``extra`` plus the stack's last outputs for the program's stack reference to itself."""

    def outputs(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
        found = dict(extra(args)) if extra else {}
        if args.typ == "pulumi:pulumi:StackReference":
            found["outputs"] = dict(deployed or {})
        return found

    return outputs


def run_stack(
    config: Mapping[str, Any],
    stack: str = "test",
    provider_config: Mapping[str, str] | None = None,
    extra_outputs: MockOutputs | None = None,
    preview: bool = False,
    calls: MockCalls | None = None,
) -> StackRun:
    """Run ``__main__.py`` with ``bluegreen:`` config (and provider config such as ``aws:region``).

    An exception raised by the program comes back as :class:`ProgramFailedError`, carrying
    what had been registered, so a config test can assert that nothing was.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        pulumi.runtime.settings.reset_options()
        mocks = DefaultMocks(extra_outputs, calls)
        monitor = _RecordingMonitor(mocks)
        all_config = {f"bluegreen:{k}": _config_value(v) for k, v in config.items()}
        all_config.update(provider_config or {})
        set_all_config(all_config)
        pulumi.runtime.set_mocks(
            mocks, project="bluegreen", stack=stack, preview=preview, monitor=monitor, organization="acme"
        )
        outputs: dict[str, Any] = {}
        exported: dict[str, Any] = {}

        @pulumi.runtime.test
        def program() -> pulumi.Output[Any]:
            module_globals = runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
            target_outputs = module_globals["target"].outputs
            exported.update(target_outputs)

            def keep(resolved: dict[str, Any]) -> dict[str, Any]:
                outputs.update(resolved)
                return resolved

            return pulumi.Output.all(**target_outputs).apply(keep)

        try:
            program()
        except Exception as exc:
            raise ProgramFailedError(exc, list(monitor.registrations)) from exc
        flags = loop.run_until_complete(
            asyncio.gather(*(pulumi.Output.from_input(v).is_secret() for v in exported.values()))
        )
        return StackRun(
            resources=list(monitor.registrations),
            outputs=outputs,
            stack=stack,
            secret_outputs=frozenset(k for k, secret in zip(exported, flags, strict=True) if secret),
            invokes=monitor.invokes,
        )
    finally:
        set_all_config({})
        asyncio.set_event_loop(None)
        loop.close()
