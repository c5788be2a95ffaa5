"""The GCP target: Cloud Run per colour behind one global external Application Load Balancer.

Each colour is a Cloud Run service reached only through the load balancer, with a
serverless NEG and two backend services: one for production traffic and one for the
preview route, which carries a Cloud Armor policy that admits only requests with the
stack's secret preview header and/or from ``preview_cidrs`` (Cloud Armor attaches to
backend services, so a separate preview backend keeps the guard off production traffic
and keeps each colour's production metrics apart from smoke-test traffic). Two URL
maps are the only resources that know ``live_color``: the production one weights the
colours' backend services (live 100 / idle 0, or a step of a gradual switch) and the
preview one points at the idle colour. Flipping ``live_color`` therefore updates those
two URL maps and nothing else. Both colours share one Cloud SQL for PostgreSQL instance
on a private IP.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import pulumi
import pulumi_random as random
from pulumi_gcp import (
    cloudrunv2,
    compute,
    monitoring,
    projects,
    secretmanager,
    serviceaccount,
    servicenetworking,
    sql,
)

from components import flip_guard
from components.config import COLORS, ConfigError, StackConfig, invalid
from components.targets import (
    PREVIEW_HEADER,
    contract_outputs,
    preview_header_outputs,
    preview_token,
    refuse_private_preview_cidrs,
)

COMPONENT_TYPE = "bluegreen:gcp:BlueGreen"
SETTINGS_KEY = "bluegreen:gcp"
METRICS_SOURCE = "cloud_monitoring"

# APIs the stack uses; enabled (and never disabled on destroy) so a fresh project deploys.
REQUIRED_APIS = (
    "compute.googleapis.com",
    "run.googleapis.com",
    "sqladmin.googleapis.com",
    "servicenetworking.googleapis.com",
    "secretmanager.googleapis.com",
    "iam.googleapis.com",
    "monitoring.googleapis.com",
)
# Small production default: PostgreSQL 16+ defaults to the Enterprise Plus edition,
# which does not offer db-custom tiers, so the edition is pinned with the tier.
DEFAULT_DB_TIER = "db-custom-1-3840"
# A review stack's throwaway database: the smallest shared-core tier.
EPHEMERAL_DB_TIER = "db-f1-micro"
DB_EDITION = "ENTERPRISE"
DB_PORT = 5432
# Cloud SQL keeps at most 7 days of transaction logs on the Enterprise edition.
MAX_LOG_RETENTION_DAYS = 7
# The load balancer metrics the alert policies watch (the monitor reads the same ones).
REQUEST_COUNT = "loadbalancing.googleapis.com/https/request_count"
BACKEND_LATENCIES = "loadbalancing.googleapis.com/https/backend_latencies"
# Cloud Armor accepts at most 10 source ranges per basic rule, and 5 subexpressions per
# expression: the header test and up to 4 ``inIpRange`` calls.
CIDRS_PER_ARMOR_RULE = 10
CIDRS_PER_HEADER_RULE = 4
# Direct VPC egress takes about 2 addresses per instance, and both colours may run up to
# max_instances; Google keeps 4 addresses of every subnet. Below a /26 it refuses the subnet.
ADDRESSES_PER_INSTANCE = 2
GCP_RESERVED_PER_SUBNET = 4
MIN_DIRECT_VPC_PREFIX = 26
DEFAULT_SUBNET_BASE = "10.10.0.0"
ARMOR_DEFAULT_PRIORITY = 2147483647
# Children append up to "-green-preview-backend" plus Pulumi's 8-character suffix; Cloud Run
# names stop at 49 characters, most Compute names at 63, service account ids at 30.
MAX_COMPONENT_NAME = 30
MAX_ACCOUNT_ID = 30
GCP_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
PROJECT_ID = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
REGION = re.compile(r"[a-z]+-[a-z]+[0-9]+")
DOMAIN_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
RESOURCE_PATH = re.compile(r"projects/[a-z0-9-]+/(global|regions/[a-z0-9-]+)/(networks|subnetworks)/[a-z0-9-]+")


def _fail(field: str, value: Any, allowed: str) -> ConfigError:
    return invalid(f"{SETTINGS_KEY}.{field}", value, allowed)


@dataclass(frozen=True)
class GcpSettings:
    """The ``bluegreen:gcp`` object: what only a GCP stack needs to say."""

    # A domain for a Google-managed certificate; without it the load balancer serves HTTP.
    domain: str | None = None
    # An existing VPC and subnetwork (names or self links) that already have private
    # services access for Cloud SQL; without them the stack creates both and the peering.
    network: str | None = None
    subnetwork: str | None = None
    # The subnetwork the stack creates for Cloud Run's direct VPC egress; by default sized
    # from max_instances (10.10.0.0/23 for the default 100).
    subnet_cidr: str = "10.10.0.0/23"
    # Cloud Run's ceiling per colour; the floor is the colour's capacity.
    max_instances: int = 100
    enable_apis: bool = True

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> GcpSettings:
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(raw) - set(allowed))
        if unknown:
            raise ConfigError(f"{SETTINGS_KEY} has unknown field(s) {unknown}; allowed: {', '.join(allowed)}")
        d = cls()
        domain = raw.get("domain") or None
        if domain is not None:
            domain = _domain(domain)
        network, subnetwork = raw.get("network") or None, raw.get("subnetwork") or None
        if (network is None) != (subnetwork is None):
            raise _fail(
                "network" if network is None else "subnetwork",
                None,
                "set both network and subnetwork to use an existing VPC, or neither to create one",
            )
        for key, value in (("network", network), ("subnetwork", subnetwork)):
            if value is not None and not (
                isinstance(value, str) and (GCP_NAME.fullmatch(value) or RESOURCE_PATH.fullmatch(value))
            ):
                raise _fail(key, value, f"a {key} name or a path like projects/P/.../{key}s/NAME")
        max_instances = raw.get("max_instances", d.max_instances)
        if isinstance(max_instances, bool) or not str(max_instances).isdigit() or not 1 <= int(max_instances) <= 1000:
            raise _fail("max_instances", max_instances, "an integer in 1-1000")
        subnet = _direct_vpc_subnet(raw.get("subnet_cidr"), int(max_instances))
        enable_apis = raw.get("enable_apis", d.enable_apis)
        if isinstance(enable_apis, str) and enable_apis.lower() in ("true", "false"):
            enable_apis = enable_apis.lower() == "true"
        if not isinstance(enable_apis, bool):
            raise _fail("enable_apis", enable_apis, "expected true or false")
        return cls(
            domain=domain,
            network=network,
            subnetwork=subnetwork,
            subnet_cidr=subnet,
            max_instances=int(max_instances),
            enable_apis=enable_apis,
        )


def _direct_vpc_subnet(value: Any, max_instances: int) -> str:
    """The created subnetwork: ``subnet_cidr`` if it holds both colours at ``max_instances``, else refused.

    Unset, it is the smallest block at 10.10.0.0 that does (two colours at 100 instances
    need 400 addresses: a /23, where a /24 would leave instances unable to start).
    """
    needed = ADDRESSES_PER_INSTANCE * len(COLORS) * max_instances
    if value is None or value == "":
        prefix = MIN_DIRECT_VPC_PREFIX
        while 2 ** (32 - prefix) - GCP_RESERVED_PER_SUBNET < needed:
            prefix -= 1
        return f"{DEFAULT_SUBNET_BASE}/{prefix}"
    try:
        subnet = ipaddress.ip_network(str(value), strict=True)
    except ValueError as exc:
        raise _fail("subnet_cidr", value, f"not a CIDR block ({exc})") from None
    shared = ipaddress.ip_network("100.64.0.0/10")
    private = subnet.is_private or (subnet.version == 4 and subnet.subnet_of(shared))  # type: ignore[arg-type]
    if subnet.version != 4 or not private or subnet.prefixlen > MIN_DIRECT_VPC_PREFIX:
        raise _fail("subnet_cidr", value, "a private IPv4 block of /26 or larger, e.g. 10.10.0.0/23")
    room = subnet.num_addresses - GCP_RESERVED_PER_SUBNET
    if room < needed:
        raise _fail(
            "subnet_cidr",
            value,
            f"Cloud Run's direct VPC egress takes about {ADDRESSES_PER_INSTANCE} addresses per instance, and both "
            f"colours may run bluegreen:gcp.max_instances ({max_instances}): {needed} addresses, but this "
            f"block has {room}; give a larger block, or lower max_instances to {room // (ADDRESSES_PER_INSTANCE * 2)}",
        )
    return str(subnet)


def _domain(value: Any) -> str:
    """A fully qualified name a Google-managed certificate can cover (no wildcards, no port)."""
    allowed = "a fully qualified domain name such as app.example.com (no scheme, port, path or wildcard)"
    if not isinstance(value, str):
        raise _fail("domain", value, allowed)
    name = value.lower().rstrip(".")
    labels = name.split(".")
    if (
        len(name) > 253
        or len(labels) < 2
        or not all(DOMAIN_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise _fail("domain", value, allowed)
    return name


@dataclass(frozen=True)
class GcpProvider:
    """The provider's own config (``gcp:project``, ``gcp:region``), read once and checked."""

    project: str
    region: str

    @classmethod
    def from_pulumi(cls) -> GcpProvider:
        cfg = pulumi.Config("gcp")
        project, region = cfg.get("project"), cfg.get("region")
        if not project:
            raise ConfigError("gcp:project is not set: run `pulumi config set gcp:project <project-id>`")
        if not PROJECT_ID.fullmatch(project):
            raise ConfigError(
                f"gcp:project = {project!r} is invalid: a project id (6-30 lowercase letters, digits, hyphens)"
            )
        if not region:
            raise ConfigError("gcp:region is not set: run `pulumi config set gcp:region <region>` (e.g. europe-west1)")
        if not REGION.fullmatch(region):
            raise ConfigError(f"gcp:region = {region!r} is invalid: a region such as europe-west1 (not a zone)")
        return cls(project=project, region=region)


@dataclass
class GcpBlueGreenArgs:
    """Everything the component needs, validated by :func:`build` before construction."""

    config: StackConfig
    settings: GcpSettings
    provider: GcpProvider


class GcpBlueGreen(pulumi.ComponentResource):
    """Blue and green on Cloud Run, one load balancer, one Cloud SQL database."""

    outputs: dict[str, Any]

    def __init__(self, name: str, args: GcpBlueGreenArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self.name = name
        self.config = args.config
        self.settings = args.settings
        self.project = args.provider.project
        self.region = args.provider.region
        # Label values allow lowercase letters, digits, '-' and '_' only.
        self.labels = {"app": "bluegreen", "stack": gcp_name(args.config.stack, 63)}

        # The URL map depends on both colours' backends, so a flip cannot be ordered here:
        # it is judged against what is deployed instead (components/flip_guard.py).
        self.flip_check = flip_guard.checked(self.config, name, pulumi.ResourceOptions(parent=self))
        self.apis = self._enable_apis()
        network_id, subnetwork_id, peering = self._network()
        self.database_url_secret = self._database(network_id, peering)
        self.run_service_account = self._run_identity()
        self.services: dict[str, cloudrunv2.Service] = {}
        self.backends: dict[str, compute.BackendService] = {}
        self.preview_backends: dict[str, compute.BackendService] = {}
        # The preview route's secret header (``preview_header``); None: the allow-list alone guards it.
        self.preview_token = preview_token(name, self) if self.config.preview_header else None
        armor = self._preview_armor_policy()
        for color in COLORS:
            self._colour(color, network_id, subnetwork_id, armor)
        live_url, preview_url = self._load_balancer()
        self.alerts = {color: self._alerts(color) for color in COLORS}

        metrics = {
            "source": METRICS_SOURCE,
            "project": self.project,
            "url_map": self.url_map.name,
            "backend_services": {color: backend.name for color, backend in self.backends.items()},
        }
        self.outputs = contract_outputs(self.config, live_url, preview_url, metrics)
        self.outputs["load_balancer_host"] = self.address.address
        self.outputs.update(preview_header_outputs(self.preview_token))
        self.outputs.update(flip_guard.deployed_shape(self.config))
        # Private, and exported only as a secret (the contract: secret or not at all).
        self.outputs["database_endpoint"] = pulumi.Output.secret(self.database_ip)
        self.register_outputs(self.outputs)

    def _opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        """Every child is parented here and waits for the project's APIs."""
        depends_on = [*self.apis, *kwargs.pop("depends_on", [])]
        return pulumi.ResourceOptions(parent=self, depends_on=depends_on or None, **kwargs)

    def _enable_apis(self) -> list[projects.Service]:
        if not self.settings.enable_apis:
            return []
        return [
            projects.Service(
                f"{self.name}-api-{api.split('.')[0]}",
                project=self.project,
                service=api,
                disable_on_destroy=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for api in REQUIRED_APIS
        ]

    def _network(self) -> tuple[pulumi.Input[str], pulumi.Input[str], list[pulumi.Resource]]:
        """The VPC Cloud Run egresses into and Cloud SQL peers with (existing, or created with its peering)."""
        network_name, subnetwork_name = self.settings.network, self.settings.subnetwork
        if network_name and subnetwork_name:
            # Cloud SQL wants the network's path; a bare name means this project's.
            if "/" not in network_name:
                network_name = f"projects/{self.project}/global/networks/{network_name}"
            if "/" not in subnetwork_name:
                subnetwork_name = f"projects/{self.project}/regions/{self.region}/subnetworks/{subnetwork_name}"
            return network_name, subnetwork_name, []
        # A review stack must be destroyable. Cloud Run keeps a direct VPC subnet's addresses
        # for 1-2 hours after its services are gone, so deleting the subnet (and with it the
        # network and the peering range) fails on destroy: a review stack leaves those three
        # behind (retain_on_delete; README: clean them up later, or give review stacks an
        # existing network). A kept stack's are deleted with it.
        review = self.config.db.ephemeral
        network = compute.Network(
            f"{self.name}-vpc",
            project=self.project,
            auto_create_subnetworks=False,
            opts=self._opts(retain_on_delete=review),
        )
        subnetwork = compute.Subnetwork(
            f"{self.name}-subnet",
            project=self.project,
            region=self.region,
            network=network.id,
            ip_cidr_range=self.settings.subnet_cidr,
            private_ip_google_access=True,
            opts=self._opts(retain_on_delete=review),
        )
        peering_range = compute.GlobalAddress(
            f"{self.name}-sql-range",
            project=self.project,
            network=network.id,
            purpose="VPC_PEERING",
            address_type="INTERNAL",
            prefix_length=16,
            opts=self._opts(retain_on_delete=review),
        )
        # Cloud SQL holds the connection for days after its instance is deleted, so deleting it
        # fails ("Producer services ... are still using this connection"). A kept stack abandons
        # it (never touching the peering a running database needs); a review stack's database is
        # gone by then, so the peering is removed and the network can be deleted later.
        peering = servicenetworking.Connection(
            f"{self.name}-sql-peering",
            network=network.id,
            service="servicenetworking.googleapis.com",
            reserved_peering_ranges=[peering_range.name],
            deletion_policy="REMOVE_PEERING" if review else "ABANDON",
            opts=self._opts(),
        )
        return network.id, subnetwork.id, [peering]

    def _database(self, network_id: pulumi.Input[str], peering: list[pulumi.Resource]) -> secretmanager.Secret:
        """The shared Cloud SQL instance; its connection URL (with the password) lives in Secret Manager.

        Only an ephemeral database (a review stack's) drops the protections, point-in-time
        recovery and the backups kept after deletion, so that its stack can be destroyed.
        """
        db = self.config.db
        keep = not db.ephemeral
        backup_days = db.backup_retention_days
        instance = sql.DatabaseInstance(
            f"{self.name}-db",
            project=self.project,
            region=self.region,
            database_version=f"POSTGRES_{db.engine_version}",
            deletion_protection=keep,
            settings=sql.DatabaseInstanceSettingsArgs(
                tier=db.instance or (DEFAULT_DB_TIER if keep else EPHEMERAL_DB_TIER),
                edition=DB_EDITION,
                availability_type="REGIONAL" if db.multi_az else "ZONAL",
                disk_size=db.storage_gb,
                disk_autoresize=True,
                deletion_protection_enabled=keep,
                retain_backups_on_delete=keep,
                backup_configuration=sql.DatabaseInstanceSettingsBackupConfigurationArgs(
                    enabled=True,
                    point_in_time_recovery_enabled=keep,
                    transaction_log_retention_days=min(backup_days, MAX_LOG_RETENTION_DAYS) if keep else None,
                    backup_retention_settings=sql.DatabaseInstanceSettingsBackupConfigurationBackupRetentionSettingsArgs(
                        retained_backups=backup_days,
                        retention_unit="COUNT",
                    ),
                ),
                ip_configuration=sql.DatabaseInstanceSettingsIpConfigurationArgs(
                    ipv4_enabled=False,
                    private_network=network_id,
                    ssl_mode="ENCRYPTED_ONLY",
                ),
                user_labels={**self.labels, "ephemeral": str(db.ephemeral).lower()},
            ),
            opts=self._opts(protect=keep, depends_on=peering),
        )
        self.database_ip = instance.private_ip_address
        database = sql.Database(
            f"{self.name}-db-{db.name}",
            project=self.project,
            instance=instance.name,
            name=db.name,
            # PostgreSQL refuses to drop a database in use; leave it to the instance's lifecycle.
            deletion_policy="ABANDON",
            opts=self._opts(),
        )
        password = random.RandomPassword(
            f"{self.name}-db-password",
            length=32,
            special=True,
            override_special="-_",
            opts=pulumi.ResourceOptions(parent=self),
        )
        user = sql.User(
            f"{self.name}-db-user",
            project=self.project,
            instance=instance.name,
            name=db.username,
            password=password.result,
            # PostgreSQL refuses to drop a role that owns objects; leave it with the instance.
            deletion_policy="ABANDON",
            opts=self._opts(),
        )
        secret = secretmanager.Secret(
            f"{self.name}-database-url",
            project=self.project,
            secret_id=f"{self.name}-database-url",
            replication=secretmanager.SecretReplicationArgs(auto=secretmanager.SecretReplicationAutoArgs()),
            labels=self.labels,
            opts=self._opts(),
        )
        url = pulumi.Output.concat(
            "postgresql://",
            user.name,
            ":",
            password.result,
            "@",
            instance.private_ip_address,
            f":{DB_PORT}/",
            database.name,
            "?sslmode=require",
        )
        self.database_url_version = secretmanager.SecretVersion(
            f"{self.name}-database-url",
            secret=secret.id,
            secret_data=pulumi.Output.secret(url),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return secret

    def _run_identity(self) -> serviceaccount.Account:
        """One identity for both colours' Cloud Run services, allowed to read the database URL only."""
        account = serviceaccount.Account(
            f"{self.name}-run-sa",
            project=self.project,
            account_id=gcp_name(f"{self.name}-run", MAX_ACCOUNT_ID),
            display_name=f"bluegreen {self.config.stack} Cloud Run",
            opts=self._opts(),
        )
        self.secret_access = secretmanager.SecretIamMember(
            f"{self.name}-run-sa-database-url",
            project=self.project,
            secret_id=self.database_url_secret.secret_id,
            role="roles/secretmanager.secretAccessor",
            member=account.member,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return account

    def _preview_armor_policy(self) -> compute.SecurityPolicy:
        """Admit the preview header and/or ``preview_cidrs`` to the preview backends; everyone else gets 403.

        Allow rules only, then a deny for ``*``: a request without the header (or from another
        address) matches no allow rule, whatever its rules evaluate to.
        """
        cidrs, token = list(self.config.preview_cidrs), self.preview_token
        rules: list[compute.SecurityPolicyRuleArgs] = []
        if token is None:
            chunks = [cidrs[i : i + CIDRS_PER_ARMOR_RULE] for i in range(0, len(cidrs), CIDRS_PER_ARMOR_RULE)]
            rules = [
                compute.SecurityPolicyRuleArgs(
                    priority=1000 + index,
                    action="allow",
                    description="preview_cidrs may reach the idle colour",
                    match=compute.SecurityPolicyRuleMatchArgs(
                        versioned_expr="SRC_IPS_V1",
                        config=compute.SecurityPolicyRuleMatchConfigArgs(src_ip_ranges=chunk),
                    ),
                )
                for index, chunk in enumerate(chunks)
            ]
        else:
            chunks = [cidrs[i : i + CIDRS_PER_HEADER_RULE] for i in range(0, len(cidrs), CIDRS_PER_HEADER_RULE)]
            for index, chunk in enumerate(chunks or [[]]):
                rules.append(
                    compute.SecurityPolicyRuleArgs(
                        priority=1000 + index,
                        action="allow",
                        description="the preview header" + (" from preview_cidrs" if chunk else ""),
                        match=compute.SecurityPolicyRuleMatchArgs(
                            expr=compute.SecurityPolicyRuleMatchExprArgs(
                                expression=token.apply(lambda value, c=chunk: _header_expression(value, c))
                            )
                        ),
                    )
                )
        rules.append(
            compute.SecurityPolicyRuleArgs(
                priority=ARMOR_DEFAULT_PRIORITY,
                action="deny(403)",
                description="everyone else",
                match=compute.SecurityPolicyRuleMatchArgs(
                    versioned_expr="SRC_IPS_V1",
                    config=compute.SecurityPolicyRuleMatchConfigArgs(src_ip_ranges=["*"]),
                ),
            )
        )
        guard = " and ".join(
            [*(["the preview header"] if token is not None else []), *(["preview_cidrs"] if cidrs else [])]
        )
        return compute.SecurityPolicy(
            f"{self.name}-preview-armor",
            project=self.project,
            description=f"bluegreen preview route: {guard} only",
            rules=rules,
            opts=self._opts(),
        )

    def _colour(
        self,
        color: str,
        network_id: pulumi.Input[str],
        subnetwork_id: pulumi.Input[str],
        armor: compute.SecurityPolicy,
    ) -> None:
        """One colour: Cloud Run service, serverless NEG, production and preview backend services.

        Nothing here reads ``live_color`` except the instance floor, which stays put while
        the pipeline holds the idle colour warm.
        """
        prefix = f"{self.name}-{color}"
        labels = {**self.labels, "color": color}
        service = cloudrunv2.Service(
            f"{prefix}-run",
            project=self.project,
            location=self.region,
            ingress="INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
            # The ingress setting admits only the load balancer, which does not authenticate callers.
            invoker_iam_disabled=True,
            # Stateless: a colour may be replaced or destroyed; the database is what is protected.
            deletion_protection=False,
            labels=labels,
            template=cloudrunv2.ServiceTemplateArgs(
                service_account=self.run_service_account.email,
                labels=labels,
                scaling=cloudrunv2.ServiceTemplateScalingArgs(
                    min_instance_count=flip_guard.gated(self.flip_check, self.config.desired_capacity(color)),
                    max_instance_count=self.settings.max_instances,
                ),
                vpc_access=cloudrunv2.ServiceTemplateVpcAccessArgs(
                    egress="PRIVATE_RANGES_ONLY",
                    network_interfaces=[
                        cloudrunv2.ServiceTemplateVpcAccessNetworkInterfaceArgs(
                            network=network_id, subnetwork=subnetwork_id
                        )
                    ],
                ),
                containers=[
                    cloudrunv2.ServiceTemplateContainerArgs(
                        image=f"{self.config.image}:{self.config.version_of(color)}",
                        ports=cloudrunv2.ServiceTemplateContainerPortsArgs(container_port=self.config.app_port),
                        envs=[
                            cloudrunv2.ServiceTemplateContainerEnvArgs(
                                name="APP_VERSION", value=self.config.version_of(color)
                            ),
                            cloudrunv2.ServiceTemplateContainerEnvArgs(name="APP_COLOR", value=color),
                            cloudrunv2.ServiceTemplateContainerEnvArgs(
                                name="DATABASE_URL",
                                value_source=cloudrunv2.ServiceTemplateContainerEnvValueSourceArgs(
                                    secret_key_ref=cloudrunv2.ServiceTemplateContainerEnvValueSourceSecretKeyRefArgs(
                                        secret=self.database_url_secret.secret_id,
                                        version=self.database_url_version.version,
                                    )
                                ),
                            ),
                        ],
                        startup_probe=cloudrunv2.ServiceTemplateContainerStartupProbeArgs(
                            http_get=cloudrunv2.ServiceTemplateContainerStartupProbeHttpGetArgs(
                                path=self.config.health_path
                            ),
                            period_seconds=2,
                            failure_threshold=30,
                        ),
                        liveness_probe=cloudrunv2.ServiceTemplateContainerLivenessProbeArgs(
                            http_get=cloudrunv2.ServiceTemplateContainerLivenessProbeHttpGetArgs(
                                path=self.config.health_path
                            ),
                            period_seconds=10,
                        ),
                    )
                ],
            ),
            opts=self._opts(depends_on=[self.secret_access]),
        )
        neg = compute.RegionNetworkEndpointGroup(
            f"{prefix}-neg",
            project=self.project,
            region=self.region,
            network_endpoint_type="SERVERLESS",
            cloud_run=compute.RegionNetworkEndpointGroupCloudRunArgs(service=service.name),
            opts=self._opts(),
        )
        self.services[color] = service
        self.backends[color] = self._backend_service(f"{prefix}-backend", neg, None)
        self.preview_backends[color] = self._backend_service(f"{prefix}-preview-backend", neg, armor)

    def _backend_service(
        self, name: str, neg: compute.RegionNetworkEndpointGroup, armor: compute.SecurityPolicy | None
    ) -> compute.BackendService:
        return compute.BackendService(
            name,
            project=self.project,
            load_balancing_scheme="EXTERNAL_MANAGED",
            backends=[compute.BackendServiceBackendArgs(group=neg.id)],
            security_policy=armor.self_link if armor else None,
            log_config=compute.BackendServiceLogConfigArgs(enable=True, sample_rate=1.0),
            opts=self._opts(),
        )

    def _load_balancer(self) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """One IP, two forwarding rules: ``listen_port`` to the weighted colours, ``preview_port`` to the idle one."""
        config = self.config
        address = self.address = compute.GlobalAddress(f"{self.name}-ip", project=self.project, opts=self._opts())
        # The routing: the only resources whose inputs follow live_color.
        self.url_map = compute.URLMap(
            f"{self.name}-urlmap",
            project=self.project,
            description="production: colours weighted by live_color / live_traffic_percent",
            default_route_action=compute.URLMapDefaultRouteActionArgs(
                weighted_backend_services=[
                    compute.URLMapDefaultRouteActionWeightedBackendServiceArgs(
                        backend_service=self.backends[color].id,
                        weight=flip_guard.gated(self.flip_check, config.traffic_percent(color)),
                    )
                    for color in COLORS
                ]
            ),
            opts=self._opts(),
        )
        self.preview_url_map = compute.URLMap(
            f"{self.name}-preview-urlmap",
            project=self.project,
            description="preview: the idle colour",
            default_service=flip_guard.gated(self.flip_check, self.preview_backends[config.idle_color].id),
            opts=self._opts(),
        )

        certificate = None
        if self.settings.domain:
            certificate = compute.ManagedSslCertificate(
                f"{self.name}-cert",
                project=self.project,
                managed=compute.ManagedSslCertificateManagedArgs(domains=[self.settings.domain]),
                opts=self._opts(),
            )
        self._frontend("prod", self.url_map, address, config.listen_port, certificate)
        self._frontend("preview", self.preview_url_map, address, config.preview_port, certificate)
        if certificate is not None and config.preview_port != 80:
            self._http_redirect(address)

        host = self.settings.domain or address.address
        scheme = "https" if certificate is not None else "http"
        return _url(scheme, host, config.listen_port), _url(scheme, host, config.preview_port)

    def _frontend(
        self,
        role: str,
        url_map: compute.URLMap,
        address: compute.GlobalAddress,
        port: int,
        certificate: compute.ManagedSslCertificate | None,
    ) -> compute.GlobalForwardingRule:
        proxy: compute.TargetHttpsProxy | compute.TargetHttpProxy
        if certificate is not None:
            proxy = compute.TargetHttpsProxy(
                f"{self.name}-{role}-https-proxy",
                project=self.project,
                url_map=url_map.id,
                ssl_certificates=[certificate.id],
                opts=self._opts(),
            )
        else:
            proxy = compute.TargetHttpProxy(
                f"{self.name}-{role}-http-proxy", project=self.project, url_map=url_map.id, opts=self._opts()
            )
        return compute.GlobalForwardingRule(
            f"{self.name}-{role}-rule",
            project=self.project,
            target=proxy.id,
            ip_address=address.id,
            ip_protocol="TCP",
            port_range=str(port),
            load_balancing_scheme="EXTERNAL_MANAGED",
            labels=self.labels,
            opts=self._opts(),
        )

    def _http_redirect(self, address: compute.GlobalAddress) -> None:
        """Port 80 answers with a redirect to HTTPS, so plain links to the domain keep working."""
        redirect = compute.URLMap(
            f"{self.name}-redirect-urlmap",
            project=self.project,
            description="http to https",
            default_url_redirect=compute.URLMapDefaultUrlRedirectArgs(
                https_redirect=True, strip_query=False, redirect_response_code="MOVED_PERMANENTLY_DEFAULT"
            ),
            opts=self._opts(),
        )
        self._frontend("redirect", redirect, address, 80, None)

    def _alerts(self, color: str) -> monitoring.AlertPolicy:
        """The monitor's thresholds as an alert policy per colour, for people watching the console.

        The pipeline's monitor decides rollbacks itself; these make the same breach visible.
        """
        monitor = self.config.monitor
        period = f"{max(60, monitor.window_s)}s"
        lb_filter = pulumi.Output.all(self.url_map.name, self.backends[color].name).apply(
            lambda names: (
                f'resource.type = "https_lb_rule" AND resource.labels.url_map_name = "{names[0]}" '
                f'AND resource.labels.backend_target_name = "{names[1]}"'
            )
        )
        requests_filter = lb_filter.apply(lambda f: f'metric.type = "{REQUEST_COUNT}" AND {f}')
        sum_rate = monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
            alignment_period=period, per_series_aligner="ALIGN_RATE", cross_series_reducer="REDUCE_SUM"
        )
        return monitoring.AlertPolicy(
            f"{self.name}-{color}-alerts",
            project=self.project,
            display_name=f"bluegreen {self.config.stack} {color}: errors or latency above the monitor thresholds",
            combiner="OR",
            conditions=[
                monitoring.AlertPolicyConditionArgs(
                    display_name=f"{color}: 5xx / requests above monitor.max_error_rate",
                    condition_threshold=monitoring.AlertPolicyConditionConditionThresholdArgs(
                        # An INT64 label: compared as a number.
                        filter=requests_filter.apply(lambda f: f"{f} AND metric.labels.response_code_class = 500"),
                        denominator_filter=requests_filter,
                        aggregations=[sum_rate],
                        denominator_aggregations=[
                            monitoring.AlertPolicyConditionConditionThresholdDenominatorAggregationArgs(
                                alignment_period=period,
                                per_series_aligner="ALIGN_RATE",
                                cross_series_reducer="REDUCE_SUM",
                            )
                        ],
                        comparison="COMPARISON_GT",
                        threshold_value=monitor.max_error_rate,
                        duration="0s",
                    ),
                ),
                monitoring.AlertPolicyConditionArgs(
                    display_name=f"{color}: p99 backend latency above monitor.max_p99_ms",
                    condition_threshold=monitoring.AlertPolicyConditionConditionThresholdArgs(
                        filter=lb_filter.apply(lambda f: f'metric.type = "{BACKEND_LATENCIES}" AND {f}'),
                        aggregations=[
                            monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
                                alignment_period=period,
                                per_series_aligner="ALIGN_DELTA",
                                cross_series_reducer="REDUCE_PERCENTILE_99",
                            )
                        ],
                        comparison="COMPARISON_GT",
                        threshold_value=monitor.max_p99_ms,
                        duration="0s",
                    ),
                ),
            ],
            user_labels={**self.labels, "color": color},
            opts=self._opts(),
        )


def gcp_name(text: str, limit: int) -> str:
    """``text`` if GCP accepts it as a name prefix, else a stable lowercase form cut to ``limit``.

    Stack names may hold capitals, '_' and '.', and review stacks get long generated
    names; a hash of the original keeps two cut names from colliding.
    """
    if GCP_NAME.fullmatch(text) and len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:6]
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if not cleaned[:1].isalpha():
        cleaned = f"bg-{cleaned}"
    return f"{cleaned[: limit - len(digest) - 1].rstrip('-')}-{digest}"


def _url(scheme: str, host: pulumi.Input[str], port: int) -> pulumi.Output[str]:
    default_port = 443 if scheme == "https" else 80
    suffix = "" if port == default_port else f":{port}"
    return pulumi.Output.concat(f"{scheme}://", host, suffix)


def _header_expression(token: str, cidrs: list[str]) -> str:
    """A Cloud Armor expression: the preview header carries ``token`` (and the client is in ``cidrs``)."""
    header = f"request.headers['{PREVIEW_HEADER.lower()}'] == '{token}'"
    if not cidrs:
        return header
    ranges = " || ".join(f"inIpRange(origin.ip, '{cidr}')" for cidr in cidrs)
    return f"{header} && ({ranges})"


def validate(config: StackConfig) -> None:
    """Everything GCP-specific but the provider's config, for the pipeline to check first."""
    _checked(config, GcpSettings.parse(config.cloud_settings))


def _checked(config: StackConfig, settings: GcpSettings) -> GcpSettings:
    """The rules that join ``bluegreen:gcp`` with the rest of the stack config."""
    if "." in config.db.engine_version:
        raise ConfigError(
            f"bluegreen:db.engine_version = {config.db.engine_version!r} is invalid on GCP: "
            "Cloud SQL takes a major version only, e.g. 16"
        )
    if settings.domain and config.listen_port != 443:
        raise ConfigError(
            f"bluegreen:listen_port = {config.listen_port} is invalid with {SETTINGS_KEY}.domain set: "
            "the domain is served over HTTPS and Google validates managed certificates on 443; "
            "use 443 (port 80 then redirects to it)"
        )
    if settings.max_instances < config.capacity:
        raise _fail("max_instances", settings.max_instances, f"must be at least capacity ({config.capacity})")
    refuse_private_preview_cidrs(config, "Google's front ends (Cloud Armor)")
    return settings


def build(name: str, config: StackConfig) -> GcpBlueGreen:
    """Validate everything GCP-specific, then build; a bad value registers nothing."""
    settings = GcpSettings.parse(config.cloud_settings)
    provider = GcpProvider.from_pulumi()
    _checked(config, settings)
    return GcpBlueGreen(
        gcp_name(name, MAX_COMPONENT_NAME), GcpBlueGreenArgs(config=config, settings=settings, provider=provider)
    )
