"""Guardrails: hand-built resources per table entry, and the real components' registrations."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from policy_args import from_run, policy_resource, violations
from pulumi_policy import PolicyResource
from test_aws_component import aws_stack
from test_azure_component import azure_stack
from test_gcp_component import gcp_stack

from policies import guardrails
from policies.pack import POLICIES

RDS = "aws:rds/instance:Instance"
CLOUD_SQL = "gcp:sql/databaseInstance:DatabaseInstance"
FLEXIBLE = "azure-native:dbforpostgresql:Server"
SAFE_RDS = {"deletionProtection": True, "storageEncrypted": True, "publiclyAccessible": False}
SAFE_CLOUD_SQL = {
    "deletionProtection": True,
    "settings": {"deletionProtectionEnabled": True, "ipConfiguration": {"ipv4Enabled": False}},
}
SAFE_FLEXIBLE = {"serverName": "prod-pg", "network": {"publicNetworkAccess": "Disabled"}}
DATABASE_POLICIES = {
    "database-protected": guardrails.validate_database_protected,
    "database-deletion-protected": guardrails.validate_database_deletion_protected,
    "database-private": guardrails.validate_database_private,
    "database-encrypted": guardrails.validate_database_encrypted,
}


def names(found: list[tuple[str, str | None]] | None) -> list[str]:
    assert found is not None, "policy said not applicable"
    return [message for message, _ in found]


def with_props(props: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(props)
    *parents, leaf = path.split(".")
    node = changed
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return changed


def test_every_policy_is_in_the_pack() -> None:
    assert [p.name for p in POLICIES] == [
        "migrations-backward-compatible",
        "database-protected",
        "database-deletion-protected",
        "database-private",
        "database-encrypted",
        "preview-not-open-to-world",
        "both-colors-declared",
        "live-color-has-capacity",
    ]
    assert all(p.enforcement_level.value == "mandatory" for p in POLICIES)


@pytest.mark.parametrize(
    ("type_", "props", "policy", "path", "bad", "fix"),
    [
        (RDS, SAFE_RDS, "database-deletion-protected", "deletionProtection", False, "deletion_protection=True"),
        (RDS, SAFE_RDS, "database-private", "publiclyAccessible", True, "publicly_accessible=False"),
        (RDS, SAFE_RDS, "database-encrypted", "storageEncrypted", False, "storage_encrypted=True"),
        (
            CLOUD_SQL,
            SAFE_CLOUD_SQL,
            "database-deletion-protected",
            "deletionProtection",
            False,
            "deletion_protection=True",
        ),
        (
            CLOUD_SQL,
            SAFE_CLOUD_SQL,
            "database-deletion-protected",
            "settings.deletionProtectionEnabled",
            False,
            "deletion_protection_enabled=True",
        ),
        (CLOUD_SQL, SAFE_CLOUD_SQL, "database-private", "settings.ipConfiguration.ipv4Enabled", True, "ipv4_enabled"),
        (FLEXIBLE, SAFE_FLEXIBLE, "database-private", "network.publicNetworkAccess", "Enabled", "'Disabled'"),
    ],
)
def test_database_facts_per_type(type_: str, props: dict[str, Any], policy: str, path: str, bad: Any, fix: str) -> None:
    validate = DATABASE_POLICIES[policy]
    lock = policy_resource(
        "azure-native:authorization:ManagementLockByScope", "db-lock", {"level": "CanNotDelete", "scope": "db-id"}
    )
    safe = policy_resource(type_, "db", props, protect=True)
    assert names(violations(validate, [safe, lock])) == []
    unsafe = policy_resource(type_, "db", with_props(props, path, bad), protect=True)
    (message,) = names(violations(validate, [unsafe, lock]))
    assert f"{type_} db" in message and fix in message


def test_database_must_be_protected_on_every_cloud() -> None:
    for type_, props in ((RDS, SAFE_RDS), (CLOUD_SQL, SAFE_CLOUD_SQL), (FLEXIBLE, SAFE_FLEXIBLE)):
        (message,) = names(violations(guardrails.validate_database_protected, [policy_resource(type_, "db", props)]))
        assert "protect=True" in message


def test_azure_deletion_protection_is_a_lock() -> None:
    server = policy_resource(FLEXIBLE, "prod-bluegreen-db", SAFE_FLEXIBLE, protect=True)
    (message,) = names(violations(guardrails.validate_database_deletion_protected, [server]))
    assert "CanNotDelete" in message
    read_only = policy_resource(
        "azure-native:authorization:ManagementLockAtResourceLevel",
        "lock",
        {"level": "CanNotDelete"},
        dependencies=[server],
    )
    assert names(violations(guardrails.validate_database_deletion_protected, [server, read_only])) == []
    weak = policy_resource(
        "azure-native:authorization:ManagementLockByScope",
        "lock",
        {"level": "NotSpecified", "scope": "x"},
        dependencies=[server],
    )
    assert len(names(violations(guardrails.validate_database_deletion_protected, [server, weak]))) == 1


@pytest.mark.parametrize(
    ("type_", "props", "open_"),
    [
        (
            "aws:ec2/securityGroup:SecurityGroup",
            {"ingress": [{"protocol": "tcp", "fromPort": 8443, "toPort": 8443, "cidrBlocks": ["0.0.0.0/0"]}]},
            True,
        ),
        (
            "aws:ec2/securityGroup:SecurityGroup",
            {"ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "ipv6CidrBlocks": ["::/0"]}]},
            True,
        ),
        (
            "aws:ec2/securityGroup:SecurityGroup",
            {"ingress": [{"protocol": "tcp", "fromPort": 80, "toPort": 80, "cidrBlocks": ["0.0.0.0/0"]}]},
            False,
        ),
        (
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            {"ipProtocol": "tcp", "fromPort": 8000, "toPort": 9000, "cidrIpv4": "0.0.0.0/0"},
            True,
        ),
        (
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            {"ipProtocol": "tcp", "fromPort": 8443, "toPort": 8443, "cidrIpv4": "10.0.0.0/8"},
            False,
        ),
        (
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            {"type": "ingress", "protocol": "tcp", "fromPort": 8443, "toPort": 8443, "cidrBlocks": ["0.0.0.0/0"]},
            True,
        ),
        (
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            {"type": "egress", "protocol": "tcp", "fromPort": 8443, "toPort": 8443, "cidrBlocks": ["0.0.0.0/0"]},
            False,
        ),
        (
            "gcp:compute/firewall:Firewall",
            {"sourceRanges": ["0.0.0.0/0"], "allows": [{"protocol": "tcp", "ports": ["8000-9000"]}]},
            True,
        ),
        (
            "gcp:compute/firewall:Firewall",
            {"sourceRanges": ["0.0.0.0/0"], "allows": [{"protocol": "tcp", "ports": ["443"]}]},
            False,
        ),
        (
            "azure-native:network:NetworkSecurityGroup",
            {
                "securityRules": [
                    {
                        "access": "Allow",
                        "direction": "Inbound",
                        "sourceAddressPrefix": "Internet",
                        "destinationPortRange": "8443",
                    }
                ]
            },
            True,
        ),
        (
            "azure-native:network:NetworkSecurityGroup",
            {
                "securityRules": [
                    {
                        "access": "Deny",
                        "direction": "Inbound",
                        "sourceAddressPrefix": "*",
                        "destinationPortRange": "8443",
                    }
                ]
            },
            False,
        ),
        (
            "azure-native:network:SecurityRule",
            {
                "access": "Allow",
                "direction": "Inbound",
                "sourceAddressPrefixes": ["10.0.0.0/8"],
                "destinationPortRanges": ["8443"],
            },
            False,
        ),
        (
            "azure-native:network:SecurityRule",
            {"access": "Allow", "direction": "Inbound", "sourceAddressPrefix": "*", "destinationPortRange": "*"},
            True,
        ),
    ],
)
def test_preview_port_ingress_per_type(type_: str, props: dict[str, Any], open_: bool) -> None:
    found = names(
        violations(
            guardrails.validate_preview_not_open, [policy_resource(type_, "edge", props)], {"preview_port": 8443}
        )
    )
    assert len(found) == int(open_), found
    if open_:
        assert "preview port 8443" in found[0] and "preview_cidrs" in found[0]


def test_preview_port_comes_from_the_stack_config(monkeypatch: pytest.MonkeyPatch) -> None:
    rule = policy_resource(
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "preview",
        {"ipProtocol": "tcp", "fromPort": 9443, "toPort": 9443, "cidrIpv4": "0.0.0.0/0"},
    )
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    assert names(violations(guardrails.validate_preview_not_open, [rule])) == []  # no port known: ports unchecked
    monkeypatch.setenv("PULUMI_CONFIG", '{"bluegreen:preview_port": "9443", "aws:region": "eu-west-1"}')
    assert len(names(violations(guardrails.validate_preview_not_open, [rule]))) == 1


def service(name: str, count: int, color: str | None = None) -> PolicyResource:
    tags = {"bluegreen:color": color} if color else {}
    return policy_resource("aws:ecs/service:Service", name, {"desiredCount": count, "tags": tags})


def test_both_colours_and_live_capacity_by_name_or_tag() -> None:
    both = [service("prod-bluegreen-blue-service", 2), service("svc-a", 0, color="green")]
    assert names(violations(guardrails.validate_both_colors, both)) == []
    (message,) = names(violations(guardrails.validate_both_colors, both[:1]))
    assert "no green aws:ecs/service:Service" in message
    assert violations(guardrails.validate_both_colors, []) is None  # nothing this pack knows: not applicable
    assert names(violations(guardrails.validate_live_capacity, both, {"live_color": "blue"})) == []
    (message,) = names(violations(guardrails.validate_live_capacity, both, {"live_color": "green"}))
    assert "live colour green has capacity 0" in message
    cloud_run = policy_resource(
        "gcp:cloudrunv2/service:Service", "x-green-run", {"template": {"scaling": {"minInstanceCount": 0}}}
    )
    assert len(names(violations(guardrails.validate_live_capacity, [cloud_run], {"live_color": "green"}))) == 1
    app = policy_resource("azure-native:app:ContainerApp", "x-blue-app", {"template": {"scale": {"minReplicas": 1}}})
    assert names(violations(guardrails.validate_live_capacity, [app], {"live_color": "blue"})) == []


# -- what the real components register ----------------------------------------------------


def all_violations(resources: list[PolicyResource], config: dict[str, Any]) -> dict[str, list[str]]:
    found = {}
    for policy in POLICIES:
        if policy.name == "migrations-backward-compatible":
            continue  # tested in test_policy_migrations.py, over the migrations it registers
        result = violations(policy._StackValidationPolicy__validate, resources, config)  # type: ignore[attr-defined]
        if result:
            found[policy.name] = [m for m, _ in result]
    return found


STACKS = {
    "aws": lambda **c: aws_stack(**c),
    "gcp": lambda **c: gcp_stack(**c),
    "azure": lambda **c: azure_stack(**c),
}


@pytest.mark.parametrize("cloud", sorted(STACKS))
def test_real_components_pass_every_guardrail(cloud: str) -> None:
    run = STACKS[cloud](live_color="green", green_version="2.0.0", preview_port=8443)
    resources = from_run(run)
    config = {"preview_port": 8443, "live_color": "green"}
    assert {r.resource_type for r in resources} & set(guardrails.DATABASES), "the database type is in the table"
    assert {r.resource_type for r in resources} & set(guardrails.CAPACITY), "the compute type is in the table"
    assert all_violations(resources, config) == {}


def mutate(resources: list[PolicyResource], type_: str, change: Any, name_contains: str = "") -> list[PolicyResource]:
    out = []
    for r in resources:
        if r.resource_type == type_ and name_contains in r.name:
            props = copy.deepcopy(dict(r.props))
            change(props)
            r = policy_resource(r.resource_type, r.name, props, r.opts.protect, urn=r.urn)
        out.append(r)
    return out


def test_real_aws_stack_with_unsafe_changes_is_rejected() -> None:
    resources = from_run(aws_stack(preview_port=8443))
    config = {"preview_port": 8443, "live_color": "blue"}
    public_db = mutate(resources, RDS, lambda p: p.update(publiclyAccessible=True))
    assert list(all_violations(public_db, config)) == ["database-private"]
    world_preview = mutate(
        resources,
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        lambda p: p.update(cidrIpv4="0.0.0.0/0"),
        "preview",
    )
    assert list(all_violations(world_preview, config)) == ["preview-not-open-to-world"]
    no_live = mutate(resources, "aws:ecs/service:Service", lambda p: p.update(desiredCount=0), "-blue-")
    assert list(all_violations(no_live, config)) == ["live-color-has-capacity"]
    unprotected = [
        policy_resource(r.resource_type, r.name, r.props, False, urn=r.urn) if r.resource_type == RDS else r
        for r in resources
    ]
    assert list(all_violations(unprotected, config)) == ["database-protected"]
    one_colour = [r for r in resources if not (r.resource_type == "aws:ecs/service:Service" and "-green-" in r.name)]
    assert list(all_violations(one_colour, config)) == ["both-colors-declared"]


def test_real_gcp_preview_armor_that_allows_everyone_is_rejected() -> None:
    resources = from_run(gcp_stack(preview_port=8443))

    def open_armor(props: dict[str, Any]) -> None:
        props["rules"][-1]["action"] = "allow"

    found = all_violations(mutate(resources, "gcp:compute/securityPolicy:SecurityPolicy", open_armor), {})
    assert list(found) == ["preview-not-open-to-world"] and "allows *" in found["preview-not-open-to-world"][0]

    def no_armor(props: dict[str, Any]) -> None:
        props.pop("securityPolicy", None)

    found = all_violations(mutate(resources, "gcp:compute/backendService:BackendService", no_armor, "preview"), {})
    assert len(found["preview-not-open-to-world"]) == 2  # one per colour's preview backend


def test_real_azure_stack_without_its_lock_is_rejected() -> None:
    resources = from_run(azure_stack())
    unlocked = [r for r in resources if r.resource_type != "azure-native:authorization:ManagementLockByScope"]
    assert list(all_violations(unlocked, {"preview_port": 8443})) == ["database-deletion-protected"]


REVIEW_PREVIEWS = {"enabled": True, "repository": "acme/bluegreen", "credentials": "esc"}
# Where each cloud's database says it is a review stack's throwaway one.
EPHEMERAL_MARK = {
    "aws": ("tags", "bluegreen:ephemeral"),
    "gcp": ("settings", "userLabels", "ephemeral"),
    "azure": ("tags", "bluegreen-ephemeral"),
}


@pytest.mark.parametrize("cloud", sorted(STACKS))
def test_review_stack_database_may_go_unprotected_but_nothing_else(cloud: str) -> None:
    run = STACKS[cloud](stack="pr-acme-bluegreen-7", previews=REVIEW_PREVIEWS, preview_port=8443)
    resources = from_run(run)
    (database,) = [r for r in resources if r.resource_type in guardrails.DATABASES]
    assert database.opts.protect is False, "a review stack's database can be destroyed with its stack"
    assert all_violations(resources, {"preview_port": 8443}) == {}

    *parents, key = EPHEMERAL_MARK[cloud]
    unmarked = copy.deepcopy(database.props)
    holder = unmarked
    for part in parents:
        holder = holder[part]
    assert holder[key] == "true"
    holder[key] = "false"
    resources = [
        policy_resource(r.resource_type, r.name, unmarked, r.opts.protect, urn=r.urn) if r is database else r
        for r in resources
    ]
    found = all_violations(resources, {"preview_port": 8443})
    assert "database-protected" in found and "database-deletion-protected" in found
