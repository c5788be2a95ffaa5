"""Safety guardrails, one table entry per cloud resource type.

Each table maps a resource type (as the engine names it) to how to read one fact from
its properties (camelCase, as the engine sends them). A new cloud adds one entry per
table and touches no policy code. The facts that are not on a resource (which port is
the preview route, which colour is live) come from the stack config the engine hands
the pack (``PULUMI_CONFIG``) or from the policy's own config, and from the migration
records, which carry the release.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import PolicyResource, ReportViolation, StackValidationArgs

from components.config import COLORS, ConfigError, StackConfig

Props = Mapping[str, Any]


def dig(props: Any, *path: str) -> Any:
    """``dig(p, "settings", "ipConfiguration", "ipv4Enabled")`` without KeyErrors."""
    for key in path:
        if not isinstance(props, Mapping):
            return None
        props = props.get(key)
    return props


# -- the shared database ------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseFacts:
    """How one database resource type says it is deletion-protected, private and encrypted."""

    deletion_protected: Callable[[Props], bool]
    private: Callable[[Props], bool]
    encrypted: Callable[[Props], bool]
    fixes: Mapping[str, str]
    # A review stack's throwaway database (bluegreen:db.ephemeral, never in prod) says so
    # in a tag or label; protect and deletion protection do not apply to it.
    ephemeral: Callable[[Props], bool]
    # Some clouds protect from deletion with a separate lock resource (Azure).
    lock_types: tuple[str, ...] = ()


AZURE_LOCK_TYPES = (
    "azure-native:authorization:ManagementLockAtResourceLevel",
    "azure-native:authorization:ManagementLockByScope",
    "azure-native:authorization:ManagementLockAtResourceGroupLevel",
)

DATABASES: dict[str, DatabaseFacts] = {
    "aws:rds/instance:Instance": DatabaseFacts(
        deletion_protected=lambda p: p.get("deletionProtection") is True,
        private=lambda p: p.get("publiclyAccessible") is not True,
        encrypted=lambda p: p.get("storageEncrypted") is True,
        fixes={
            "deletion": "set deletion_protection=True",
            "private": "set publicly_accessible=False and use private subnets",
            "encrypted": "set storage_encrypted=True (needs a new instance from an encrypted snapshot)",
        },
        ephemeral=lambda p: dig(p, "tags", "bluegreen:ephemeral") == "true",
    ),
    "aws:rds/cluster:Cluster": DatabaseFacts(
        deletion_protected=lambda p: p.get("deletionProtection") is True,
        private=lambda p: True,  # a cluster's reachability is decided on its instances
        encrypted=lambda p: p.get("storageEncrypted") is True,
        fixes={"deletion": "set deletion_protection=True", "private": "", "encrypted": "set storage_encrypted=True"},
        ephemeral=lambda p: dig(p, "tags", "bluegreen:ephemeral") == "true",
    ),
    "gcp:sql/databaseInstance:DatabaseInstance": DatabaseFacts(
        # Both flags: the provider's (blocks pulumi destroy) and the API's (blocks console/gcloud deletes).
        deletion_protected=lambda p: (
            p.get("deletionProtection") is not False and dig(p, "settings", "deletionProtectionEnabled") is True
        ),
        private=lambda p: dig(p, "settings", "ipConfiguration", "ipv4Enabled") is False,
        encrypted=lambda p: True,  # Cloud SQL always encrypts at rest
        fixes={
            "deletion": "set deletion_protection=True and settings.deletion_protection_enabled=True",
            "private": "set settings.ip_configuration.ipv4_enabled=False with a private_network",
            "encrypted": "",
        },
        ephemeral=lambda p: dig(p, "settings", "userLabels", "ephemeral") == "true",
    ),
    "azure-native:dbforpostgresql:Server": DatabaseFacts(
        deletion_protected=lambda p: False,  # only a CanNotDelete lock protects it
        private=lambda p: (
            dig(p, "network", "publicNetworkAccess") == "Disabled"
            or bool(dig(p, "network", "delegatedSubnetResourceId"))
        ),
        encrypted=lambda p: True,  # Flexible Server always encrypts at rest
        fixes={
            "deletion": "add a ManagementLockAtResourceLevel with level='CanNotDelete' on the server",
            "private": "set network.public_network_access='Disabled' or a delegated subnet",
            "encrypted": "",
        },
        ephemeral=lambda p: dig(p, "tags", "bluegreen-ephemeral") == "true",
        lock_types=AZURE_LOCK_TYPES,
    ),
}


def _databases(resources: Iterable[PolicyResource]) -> list[tuple[PolicyResource, DatabaseFacts]]:
    return [(r, DATABASES[r.resource_type]) for r in resources if r.resource_type in DATABASES]


def _kept_databases(resources: Iterable[PolicyResource]) -> list[tuple[PolicyResource, DatabaseFacts]]:
    """The databases that must survive: all but a review stack's ephemeral one."""
    return [(r, facts) for r, facts in _databases(resources) if not facts.ephemeral(r.props)]


def _locked(database: PolicyResource, facts: DatabaseFacts, resources: Sequence[PolicyResource]) -> bool:
    for lock in resources:
        if lock.resource_type not in facts.lock_types or lock.props.get("level") not in ("CanNotDelete", "ReadOnly"):
            continue
        target = " ".join(str(v) for v in lock.props.values())
        names = {database.name, str(database.props.get("serverName") or "")} - {""}
        depends = any(d.urn == database.urn for d in lock.dependencies)
        if depends or any(name in target for name in names):
            return True
    return False


def validate_database_protected(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for database, _facts in _kept_databases(args.resources):
        if not database.opts.protect:
            report_violation(
                f"{database.resource_type} {database.name} is the database both colours share and is not "
                "protect=True; a mistaken replace or destroy would delete it. Fix: pass "
                "opts=pulumi.ResourceOptions(protect=True).",
                database.urn,
            )


def validate_database_deletion_protected(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = list(args.resources)
    for database, facts in _kept_databases(resources):
        if facts.deletion_protected(database.props) or (facts.lock_types and _locked(database, facts, resources)):
            continue
        report_violation(
            f"{database.resource_type} {database.name} has no deletion protection. Fix: {facts.fixes['deletion']}.",
            database.urn,
        )


def _database_fact(args: StackValidationArgs, report_violation: ReportViolation, fact: str, problem: str) -> None:
    for database, facts in _databases(args.resources):
        if not getattr(facts, fact)(database.props):
            fix = facts.fixes[fact]
            report_violation(f"{database.resource_type} {database.name} {problem}. Fix: {fix}.", database.urn)


def validate_database_private(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    _database_fact(args, report_violation, "private", "is reachable from the internet")


def validate_database_encrypted(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    _database_fact(args, report_violation, "encrypted", "is not encrypted at rest")


# -- the preview route ----------------------------------------------------------------

WORLD_SOURCES = frozenset({"*", "internet", "any"})
ALL_PORTS = (0, 65535)

# (sources, first port, last port) of every inbound allow rule of a resource.
Ingress = list[tuple[list[str], int, int]]


def _ports(spec: Any) -> tuple[int, int]:
    """'8443', '8000-9000', '*' or an int -> a port range."""
    text = str(spec).strip()
    if text in ("*", "", "None"):
        return ALL_PORTS
    low, _, high = text.partition("-")
    return int(low), int(high or low)


def _aws_rule(rule: Props) -> tuple[list[str], int, int]:
    sources = [*(rule.get("cidrBlocks") or []), *(rule.get("ipv6CidrBlocks") or [])]
    for key in ("cidrIpv4", "cidrIpv6"):
        if rule.get(key):
            sources.append(rule[key])
    if str(rule.get("protocol", rule.get("ipProtocol"))) == "-1":
        return sources, *ALL_PORTS
    return sources, int(rule.get("fromPort") or 0), int(rule.get("toPort") or rule.get("fromPort") or 0)


def _gcp_firewall(p: Props) -> Ingress:
    if str(p.get("direction") or "INGRESS").upper() != "INGRESS":
        return []
    sources = list(p.get("sourceRanges") or [])
    rules: Ingress = []
    for allow in p.get("allows") or []:
        for spec in allow.get("ports") or ["*"]:
            rules.append((sources, *_ports(spec)))
    return rules


def _azure_rule(rule: Props) -> Ingress:
    rule = rule.get("properties", rule)
    if str(rule.get("access")).lower() != "allow" or str(rule.get("direction")).lower() != "inbound":
        return []
    sources = [
        *(rule.get("sourceAddressPrefixes") or []),
        *([rule["sourceAddressPrefix"]] if rule.get("sourceAddressPrefix") else []),
    ]
    specs = [
        *(rule.get("destinationPortRanges") or []),
        *([rule["destinationPortRange"]] if rule.get("destinationPortRange") else []),
    ]
    return [(sources, *_ports(spec)) for spec in specs or ["*"]]


INGRESS: dict[str, Callable[[Props], Ingress]] = {
    "aws:ec2/securityGroup:SecurityGroup": lambda p: [_aws_rule(r) for r in p.get("ingress") or []],
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": lambda p: [_aws_rule(p)],
    "aws:ec2/securityGroupRule:SecurityGroupRule": lambda p: [_aws_rule(p)] if p.get("type") == "ingress" else [],
    "gcp:compute/firewall:Firewall": _gcp_firewall,
    "azure-native:network:NetworkSecurityGroup": lambda p: [
        x for r in p.get("securityRules") or [] for x in _azure_rule(r)
    ],
    "azure-native:network:SecurityRule": _azure_rule,
}


def _is_world(source: str) -> bool:
    if source.lower() in WORLD_SOURCES:
        return True
    try:
        return ipaddress.ip_network(source, strict=False).prefixlen == 0
    except ValueError:
        return False


def stack_config() -> StackConfig | None:
    """The stack's own config as the engine passes it to the pack (None outside the engine)."""
    raw_env = os.environ.get("PULUMI_CONFIG")
    if not raw_env:
        return None
    prefix = "bluegreen:"
    raw = {k[len(prefix) :]: v for k, v in json.loads(raw_env).items() if k.startswith(prefix)}
    try:
        return StackConfig.parse(raw, os.environ.get("PULUMI_STACK", "policy"))
    except ConfigError:
        return None  # the program itself reports a bad config, with the key and what is allowed


def preview_port(args: StackValidationArgs) -> int | None:
    configured = args.get_config().get("preview_port")
    if configured:
        return int(configured)
    config = stack_config()
    return config.preview_port if config else None


def _gcp_preview_armor(resource: PolicyResource, resources: Sequence[PolicyResource]) -> str | None:
    """A preview security policy lets the world in when its first rule matching '*' allows."""
    referenced = any(
        "preview" in r.name and resource.name in str(r.props.get("securityPolicy") or "")
        for r in resources
        if r.resource_type == "gcp:compute/backendService:BackendService"
    )
    if "preview" not in resource.name and not referenced:
        return None
    rules = sorted(resource.props.get("rules") or [], key=lambda r: float(r.get("priority") or 0))
    for rule in rules:
        sources = dig(rule, "match", "config", "srcIpRanges") or []
        if any(_is_world(str(s)) for s in sources):
            if str(rule.get("action", "")).startswith("allow"):
                return f"rule {rule.get('priority')} allows {', '.join(map(str, sources))}"
            return None
    return "no rule denies the rest of the world (Cloud Armor allows by default)"


def _gcp_preview_backend(resource: PolicyResource, _resources: Sequence[PolicyResource]) -> str | None:
    if "preview" in resource.name and not resource.props.get("securityPolicy"):
        return "no Cloud Armor security policy limits who reaches it"
    return None


# Preview routes limited by a policy on the route rather than by a port rule.
PREVIEW_ROUTES: dict[str, Callable[[PolicyResource, Sequence[PolicyResource]], str | None]] = {
    "gcp:compute/securityPolicy:SecurityPolicy": _gcp_preview_armor,
    "gcp:compute/backendService:BackendService": _gcp_preview_backend,
}


def _port_of(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _aws_header_gate(resources: Sequence[PolicyResource], port: int) -> bool:
    """The ALB's preview listener answers by itself (no forward) and a rule forwards on a header."""
    listeners = [
        r for r in resources if r.resource_type == "aws:lb/listener:Listener" and _port_of(r.props.get("port")) == port
    ]
    forwards = any(
        str(action.get("type")) == "forward" or action.get("targetGroupArn")
        for listener in listeners
        for action in listener.props.get("defaultActions") or []
    )
    header_rules = [
        r
        for r in resources
        if r.resource_type == "aws:lb/listenerRule:ListenerRule"
        and any(dig(c, "httpHeader", "values") for c in r.props.get("conditions") or [])
    ]
    return bool(listeners) and not forwards and bool(header_rules)


def _azure_header_gate(resources: Sequence[PolicyResource], port: int) -> bool:
    """A WAF policy blocks requests without the header, and the gateway's preview listener carries one."""

    def blocks_without_header(rule: Props) -> bool:
        return str(rule.get("action")) == "Block" and any(
            condition.get("negationConditon") is True
            and condition.get("matchValues")
            and any(v.get("variableName") == "RequestHeaders" for v in condition.get("matchVariables") or [])
            for condition in rule.get("matchConditions") or []
        )

    gate = any(
        r.resource_type == "azure-native:network:WebApplicationFirewallPolicy"
        and any(blocks_without_header(rule) for rule in r.props.get("customRules") or [])
        for r in resources
    )
    for gateway in resources:
        if gateway.resource_type != "azure-native:network:ApplicationGateway":
            continue
        names = {p.get("name") for p in gateway.props.get("frontendPorts") or [] if _port_of(p.get("port")) == port}
        for listener in gateway.props.get("httpListeners") or []:
            on_port = str(dig(listener, "frontendPort", "id") or "").rsplit("/", 1)[-1] in names
            if on_port and not listener.get("firewallPolicy"):
                return False  # the preview listener is known and unguarded
    return gate


# A preview port open to every address is still closed when every request must carry the
# stack's secret header (bluegreen:preview_header): how each cloud says so.
PREVIEW_HEADER_GATES: tuple[Callable[[Sequence[PolicyResource], int], bool], ...] = (
    _aws_header_gate,
    _azure_header_gate,
)

PREVIEW_FIX = (
    "limit it to bluegreen:preview_cidrs (never 0.0.0.0/0 or ::/0), or require the secret preview header "
    "(bluegreen:preview_header)"
)


def validate_preview_not_open(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = list(args.resources)
    port = preview_port(args)
    gated = port is not None and any(gate(resources, port) for gate in PREVIEW_HEADER_GATES)
    for resource in resources:
        route_check = PREVIEW_ROUTES.get(resource.resource_type)
        problem = route_check(resource, resources) if route_check else None
        if problem:
            report_violation(
                f"{resource.resource_type} {resource.name} guards the preview route (the idle colour, an unreleased "
                f"version) but {problem}. Fix: {PREVIEW_FIX}.",
                resource.urn,
            )
        read = INGRESS.get(resource.resource_type)
        if port is None or read is None:
            continue
        for sources, low, high in read(resource.props):
            world = [s for s in sources if _is_world(str(s))]
            if world and low <= port <= high and not gated:
                report_violation(
                    f"{resource.resource_type} {resource.name} lets {', '.join(world)} reach the preview port {port}: "
                    f"the preview route serves the idle colour, an unreleased version, to anyone. Fix: {PREVIEW_FIX}.",
                    resource.urn,
                )


# -- the colours ---------------------------------------------------------------------

CAPACITY: dict[str, Callable[[Props], int]] = {
    "aws:ecs/service:Service": lambda p: int(p.get("desiredCount") or 0),
    "gcp:cloudrunv2/service:Service": lambda p: max(
        int(dig(p, "template", "scaling", "minInstanceCount") or 0),
        int(dig(p, "scaling", "minInstanceCount") or 0),
        int(dig(p, "scaling", "manualInstanceCount") or 0),
    ),
    "azure-native:app:ContainerApp": lambda p: int(dig(p, "template", "scale", "minReplicas") or 0),
}
COLOR_KEYS = ("color", "colour", "bluegreen-color", "bluegreen:color")


def color_of(resource: PolicyResource) -> str | None:
    """A colour from the resource's tags/labels, else from its name (``prod-bluegreen-blue-svc``)."""
    for bag in ("tags", "labels"):
        tags = resource.props.get(bag)
        if isinstance(tags, Mapping):
            for key in COLOR_KEYS:
                if tags.get(key) in COLORS:
                    return str(tags[key])
    tokens = resource.name.lower().replace("_", "-").split("-")
    found = [c for c in COLORS if c in tokens]
    return found[0] if len(found) == 1 else None


def live_color(args: StackValidationArgs) -> str | None:
    config = stack_config()
    if config:
        return config.live_color
    return args.get_config().get("live_color")


def _compute_by_type(resources: Iterable[PolicyResource]) -> dict[str, dict[str, list[PolicyResource]]]:
    by_type: dict[str, dict[str, list[PolicyResource]]] = {}
    for resource in resources:
        if resource.resource_type in CAPACITY:
            colors = by_type.setdefault(resource.resource_type, {c: [] for c in COLORS})
            color = color_of(resource)
            if color:
                colors[color].append(resource)
    return by_type


def validate_both_colors(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    by_type = _compute_by_type(args.resources)
    if not by_type:
        args.not_applicable("no compute resource type this pack knows")
    for resource_type, colors in by_type.items():
        missing = [c for c in COLORS if not colors[c]]
        if missing:
            report_violation(
                f"no {' or '.join(missing)} {resource_type} in the stack: blue-green needs both colours declared "
                "at all times so a rollback is one routing change. Fix: keep the idle colour registered "
                "(scale it with bluegreen:idle_capacity instead of removing it)."
            )


def validate_live_capacity(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    by_type = _compute_by_type(args.resources)
    if not by_type:
        args.not_applicable("no compute resource type this pack knows")
    live = live_color(args)
    for resource_type, colors in by_type.items():
        checked = [live] if live else list(COLORS)
        capacities = {c: sum(CAPACITY[resource_type](r.props) for r in colors[c]) for c in checked}
        if all(capacity < 1 for capacity in capacities.values()) and any(colors[c] for c in checked):
            who = f"the live colour {live}" if live else "neither colour"
            resource = next(r for c in checked for r in colors[c])
            report_violation(
                f"{who} has capacity {max(capacities.values())} in {resource_type}: production traffic would get "
                "errors. Fix: bluegreen:capacity >= 1 for the live colour.",
                resource.urn,
            )
