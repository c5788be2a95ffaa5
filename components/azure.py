"""Azure target: Container Apps per colour behind one Application Gateway v2, shared PostgreSQL.

The switch is the gateway's prod routing rule: it names the live colour's backend pool,
and the preview rule (a second listener on ``preview_port``, limited to
``preview_cidrs`` by the gateway subnet's NSG and, with ``preview_header``, to requests
with the secret header by a WAF policy of its own) names the idle one. Both rules live
inside the one ``ApplicationGateway`` resource (Azure models rules as sub-resources),
so flipping ``live_color`` is an in-place update of that resource's
``requestRoutingRules`` and nothing else. The apps sit in an internal Container Apps
environment and accept traffic only from the gateway subnet; the database is a
Flexible Server reachable only inside the virtual network, protected twice
(``protect=True`` and a ``CanNotDelete`` lock), with its generated password in Key Vault.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_random as random
from pulumi_azure_native import (
    app,
    authorization,
    dbforpostgresql,
    keyvault,
    managedidentity,
    monitor,
    network,
    operationalinsights,
    privatedns,
    resources,
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

SETTINGS_KEY = "bluegreen:azure"
METRICS_SOURCE = "azure_monitor"

# Built-in role that lets an identity read secret values (Container Apps' Key Vault references).
KEY_VAULT_SECRETS_USER_ROLE = "4633458b-17de-408a-b874-0445c86b69e6"
# Application Gateway v2 keeps these ports for its own health traffic: listeners may not use them.
GATEWAY_RESERVED_PORTS = range(65200, 65536)
# Flexible Server storage comes in fixed sizes; the configured size is rounded up to one of them.
FLEXIBLE_STORAGE_SIZES_GB = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
# Flexible Server SKU families and the tier each belongs to.
FLEXIBLE_TIERS = {"B": "Burstable", "D": "GeneralPurpose", "E": "MemoryOptimized"}
DEFAULT_DB_SKU = "Standard_D2ds_v5"
PROD_RULE = "prod"  # the production listener and its routing rule (the switch)
EPHEMERAL_DB_SKU = "Standard_B1ms"
# Azure keeps Flexible Server backups at least this long; a review stack's shorter wish is raised to it.
MIN_BACKUP_RETENTION_DAYS = 7
# Container Apps consumption sizes: CPU in quarter cores, memory fixed at 2 GiB per core.
CONSUMPTION_CPUS = tuple(q / 4 for q in range(1, 17))
GATEWAY_SKUS = ("Standard_v2", "WAF_v2")
WAF_MODES = ("Prevention", "Detection")
# The managed rules of both WAF policies (the preview listener's adds its header rule to them).
WAF_RULE_SET = {"rule_set_type": "OWASP", "rule_set_version": "3.2"}
PREVIEW_WAF_RULE = "RequirePreviewHeader"
WORKLOAD_PROFILE = "Consumption"
DB_PASSWORD_SECRET = "db-password"
ACCESS_LOG_CATEGORY = "ApplicationGatewayAccessLog"

_PREFIX_PATTERN = r"[a-z][a-z0-9]*(-[a-z0-9]+)*"
_RESOURCE_GROUP_PATTERN = r"[-\w.()]{0,89}[-\w()]"
_LOCATION_PATTERN = r"[a-z][a-z0-9]*"
_KEY_VAULT_SECRET_PATTERN = r"https://[a-z0-9-]+\.vault\.[a-z0-9.]+/secrets/[A-Za-z0-9-]+(/[0-9a-f]{32})?/?"


def _fail(field: str, value: Any, allowed: str) -> ConfigError:
    return invalid(f"{SETTINGS_KEY}.{field}", value, allowed)


@dataclass(frozen=True)
class AzureSettings:
    """The ``bluegreen:azure`` object plus the provider's location, checked before any resource."""

    location: str
    # Prefix of every Azure resource name (Container App names are short: 32 characters).
    name_prefix: str
    # An existing resource group to deploy into; None creates ``<prefix>-rg``.
    resource_group: str | None = None
    vnet_cidr: str = "10.60.0.0/16"
    # WAF_v2 by default: the preview header is a WAF custom rule (Standard_v2 has no WAF).
    gateway_sku: str = "WAF_v2"
    # The gateway-wide WAF policy's mode (WAF_v2); the preview listener's policy always prevents.
    waf_mode: str = "Prevention"
    gateway_min_capacity: int = 1
    gateway_max_capacity: int = 10
    # Key Vault secret id of a PFX certificate: when set, both listeners speak HTTPS.
    certificate_secret_id: str | None = None
    # Host name users reach the gateway by (a DNS record you own, pointed at the gateway); the
    # certificate must cover it. Default, without a certificate: the public IP's FQDN.
    domain: str | None = None
    cpu: float = 0.5
    drain_timeout_s: int = 30
    geo_redundant_backup: bool = False
    log_retention_days: int = 30

    @classmethod
    def parse(cls, config: StackConfig, location: str | None) -> AzureSettings:
        """Validate ``bluegreen:azure`` and ``azure-native:location`` before any resource exists."""
        cls._known_fields(config)
        if not location:
            raise ConfigError(
                "azure-native:location is not set: the Azure region to deploy to, "
                "e.g. `pulumi config set azure-native:location westeurope`"
            )
        if not re.fullmatch(_LOCATION_PATTERN, location):
            raise ConfigError(
                f"azure-native:location = {location!r} is invalid: a region name such as westeurope or "
                "eastus2 (lowercase, no spaces; see `az account list-locations -o table`)"
            )
        return cls.settings_at(config, location)

    @classmethod
    def _known_fields(cls, config: StackConfig) -> None:
        known = set(cls.__dataclass_fields__) - {"location"}
        unknown = sorted(set(config.cloud_settings) - known)
        if unknown:
            raise ConfigError(
                f"{SETTINGS_KEY}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}"
            )

    @classmethod
    def settings_at(cls, config: StackConfig, location: str) -> AzureSettings:
        """``bluegreen:azure`` validated (with the rest of the config it depends on) for ``location``."""
        cls._known_fields(config)
        raw = dict(config.cloud_settings)
        d = cls(location=location, name_prefix="x")

        default_prefix = re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", config.stack.lower())).strip("-")[:16]
        # A review stack inherits its template's settings; its own stack name keeps its names apart.
        configured = "name_prefix" in raw and not config.db.ephemeral
        prefix = raw["name_prefix"] if configured else default_prefix.rstrip("-")
        if not isinstance(prefix, str) or not re.fullmatch(_PREFIX_PATTERN, prefix) or not 2 <= len(prefix) <= 16:
            raise _fail(
                "name_prefix",
                prefix,
                "2-16 characters: lowercase letters, digits and single hyphens, starting with a letter "
                "(it prefixes Container App and Key Vault names, which Azure keeps short)"
                + ("" if configured else "; the stack name does not give one, so set it"),
            )

        resource_group = raw.get("resource_group")
        if resource_group is not None and (
            not isinstance(resource_group, str) or not re.fullmatch(_RESOURCE_GROUP_PATTERN, resource_group)
        ):
            raise _fail(
                "resource_group",
                resource_group,
                "an existing resource group name: 1-90 letters, digits, '-', '_', '.', '(', ')', not ending in '.'",
            )

        vnet_cidr = raw.get("vnet_cidr", d.vnet_cidr)
        try:
            vnet = ipaddress.ip_network(str(vnet_cidr), strict=True)
        except ValueError as exc:
            raise _fail("vnet_cidr", vnet_cidr, f"not a CIDR block ({exc})") from None
        if vnet.version != 4 or not vnet.is_private or vnet.prefixlen > 22:
            raise _fail(
                "vnet_cidr",
                vnet_cidr,
                "a private IPv4 block of /22 or larger (gateway /24, database /24 and apps /23 subnets)",
            )

        gateway_sku = raw.get("gateway_sku", d.gateway_sku)
        if gateway_sku not in GATEWAY_SKUS:
            raise _fail("gateway_sku", gateway_sku, f"allowed: {', '.join(GATEWAY_SKUS)}")
        waf_mode = raw.get("waf_mode", d.waf_mode)
        if waf_mode not in WAF_MODES:
            raise _fail("waf_mode", waf_mode, f"allowed: {', '.join(WAF_MODES)}")
        if gateway_sku != "WAF_v2" and "waf_mode" in raw:
            raise _fail("waf_mode", waf_mode, "only with gateway_sku WAF_v2")
        if gateway_sku != "WAF_v2" and config.preview_header:
            raise ConfigError(
                f"{SETTINGS_KEY}.gateway_sku = {gateway_sku!r} cannot require the preview header "
                "(bluegreen:preview_header, on by default): Application Gateway checks a request header only with "
                "a WAF custom rule, which needs gateway_sku WAF_v2 (the default); or set bluegreen:preview_header "
                "false and list your public egress addresses in bluegreen:preview_cidrs"
            )
        min_capacity = _integer(raw, "gateway_min_capacity", d.gateway_min_capacity, 0, 125)
        max_capacity = _integer(raw, "gateway_max_capacity", d.gateway_max_capacity, 2, 125)
        if max_capacity < min_capacity:
            raise _fail("gateway_max_capacity", max_capacity, f"must be >= gateway_min_capacity ({min_capacity})")

        certificate = raw.get("certificate_secret_id")
        if certificate is not None and (
            not isinstance(certificate, str)
            or not re.fullmatch(
                r"https://[a-z0-9-]+\.vault\.[a-z0-9.]+/secrets/[A-Za-z0-9-]+(/[0-9a-f]{32})?/?", certificate
            )
        ):
            raise _fail(
                "certificate_secret_id",
                certificate,
                "a Key Vault secret id such as https://myvault.vault.azure.net/secrets/my-cert",
            )
        for port_key, port in (("listen_port", config.listen_port), ("preview_port", config.preview_port)):
            if port in GATEWAY_RESERVED_PORTS:
                raise ConfigError(
                    f"bluegreen:{port_key} = {port} is invalid on azure: Application Gateway v2 reserves "
                    "ports 65200-65535; pick another port"
                )
        if config.listen_port == 443 and certificate is None:
            raise ConfigError(
                "bluegreen:listen_port = 443 needs a TLS certificate on azure: set "
                f"{SETTINGS_KEY}.certificate_secret_id to a Key Vault secret id, or use listen_port 80"
            )

        domain = raw.get("domain")
        if domain is not None and (
            not isinstance(domain, str)
            or not re.fullmatch(r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", domain)
        ):
            raise _fail("domain", domain, "a lowercase DNS name such as shop.example.com")
        if certificate is not None and domain is None:
            raise ConfigError(
                f"{SETTINGS_KEY}.certificate_secret_id = {certificate!r} needs {SETTINGS_KEY}.domain: the "
                "certificate names your domain, not the gateway's *.cloudapp.azure.com name, so HTTPS to that "
                "name can never pass TLS verification (smoke checks and the switch's verification would fail); "
                f"set {SETTINGS_KEY}.domain to the name the certificate covers (a DNS record pointed at the "
                "gateway), or remove certificate_secret_id for plain HTTP on the gateway's name"
            )

        cpu = raw.get("cpu", d.cpu)
        if isinstance(cpu, bool) or not isinstance(cpu, int | float | str):
            raise _fail("cpu", cpu, "cores per replica: 0.25-4 in steps of 0.25")
        try:
            cpu_value = float(cpu)
        except ValueError:
            raise _fail("cpu", cpu, "cores per replica: 0.25-4 in steps of 0.25") from None
        if cpu_value not in CONSUMPTION_CPUS:
            raise _fail("cpu", cpu, "cores per replica: 0.25-4 in steps of 0.25")

        geo = raw.get("geo_redundant_backup", d.geo_redundant_backup)
        if not isinstance(geo, bool):
            raise _fail("geo_redundant_backup", geo, "true or false")

        if config.switch_steps != (100,):
            raise ConfigError(
                f"bluegreen:switch_steps = {list(config.switch_steps)} is invalid on azure: an Application "
                "Gateway routing rule sends a listener to one backend pool, so only [100] (classic blue-green) "
                "is possible"
            )
        if config.db.backup_retention_days < MIN_BACKUP_RETENTION_DAYS and not config.db.ephemeral:
            raise ConfigError(
                f"bluegreen:db.backup_retention_days = {config.db.backup_retention_days} is invalid on azure: "
                "Azure Database for PostgreSQL keeps backups 7-35 days"
            )
        _db_sku(config)

        return cls(
            location=location,
            name_prefix=prefix,
            resource_group=resource_group,
            vnet_cidr=str(vnet),
            gateway_sku=gateway_sku,
            waf_mode=waf_mode,
            gateway_min_capacity=min_capacity,
            gateway_max_capacity=max_capacity,
            certificate_secret_id=certificate,
            domain=domain,
            cpu=cpu_value,
            drain_timeout_s=_integer(raw, "drain_timeout_s", d.drain_timeout_s, 1, 3600),
            geo_redundant_backup=geo,
            log_retention_days=_integer(raw, "log_retention_days", d.log_retention_days, 30, 730),
        )

    @property
    def https(self) -> bool:
        return self.certificate_secret_id is not None

    def subnets(self) -> dict[str, str]:
        """Gateway and database get the first two /24s, the apps environment the next /23."""
        vnet = ipaddress.ip_network(self.vnet_cidr)
        first = list(vnet.subnets(new_prefix=24))[:3]
        return {
            "gateway": str(first[0]),
            "db": str(first[1]),
            "apps": str(ipaddress.ip_network(f"{first[2].network_address}/23")),
        }


def _integer(raw: Mapping[str, Any], field: str, default: int, lo: int, hi: int) -> int:
    value = raw.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int | str) or not re.fullmatch(r"\d+", str(value)):
        raise _fail(field, value, f"an integer in {lo}-{hi}")
    if not lo <= int(value) <= hi:
        raise _fail(field, value, f"an integer in {lo}-{hi}")
    return int(value)


def _db_sku(config: StackConfig) -> dict[str, str]:
    """Flexible Server SKU name and tier (the tier follows from the size family)."""
    name = config.db.instance or (EPHEMERAL_DB_SKU if config.db.ephemeral else DEFAULT_DB_SKU)
    match = re.fullmatch(r"Standard_([BDE])\d+[a-z]*(_v\d+)?", name)
    if not match:
        raise ConfigError(
            f"bluegreen:db.instance = {name!r} is invalid on azure: a Flexible Server compute size such as "
            f"Standard_B1ms (Burstable), {DEFAULT_DB_SKU} (General Purpose) or Standard_E2ds_v5 (Memory Optimized)"
        )
    return {"name": name, "tier": FLEXIBLE_TIERS[match.group(1)]}


def _storage_size_gb(requested: int) -> int:
    return next(size for size in FLEXIBLE_STORAGE_SIZES_GB if size >= requested)


@dataclass(frozen=True)
class AzureBlueGreenArgs:
    """Everything the component needs: the validated stack config and the Azure settings."""

    config: StackConfig
    settings: AzureSettings


class AzureBlueGreen(pulumi.ComponentResource):
    """Blue and green Container Apps behind one Application Gateway, sharing one PostgreSQL."""

    outputs: dict[str, Any]

    def __init__(self, name: str, args: AzureBlueGreenArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("bluegreen:azure:BlueGreen", name, None, opts)
        config, settings = args.config, args.settings
        prefix = settings.name_prefix
        child = pulumi.ResourceOptions(parent=self)
        self._config, self._settings = config, settings
        # The gateway's pools name both apps, so a flip cannot be ordered here: it is judged
        # against what is deployed instead (components/flip_guard.py).
        self._flip_check = flip_guard.checked(config, name, child)

        client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        # Globally unique names (Key Vault, PostgreSQL, the gateway's DNS label) get a stable suffix.
        suffix = random.RandomString(
            f"{name}-suffix", length=6, special=False, upper=False, numeric=True, opts=child
        ).result

        if settings.resource_group:
            self.resource_group_name: pulumi.Output[str] = pulumi.Output.from_input(settings.resource_group)
        else:
            group = resources.ResourceGroup(
                f"{name}-rg", resource_group_name=f"{prefix}-rg", location=settings.location, opts=child
            )
            self.resource_group_name = group.name
        self._common = {"resource_group_name": self.resource_group_name, "location": settings.location}

        # The preview route's secret header (``preview_header``); None: the allow-list alone guards it.
        self.preview_token = preview_token(name, self) if config.preview_header else None
        subnets = self._network(name, prefix)
        identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity", resource_name_=f"{prefix}-identity", **self._common, opts=child
        )
        password_secret_uri, secrets_reader = self._secret_store(name, prefix, suffix, client, identity)
        self.db_host = self._database(name, prefix, suffix, subnets)
        environment = self._apps_environment(name, prefix, subnets)

        self.apps = {
            color: self._container_app(name, prefix, color, environment, identity, password_secret_uri, secrets_reader)
            for color in COLORS
        }
        public_ip = network.PublicIPAddress(
            f"{name}-gateway-ip",
            public_ip_address_name=f"{prefix}-agw-ip",
            sku={"name": "Standard", "tier": "Regional"},
            public_ip_allocation_method="Static",
            dns_settings={"domain_name_label": pulumi.Output.concat(prefix, "-", suffix)},
            **self._common,
            opts=child,
        )
        self.gateway = self._gateway(name, prefix, client, subnets, public_ip, environment, identity)
        workspace = operationalinsights.Workspace(
            f"{name}-logs",
            workspace_name=f"{prefix}-logs",
            sku={"name": "PerGB2018"},
            retention_in_days=settings.log_retention_days,
            **self._common,
            opts=child,
        )
        # Access logs carry the backend pool and latency of every request: the monitor's p99 per colour.
        monitor.DiagnosticSetting(
            f"{name}-gateway-logs",
            name=f"{prefix}-agw-access",
            resource_uri=self.gateway.id,
            workspace_id=workspace.id,
            log_analytics_destination_type="Dedicated",
            logs=[{"category": ACCESS_LOG_CATEGORY, "enabled": True}],
            opts=child,
        )

        host: pulumi.Input[str] = settings.domain or public_ip.dns_settings.apply(lambda d: d.fqdn if d else None)
        scheme = "https" if settings.https else "http"
        live_url = _url(scheme, host, config.listen_port)
        preview_url = _url(scheme, host, config.preview_port)
        metrics = {
            "source": METRICS_SOURCE,
            "gateway_id": self.gateway.id,
            "pools": {color: _pool_name(color) for color in COLORS},
            "prod_rule": PROD_RULE,  # read back to verify a switch
            "apps": {color: app.name for color, app in self.apps.items()},  # their replicas: the colour's health
        }
        self.outputs = contract_outputs(config, live_url, preview_url, metrics)
        self.outputs["load_balancer_host"] = public_ip.dns_settings.apply(lambda d: d.fqdn if d else None)
        self.outputs.update(preview_header_outputs(self.preview_token))
        self.outputs.update(flip_guard.deployed_shape(config))
        self.outputs["database_endpoint"] = pulumi.Output.secret(self.db_host)
        self.register_outputs(self.outputs)

    # -- network ----------------------------------------------------------------

    def _network(self, name: str, prefix: str) -> dict[str, network.Subnet]:
        config, settings = self._config, self._settings
        child = pulumi.ResourceOptions(parent=self)
        cidrs = settings.subnets()
        vnet = network.VirtualNetwork(
            f"{name}-vnet",
            virtual_network_name=f"{prefix}-vnet",
            address_space={"address_prefixes": [settings.vnet_cidr]},
            **self._common,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["subnets"]),
        )
        gateway_nsg = network.NetworkSecurityGroup(
            f"{name}-gateway-nsg",
            network_security_group_name=f"{prefix}-agw-nsg",
            security_rules=[
                _rule("allow-gateway-manager", 100, "GatewayManager", "65200-65535"),
                _rule("allow-azure-load-balancer", 110, "AzureLoadBalancer", "*", protocol="*"),
                _rule("allow-prod-listener", 200, "Internet", str(config.listen_port)),
                # Without an allow-list the WAF's header rule is the preview route's guard.
                {
                    **_rule("allow-preview-from-cidrs", 300, None, str(config.preview_port)),
                    "source_address_prefixes": list(config.preview_cidrs),
                }
                if config.preview_cidrs
                else _rule("allow-preview-with-header", 300, "Internet", str(config.preview_port)),
                _rule("deny-preview-from-others", 400, "*", str(config.preview_port), access="Deny"),
            ],
            **self._common,
            opts=child,
        )
        # Azure refuses concurrent subnet writes on one network, so the subnets are created in turn.
        extras: dict[str, dict[str, Any]] = {
            "gateway": {"network_security_group": {"id": gateway_nsg.id}},
            "apps": {"delegations": [{"name": "container-apps", "service_name": "Microsoft.App/environments"}]},
            "db": {"delegations": [{"name": "postgres", "service_name": "Microsoft.DBforPostgreSQL/flexibleServers"}]},
        }
        subnets: dict[str, network.Subnet] = {}
        previous: list[pulumi.Resource] = []
        for role, extra in extras.items():
            subnets[role] = network.Subnet(
                f"{name}-{role}-subnet",
                subnet_name=role,
                virtual_network_name=vnet.name,
                resource_group_name=self.resource_group_name,
                address_prefix=cidrs[role],
                **extra,
                opts=pulumi.ResourceOptions(parent=self, depends_on=previous),
            )
            previous = [subnets[role]]
        self.vnet = vnet
        return subnets

    def _private_zone(
        self, name: str, zone_name: pulumi.Input[str]
    ) -> tuple[privatedns.PrivateZone, privatedns.VirtualNetworkLink]:
        """A private DNS zone linked to the network, so names resolve to private addresses only.

        Whatever resolves names in the zone must wait for the link too, not only the zone
        (the Flexible Server refuses a zone without one: VnetNotLinkedToPrivateDnsZone).
        """
        child = pulumi.ResourceOptions(parent=self)
        zone = privatedns.PrivateZone(
            f"{name}-zone",
            private_zone_name=zone_name,
            location="global",
            resource_group_name=self.resource_group_name,
            opts=child,
        )
        link = privatedns.VirtualNetworkLink(
            f"{name}-zone-link",
            private_zone_name=zone.name,
            virtual_network={"id": self.vnet.id},
            registration_enabled=False,
            location="global",
            resource_group_name=self.resource_group_name,
            opts=child,
        )
        return zone, link

    # -- secrets and database ------------------------------------------------------

    def _secret_store(
        self,
        name: str,
        prefix: str,
        suffix: pulumi.Output[str],
        client: pulumi.Output[Any],
        identity: managedidentity.UserAssignedIdentity,
    ) -> tuple[pulumi.Output[str], authorization.RoleAssignment]:
        """Key Vault holding the generated password, readable by the apps' identity only.

        Purge protection (which Azure never lets you turn off) is left off for a review
        stack's ephemeral database, so destroying that stack frees its names.
        """
        child = pulumi.ResourceOptions(parent=self)
        keep = not self._config.db.ephemeral
        self.db_password = random.RandomPassword(
            f"{name}-db-password",
            length=32,
            special=True,
            override_special="-_.~",
            min_lower=1,
            min_upper=1,
            min_numeric=1,
            opts=child,
        )
        # Secret on every path, not only through the random provider's additional_secret_outputs.
        self._password = pulumi.Output.secret(self.db_password.result)
        vault = keyvault.Vault(
            f"{name}-vault",
            vault_name=pulumi.Output.concat(prefix, "-", suffix),
            properties={
                "tenant_id": client.tenant_id,
                "sku": {"family": "A", "name": "standard"},
                "enable_rbac_authorization": True,
                "enable_soft_delete": True,
                "soft_delete_retention_in_days": 90 if keep else 7,
                **({"enable_purge_protection": True} if keep else {}),
            },
            **self._common,
            opts=child,
        )
        secret = keyvault.Secret(
            f"{name}-db-password-secret",
            vault_name=vault.name,
            secret_name=DB_PASSWORD_SECRET,
            properties={"value": self._password, "content_type": "PostgreSQL password"},
            resource_group_name=self.resource_group_name,
            opts=child,
        )
        reader = authorization.RoleAssignment(
            f"{name}-vault-secrets-reader",
            scope=vault.id,
            role_definition_id=client.subscription_id.apply(
                lambda sub: (
                    f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/"
                    f"{KEY_VAULT_SECRETS_USER_ROLE}"
                )
            ),
            principal_id=identity.principal_id,
            principal_type="ServicePrincipal",
            opts=child,
        )
        uri = secret.properties.apply(lambda p: p.secret_uri if p else None)
        return uri, reader

    def _database(
        self, name: str, prefix: str, suffix: pulumi.Output[str], subnets: dict[str, network.Subnet]
    ) -> pulumi.Output[str]:
        """The shared PostgreSQL: private only, protected twice (``protect`` and a lock).

        Only an ephemeral database (a review stack's) drops the protections, so that its
        stack can be destroyed when the pull request closes.
        """
        config, settings = self._config, self._settings
        keep = not config.db.ephemeral
        zone, link = self._private_zone(f"{name}-db", f"{prefix}.private.postgres.database.azure.com")
        server = dbforpostgresql.Server(
            f"{name}-db",
            server_name=pulumi.Output.concat(prefix, "-pg-", suffix),
            version=config.db.engine_version.split(".")[0],
            sku=_db_sku(config),
            storage={"storage_size_gb": _storage_size_gb(config.db.storage_gb), "auto_grow": "Enabled"},
            backup={
                "backup_retention_days": max(config.db.backup_retention_days, MIN_BACKUP_RETENTION_DAYS),
                "geo_redundant_backup": "Enabled" if settings.geo_redundant_backup else "Disabled",
            },
            high_availability={"mode": "ZoneRedundant" if config.db.multi_az else "Disabled"},
            network={
                "delegated_subnet_resource_id": subnets["db"].id,
                "private_dns_zone_arm_resource_id": zone.id,
                "public_network_access": "Disabled",
            },
            auth_config={"password_auth": "Enabled", "active_directory_auth": "Disabled"},
            administrator_login=config.db.username,
            administrator_login_password=self._password,
            # The guardrail policies read this to let a review stack's database go unprotected.
            tags={"bluegreen-ephemeral": str(config.db.ephemeral).lower()},
            **self._common,
            opts=pulumi.ResourceOptions(parent=self, protect=keep, depends_on=[zone, link]),
        )
        if keep:
            authorization.ManagementLockByScope(
                f"{name}-db-lock",
                lock_name="do-not-delete-shared-database",
                level="CanNotDelete",
                scope=server.id,
                notes="Shared by blue and green: deleting it takes both colours down.",
                opts=pulumi.ResourceOptions(parent=self),
            )
        dbforpostgresql.Database(
            f"{name}-db-database",
            database_name=config.db.name,
            server_name=server.name,
            resource_group_name=self.resource_group_name,
            charset="UTF8",
            collation="en_US.utf8",
            opts=pulumi.ResourceOptions(parent=self),
        )
        return server.fully_qualified_domain_name

    # -- apps ---------------------------------------------------------------------------

    def _apps_environment(self, name: str, prefix: str, subnets: dict[str, network.Subnet]) -> app.ManagedEnvironment:
        """An internal environment: its apps get private addresses only, resolved through a private zone."""
        environment = app.ManagedEnvironment(
            f"{name}-apps-env",
            environment_name=f"{prefix}-env",
            vnet_configuration={"infrastructure_subnet_id": subnets["apps"].id, "internal": True},
            workload_profiles=[{"name": WORKLOAD_PROFILE, "workload_profile_type": WORKLOAD_PROFILE}],
            **self._common,
            opts=pulumi.ResourceOptions(parent=self),
        )
        zone, link = self._private_zone(f"{name}-apps", environment.default_domain)
        privatedns.PrivateRecordSet(
            f"{name}-apps-wildcard",
            private_zone_name=zone.name,
            record_type="A",
            relative_record_set_name="*",
            ttl=300,
            a_records=[{"ipv4_address": environment.static_ip}],
            resource_group_name=self.resource_group_name,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The gateway resolves the apps' names through this zone: it waits for the zone and its link.
        self._apps_dns: list[pulumi.Resource] = [zone, link]
        return environment

    def _container_app(
        self,
        name: str,
        prefix: str,
        color: str,
        environment: app.ManagedEnvironment,
        identity: managedidentity.UserAssignedIdentity,
        password_secret_uri: pulumi.Output[str],
        secrets_reader: authorization.RoleAssignment,
    ) -> app.ContainerApp:
        """One colour. Only ``min_replicas`` depends on which colour is live."""
        config, settings = self._config, self._settings
        version = config.version_of(color)
        probe_get = {"path": config.health_path, "port": config.app_port, "scheme": "HTTP"}
        ready_get = {**probe_get, "path": config.readiness_path}
        return app.ContainerApp(
            f"{name}-{color}-app",
            container_app_name=f"{prefix}-{color}",
            managed_environment_id=environment.id,
            workload_profile_name=WORKLOAD_PROFILE,
            identity={"type": "UserAssigned", "user_assigned_identities": [identity.id]},
            configuration={
                "active_revisions_mode": "Single",
                "ingress": {
                    # "external" in an internal environment means: reachable from the virtual network.
                    "external": True,
                    "target_port": config.app_port,
                    "transport": "http",
                    "allow_insecure": False,
                    "ip_security_restrictions": [
                        {
                            "name": "gateway-only",
                            "description": "Only the Application Gateway subnet may call this colour",
                            "action": "Allow",
                            "ip_address_range": settings.subnets()["gateway"],
                        }
                    ],
                },
                "secrets": [
                    {"name": DB_PASSWORD_SECRET, "key_vault_url": password_secret_uri, "identity": identity.id}
                ],
            },
            template={
                "containers": [
                    {
                        "name": "app",
                        "image": f"{config.image}:{version}",
                        "resources": {"cpu": settings.cpu, "memory": f"{settings.cpu * 2:g}Gi"},
                        "env": [
                            {"name": "APP_VERSION", "value": version},
                            {"name": "APP_COLOR", "value": color},
                            {"name": "PORT", "value": str(config.app_port)},
                            {"name": "PGHOST", "value": self.db_host},
                            {"name": "PGDATABASE", "value": config.db.name},
                            {"name": "PGUSER", "value": config.db.username},
                            {"name": "PGSSLMODE", "value": "require"},
                            {"name": "PGPASSWORD", "secret_ref": DB_PASSWORD_SECRET},
                        ],
                        "probes": [
                            {"type": "Liveness", "http_get": probe_get, "period_seconds": 10, "failure_threshold": 3},
                            {"type": "Readiness", "http_get": ready_get, "period_seconds": 5, "failure_threshold": 2},
                        ],
                    }
                ],
                "scale": {
                    "min_replicas": flip_guard.gated(self._flip_check, config.desired_capacity(color)),
                    "max_replicas": config.capacity,
                },
            },
            **self._common,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[secrets_reader]),
        )

    # -- the shared load balancer -------------------------------------------------

    def _gateway(
        self,
        name: str,
        prefix: str,
        client: pulumi.Output[Any],
        subnets: dict[str, network.Subnet],
        public_ip: network.PublicIPAddress,
        environment: app.ManagedEnvironment,
        identity: managedidentity.UserAssignedIdentity,
    ) -> network.ApplicationGateway:
        config, settings = self._config, self._settings
        gateway_name = f"{prefix}-agw"
        # Sub-resources of a gateway refer to each other by ARM id, known before the gateway exists.
        gateway_id = pulumi.Output.all(client.subscription_id, self.resource_group_name).apply(
            lambda a: (
                f"/subscriptions/{a[0]}/resourceGroups/{a[1]}/providers/Microsoft.Network/"
                f"applicationGateways/{gateway_name}"
            )
        )

        def ref(kind: str, item: str) -> dict[str, pulumi.Output[str]]:
            return {"id": gateway_id.apply(lambda gid: f"{gid}/{kind}/{item}")}

        protocol = "Https" if settings.https else "Http"
        listener_extra: dict[str, Any] = {"ssl_certificate": ref("sslCertificates", "tls")} if settings.https else {}
        tls: dict[str, Any] = {}
        if settings.https:
            tls = {
                "ssl_certificates": [{"name": "tls", "key_vault_secret_id": settings.certificate_secret_id}],
                "ssl_policy": {"policy_type": "Predefined", "policy_name": "AppGwSslPolicy20220101"},
                "identity": {"type": "UserAssigned", "user_assigned_identities": [identity.id]},
            }
        routes = {PROD_RULE: config.live_color, "preview": config.idle_color}
        waf: dict[str, Any] = {}
        listener_waf: dict[str, dict[str, Any]] = {listener: {} for listener in routes}
        if settings.gateway_sku == "WAF_v2":
            # Azure refuses a WAF_v2 gateway without a firewall policy.
            waf = {"firewall_policy": {"id": self._waf_policy(name, prefix, "waf", settings.waf_mode).id}}
            if self.preview_token is not None:
                preview_waf = self._waf_policy(name, prefix, "preview-waf", "Prevention", self.preview_token)
                listener_waf["preview"] = {"firewall_policy": {"id": preview_waf.id}}
        return network.ApplicationGateway(
            f"{name}-gateway",
            application_gateway_name=gateway_name,
            sku={"name": settings.gateway_sku, "tier": settings.gateway_sku},
            autoscale_configuration={
                "min_capacity": settings.gateway_min_capacity,
                "max_capacity": settings.gateway_max_capacity,
            },
            enable_http2=True,
            gateway_ip_configurations=[{"name": "gateway", "subnet": {"id": subnets["gateway"].id}}],
            frontend_ip_configurations=[{"name": "public", "public_ip_address": {"id": public_ip.id}}],
            frontend_ports=[
                {"name": "prod", "port": config.listen_port},
                {"name": "preview", "port": config.preview_port},
            ],
            backend_address_pools=[
                {
                    "name": _pool_name(color),
                    "backend_addresses": [
                        {"fqdn": pulumi.Output.concat(self.apps[color].name, ".", environment.default_domain)}
                    ],
                }
                for color in COLORS
            ],
            probes=[
                {
                    "name": "health",
                    "protocol": "Https",
                    "path": config.health_path,
                    "interval": 5,
                    "timeout": 5,
                    "unhealthy_threshold": 2,
                    "pick_host_name_from_backend_http_settings": True,
                    "match": {"status_codes": ["200-399"]},
                }
            ],
            backend_http_settings_collection=[
                {
                    "name": "apps",
                    "port": 443,
                    "protocol": "Https",
                    "pick_host_name_from_backend_address": True,
                    "cookie_based_affinity": "Disabled",
                    "request_timeout": 30,
                    "probe": ref("probes", "health"),
                    "connection_draining": {"enabled": True, "drain_timeout_in_sec": settings.drain_timeout_s},
                }
            ],
            http_listeners=[
                {
                    "name": listener,
                    "protocol": protocol,
                    "frontend_ip_configuration": ref("frontendIPConfigurations", "public"),
                    "frontend_port": ref("frontendPorts", listener),
                    **listener_extra,
                    **listener_waf[listener],
                }
                for listener in routes
            ],
            # The switch: the only inputs that depend on live_color.
            request_routing_rules=[
                {
                    "name": listener,
                    "rule_type": "Basic",
                    "priority": 100 * (index + 1),
                    "http_listener": ref("httpListeners", listener),
                    "backend_address_pool": flip_guard.gated(
                        self._flip_check, ref("backendAddressPools", _pool_name(color))
                    ),
                    "backend_http_settings": ref("backendHttpSettingsCollection", "apps"),
                }
                for index, (listener, color) in enumerate(routes.items())
            ],
            **tls,
            **waf,
            **self._common,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*self.apps.values(), *self._apps_dns]),
        )

    def _waf_policy(
        self, name: str, prefix: str, role: str, mode: str, token: pulumi.Output[str] | None = None
    ) -> network.WebApplicationFirewallPolicy:
        """A WAF policy: OWASP managed rules, and with ``token`` a rule that blocks requests without the header.

        The preview header's value is scrubbed from the WAF's logs.
        """
        custom_rules = []
        if token is not None:
            custom_rules.append(
                {
                    "name": PREVIEW_WAF_RULE,
                    "priority": 1,
                    "rule_type": "MatchRule",
                    "action": "Block",
                    "state": "Enabled",
                    "match_conditions": [
                        {
                            "match_variables": [{"variable_name": "RequestHeaders", "selector": PREVIEW_HEADER}],
                            "operator": "Equal",
                            # Azure's own spelling of the property.
                            "negation_conditon": True,
                            "match_values": [token],
                        }
                    ],
                }
            )
        return network.WebApplicationFirewallPolicy(
            f"{name}-{role}",
            policy_name=f"{prefix}-{role}",
            managed_rules={"managed_rule_sets": [WAF_RULE_SET]},
            custom_rules=custom_rules or None,
            policy_settings={
                "state": "Enabled",
                "mode": mode,
                "request_body_check": True,
                "log_scrubbing": {
                    "state": "Enabled",
                    "scrubbing_rules": [
                        {
                            "match_variable": "RequestHeaderNames",
                            "selector_match_operator": "Equals",
                            "selector": PREVIEW_HEADER,
                            "state": "Enabled",
                        }
                    ],
                },
            },
            **self._common,
            opts=pulumi.ResourceOptions(parent=self),
        )


def _url(scheme: str, host: pulumi.Input[str], port: int) -> pulumi.Output[str]:
    default = 443 if scheme == "https" else 80
    return pulumi.Output.concat(scheme, "://", host, "" if port == default else f":{port}")


def _pool_name(color: str) -> str:
    return f"{color}-pool"


def _rule(
    name: str,
    priority: int,
    source: str | None,
    ports: str,
    access: str = "Allow",
    protocol: str = "Tcp",
) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "name": name,
        "priority": priority,
        "direction": "Inbound",
        "access": access,
        "protocol": protocol,
        "source_port_range": "*",
        "destination_address_prefix": "*",
        "destination_port_range": ports,
    }
    if source is not None:
        rule["source_address_prefix"] = source
    return rule


def validate(config: StackConfig) -> None:
    """The ``bluegreen:azure`` checks the program makes, for the pipeline to make first (no provider config)."""
    AzureSettings.settings_at(config, "validate")
    refuse_private_preview_cidrs(config, "the Application Gateway's public IP")


def build(name: str, config: StackConfig) -> AzureBlueGreen:
    """Validate the Azure settings, then build the component (nothing is registered on bad input)."""
    settings = AzureSettings.parse(config, pulumi.Config("azure-native").get("location"))
    refuse_private_preview_cidrs(config, "the Application Gateway's public IP")
    return AzureBlueGreen(name, AzureBlueGreenArgs(config=config, settings=settings))
