"""The Azure target under Pulumi mocks: routing, the minimal switch, isolation, protection, validation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure_mock_outputs import ENV_DEFAULT_DOMAIN, TENANT_ID, azure_outputs
from pulumi_harness import SECRET, ProgramFailedError, Registration, StackRun, run_stack, with_deployed
from rejections import assert_refused_before_any_resource, with_invalid_value
from test_config import INVALID_VALUES

from components.azure import AzureSettings
from components.config import ConfigError, StackConfig

LOCATION = {"azure-native:location": "westeurope"}
GATEWAY = "azure-native:network:ApplicationGateway"
CONTAINER_APP = "azure-native:app:ContainerApp"
NSG = "azure-native:network:NetworkSecurityGroup"
SUBNET = "azure-native:network:Subnet"
SERVER = "azure-native:dbforpostgresql:Server"
LOCK = "azure-native:authorization:ManagementLockByScope"
PROD = {
    "cloud": "azure",
    "environment": "prod",
    "preview_cidrs": ["198.51.100.0/24"],
    "capacity": 4,
    "idle_capacity": 1,
}
GATEWAY_ID = (
    "/subscriptions/00000000-0000-0000-0000-00000000005b/resourceGroups/prod-rg"
    "/providers/Microsoft.Network/applicationGateways/prod-agw"
)


def azure_stack(
    stack: str = "prod", provider: dict[str, str] | None = None, deployed: dict[str, Any] | None = None, **config: Any
) -> StackRun:
    """``deployed``: the stack's last outputs, as its self stack reference reads them."""
    return run_stack(
        {**PROD, **config},
        stack=stack,
        provider_config=LOCATION if provider is None else provider,
        extra_outputs=with_deployed(azure_outputs, deployed),
    )


def routes(gateway: Registration) -> dict[str, str]:
    """Routing rule name -> the backend pool it sends to."""
    return {
        rule["name"]: rule["backendAddressPool"]["id"].rsplit("/", 1)[1]
        for rule in gateway.inputs["requestRoutingRules"]
    }


def app_of(run: StackRun, color: str) -> Registration:
    return run.one(CONTAINER_APP, f"-{color}-app")


@pytest.mark.parametrize("live", ["blue", "green"])
def test_prod_rule_routes_to_the_live_pool_and_preview_to_the_idle_one(live: str) -> None:
    idle = "green" if live == "blue" else "blue"
    run = azure_stack(live_color=live, blue_version="1.4.0", green_version="1.5.0")
    gateway = run.one(GATEWAY)
    assert routes(gateway) == {"prod": f"{live}-pool", "preview": f"{idle}-pool"}
    for rule in gateway.inputs["requestRoutingRules"]:
        assert rule["httpListener"]["id"] == f"{GATEWAY_ID}/httpListeners/{rule['name']}"
        assert rule["backendAddressPool"]["id"].startswith(f"{GATEWAY_ID}/backendAddressPools/")
    listeners = {listener["name"]: listener for listener in gateway.inputs["httpListeners"]}
    ports = {port["name"]: port["port"] for port in gateway.inputs["frontendPorts"]}
    assert ports == {"prod": 80, "preview": 8443}
    assert listeners["preview"]["frontendPort"]["id"] == f"{GATEWAY_ID}/frontendPorts/preview"

    # Each pool holds exactly its own colour's app, whichever colour is live.
    pools = {pool["name"]: pool["backendAddresses"] for pool in gateway.inputs["backendAddressPools"]}
    assert pools == {c: [{"fqdn": f"prod-{c.split('-')[0]}.{ENV_DEFAULT_DOMAIN}"}] for c in ("blue-pool", "green-pool")}
    (probe,) = gateway.inputs["probes"]
    assert probe["path"] == "/healthz" and probe["pickHostNameFromBackendHttpSettings"] is True
    (settings,) = gateway.inputs["backendHttpSettingsCollection"]
    assert settings["probe"]["id"] == f"{GATEWAY_ID}/probes/health"
    assert settings["pickHostNameFromBackendAddress"] is True and settings["protocol"] == "Https"

    out = run.outputs
    assert (out["live_color"], out["idle_color"]) == (live, idle)
    assert (out["blue_version"], out["green_version"]) == ("1.4.0", "1.5.0")
    assert out["live_url"] == "http://prod-q7x2k9.westeurope.cloudapp.azure.com"
    assert out["preview_url"] == "http://prod-q7x2k9.westeurope.cloudapp.azure.com:8443"
    assert out["metrics"] == {
        "source": "azure_monitor",
        "gateway_id": "prod-bluegreen-gateway-id",
        "pools": {"blue": "blue-pool", "green": "green-pool"},
        "prod_rule": "prod",
        "apps": {"blue": "prod-blue", "green": "prod-green"},
    }

    apps = {color: app_of(run, color).inputs for color in ("blue", "green")}
    assert apps[live]["template"]["scale"] == {"minReplicas": 4, "maxReplicas": 4}
    assert apps[idle]["template"]["scale"] == {"minReplicas": 1, "maxReplicas": 4}
    for color, inputs in apps.items():
        (container,) = inputs["template"]["containers"]
        env = {e["name"]: e.get("value", e.get("secretRef")) for e in container["env"]}
        assert container["image"] == f"ghcr.io/example/bluegreen-app:{'1.4.0' if color == 'blue' else '1.5.0'}"
        assert env["APP_COLOR"] == color and env["APP_VERSION"] == container["image"].rsplit(":", 1)[1]
        assert env["PGHOST"] == "prod-pg-q7x2k9.postgres.database.azure.com"
        assert {p["type"]: p["httpGet"]["path"] for p in container["probes"]} == {
            "Liveness": "/healthz",
            "Readiness": "/healthz",
        }


def diff_inputs(old: Any, new: Any, path: str = "") -> set[str]:
    """Paths (to depth two) whose values differ between two recorded inputs."""
    if isinstance(old, dict) and isinstance(new, dict) and path.count(".") < 2:
        return {
            p for k in old.keys() | new.keys() for p in diff_inputs(old.get(k), new.get(k), f"{path}.{k}".lstrip("."))
        }
    return {path} if old != new else set()


def changes(a: StackRun, b: StackRun) -> dict[tuple[str, str], set[str]]:
    """(type, name) -> input paths that differ; both runs must hold the same resources."""
    before, after = a.by_name(), b.by_name()
    assert before.keys() == after.keys(), "a colour flip must neither add nor remove resources"
    out = {}
    for key, old in before.items():
        new = after[key]
        paths = diff_inputs(old.inputs, new.inputs)
        if old.protect != new.protect or old.parent != new.parent:
            paths.add("<options>")
        if paths:
            out[key] = paths
    return out


def test_minimal_switch_changes_only_the_gateway_routing_rules() -> None:
    """During a release the idle colour is held warm, so a flip touches the two routing rules alone."""
    blue = azure_stack(live_color="blue", warm_idle=True)
    green = azure_stack(live_color="green", warm_idle=True)
    assert changes(blue, green) == {(GATEWAY, "prod-bluegreen-gateway"): {"requestRoutingRules"}}
    old, new = blue.one(GATEWAY).inputs["requestRoutingRules"], green.one(GATEWAY).inputs["requestRoutingRules"]
    assert [{**r, "backendAddressPool": None} for r in old] == [{**r, "backendAddressPool": None} for r in new]


def test_flip_outside_a_release_also_rescales_the_apps_in_place() -> None:
    """Without warm_idle only each app's minimum replica count follows the flip; nothing is replaced."""
    changed = changes(azure_stack(live_color="blue"), azure_stack(live_color="green"))
    assert changed == {
        (GATEWAY, "prod-bluegreen-gateway"): {"requestRoutingRules"},
        (CONTAINER_APP, "prod-bluegreen-blue-app"): {"template.scale.minReplicas"},
        (CONTAINER_APP, "prod-bluegreen-green-app"): {"template.scale.minReplicas"},
    }


def test_a_bare_flip_to_a_colour_below_capacity_is_refused_before_the_gateway_or_apps_change() -> None:
    """The gateway names both apps, so a flip is judged against the deployed outputs instead."""
    deployed = azure_stack(live_color="blue").outputs
    assert deployed["capacities"] == {"blue": 4, "green": 1}
    with pytest.raises(
        ProgramFailedError, match="refusing to send 100% of production to green, which runs 1 of"
    ) as refused:
        azure_stack(live_color="green", deployed=deployed)
    registered = {r.type for r in refused.value.resources}
    assert GATEWAY not in registered and CONTAINER_APP not in registered
    warm = azure_stack(live_color="blue", warm_idle=True, deployed=deployed).outputs
    flipped = azure_stack(live_color="green", warm_idle=True, deployed=warm).outputs
    azure_stack(live_color="green", deployed=flipped)  # then the old colour cools down


def test_nsg_limits_the_preview_port_to_preview_cidrs() -> None:
    run = azure_stack(preview_cidrs=["198.51.100.0/24", "192.0.2.0/24"])
    nsg = run.one(NSG)
    rules = sorted(nsg.inputs["securityRules"], key=lambda r: r["priority"])
    preview = [r for r in rules if r["destinationPortRange"] == "8443"]
    assert [(r["access"], r.get("sourceAddressPrefixes", r.get("sourceAddressPrefix"))) for r in preview] == [
        ("Allow", ["198.51.100.0/24", "192.0.2.0/24"]),
        ("Deny", "*"),
    ], "the allow for preview_cidrs comes first, then everyone else is denied (incl. the virtual network)"
    assert all(r["direction"] == "Inbound" for r in rules)
    prod = [r for r in rules if r["destinationPortRange"] == "80"]
    assert [(r["access"], r["sourceAddressPrefix"]) for r in prod] == [("Allow", "Internet")]
    # Application Gateway v2 needs its infrastructure ports open to GatewayManager.
    assert any(
        r["sourceAddressPrefix"] == "GatewayManager" and r["destinationPortRange"] == "65200-65535" for r in rules
    )
    gateway_subnet = run.one(SUBNET, "gateway-subnet")
    assert gateway_subnet.inputs["networkSecurityGroup"] == {"id": "prod-bluegreen-gateway-nsg-id"}
    (ip_config,) = run.one(GATEWAY).inputs["gatewayIPConfigurations"]
    assert ip_config["subnet"]["id"] == "prod-bluegreen-gateway-subnet-id"


def test_apps_are_reachable_only_from_the_gateway_subnet() -> None:
    run = azure_stack()
    env = run.one("azure-native:app:ManagedEnvironment")
    assert env.inputs["vnetConfiguration"] == {
        "infrastructureSubnetId": "prod-bluegreen-apps-subnet-id",
        "internal": True,
    }
    subnets = {s.inputs["subnetName"]: s.inputs for s in run.of_type(SUBNET)}
    assert subnets["gateway"]["addressPrefix"] == "10.60.0.0/24"
    assert subnets["apps"]["delegations"][0]["serviceName"] == "Microsoft.App/environments"
    for color in ("blue", "green"):
        ingress = app_of(run, color).inputs["configuration"]["ingress"]
        assert ingress["ipSecurityRestrictions"] == [
            {
                "name": "gateway-only",
                "description": "Only the Application Gateway subnet may call this colour",
                "action": "Allow",
                "ipAddressRange": "10.60.0.0/24",
            }
        ]
        assert ingress["allowInsecure"] is False and ingress["targetPort"] == 8080
    # The gateway finds the apps through a private zone for the environment's domain.
    zone = next(z for z in run.of_type("azure-native:privatedns:PrivateZone") if "apps" in z.name)
    assert zone.inputs["privateZoneName"] == ENV_DEFAULT_DOMAIN
    record = run.one("azure-native:privatedns:PrivateRecordSet")
    assert record.inputs["relativeRecordSetName"] == "*" and record.inputs["aRecords"] == [
        {"ipv4Address": "10.60.2.200"}
    ]


def test_database_is_private_backed_up_protected_and_locked() -> None:
    run = azure_stack(db={"backup_retention_days": 14, "multi_az": True, "storage_gb": 100})
    server = run.one(SERVER)
    assert server.protect is True
    assert server.inputs["network"] == {
        "delegatedSubnetResourceId": "prod-bluegreen-db-subnet-id",
        "privateDnsZoneArmResourceId": "prod-bluegreen-db-zone-id",
        "publicNetworkAccess": "Disabled",
    }
    assert server.inputs["backup"] == {"backupRetentionDays": 14, "geoRedundantBackup": "Disabled"}
    assert server.inputs["highAvailability"] == {"mode": "ZoneRedundant"}
    assert server.inputs["storage"]["storageSizeGB"] == 128, "rounded up to a size Flexible Server offers"
    assert server.inputs["sku"] == {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"}
    assert server.inputs["version"] == "16"
    lock = run.one(LOCK)
    assert lock.inputs["level"] == "CanNotDelete" and lock.inputs["scope"] == "prod-bluegreen-db-id"
    zone = next(z for z in run.of_type("azure-native:privatedns:PrivateZone") if "db" in z.name)
    assert zone.inputs["privateZoneName"] == "prod.private.postgres.database.azure.com"
    assert {r.name for r in run.resources if r.protect} == {"prod-bluegreen-db"}


def test_the_password_is_secret_everywhere_and_kept_in_key_vault() -> None:
    run = azure_stack()
    password = "mock-password-of-prod-bluegreen-db-password"
    assert password not in json.dumps([r.inputs for r in run.resources]), "the password is never plain text"
    assert password not in json.dumps(run.outputs, default=str)
    server = run.one(SERVER)
    assert server.inputs["administratorLoginPassword"] == SECRET
    secret = run.one("azure-native:keyvault:Secret")
    assert secret.inputs["properties"]["value"] == SECRET and secret.inputs["secretName"] == "db-password"
    vault = run.one("azure-native:keyvault:Vault").inputs
    assert vault["properties"]["tenantId"] == TENANT_ID
    assert vault["properties"]["enableRbacAuthorization"] is True and vault["properties"]["enablePurgeProtection"]
    reader = run.one("azure-native:authorization:RoleAssignment").inputs
    assert reader["scope"] == "prod-bluegreen-vault-id"
    assert reader["principalId"] == "principal-of-prod-bluegreen-identity"
    assert reader["roleDefinitionId"].endswith("/roleDefinitions/4633458b-17de-408a-b874-0445c86b69e6")
    for color in ("blue", "green"):
        inputs = app_of(run, color).inputs
        assert inputs["configuration"]["secrets"] == [
            {
                "name": "db-password",
                "keyVaultUrl": "https://prod-q7x2k9.vault.azure.net/secrets/db-password",
                "identity": "prod-bluegreen-identity-id",
            }
        ]
        (container,) = inputs["template"]["containers"]
        assert {"name": "PGPASSWORD", "secretRef": "db-password"} in container["env"]


def test_https_listeners_when_a_certificate_is_configured() -> None:
    cert = "https://certs-vault.vault.azure.net/secrets/shop-tls"
    run = azure_stack(listen_port=443, azure={"certificate_secret_id": cert, "domain": "shop.example.com"})
    gateway = run.one(GATEWAY).inputs
    assert gateway["sslCertificates"] == [{"name": "tls", "keyVaultSecretId": cert}]
    assert gateway["identity"] == {"type": "UserAssigned", "userAssignedIdentities": ["prod-bluegreen-identity-id"]}
    for listener in gateway["httpListeners"]:
        assert listener["protocol"] == "Https"
        assert listener["sslCertificate"]["id"] == f"{GATEWAY_ID}/sslCertificates/tls"
    assert run.outputs["live_url"] == "https://shop.example.com"
    assert run.outputs["preview_url"] == "https://shop.example.com:8443"


def test_an_existing_resource_group_is_used_instead_of_a_new_one() -> None:
    run = azure_stack(azure={"resource_group": "shop-prod"})
    assert run.of_type("azure-native:resources:ResourceGroup") == []
    groups = {r.inputs.get("resourceGroupName") for r in run.resources if r.custom and "resourceGroupName" in r.inputs}
    assert groups == {"shop-prod"}
    assert routes(run.one(GATEWAY))["prod"] == "blue-pool"
    assert run.one(GATEWAY).inputs["backendAddressPools"][0]["backendAddresses"][0]["fqdn"].startswith("prod-blue.")


def test_every_child_is_parented_to_the_component_and_named_after_it() -> None:
    run = azure_stack()
    (component,) = run.of_type("bluegreen:azure:BlueGreen")
    assert component.parent.endswith("pulumi:pulumi:Stack::bluegreen-prod")
    for resource in run.resources:
        if resource is not component:
            assert resource.parent == component.urn, resource.name
            assert resource.name.startswith("prod-bluegreen-"), resource.name
    assert run.outputs["database_endpoint"] == "prod-pg-q7x2k9.postgres.database.azure.com"


@pytest.mark.parametrize(("key", "value", "message"), INVALID_VALUES)
def test_bad_config_fails_before_any_resource(key: str, value: object, message: str) -> None:
    assert_refused_before_any_resource(with_invalid_value(PROD, key, value), "prod", LOCATION, message)


@pytest.mark.parametrize(
    ("config", "provider", "message"),
    [
        ({}, {}, "azure-native:location is not set"),
        ({}, {"azure-native:location": "West Europe"}, "azure-native:location = 'West Europe' is invalid"),
        ({"azure": {"name_prefix": "Shop"}}, LOCATION, "bluegreen:azure.name_prefix = 'Shop' is invalid"),
        ({"azure": {"name_prefix": "shop--prod"}}, LOCATION, "single hyphens"),
        ({"azure": {"name_prefix": "a-very-long-prefix-name"}}, LOCATION, "2-16 characters"),
        ({"azure": {"name_prefix": "a"}}, LOCATION, "2-16 characters"),
        ({"azure": {"resource_group": "rg."}}, LOCATION, "bluegreen:azure.resource_group = 'rg.' is invalid"),
        ({"azure": {"vnet_cidr": "10.0.0.0/24"}}, LOCATION, "/22 or larger"),
        ({"azure": {"vnet_cidr": "8.8.0.0/16"}}, LOCATION, "a private IPv4 block"),
        ({"azure": {"gateway_sku": "Standard_Small"}}, LOCATION, "allowed: Standard_v2, WAF_v2"),
        ({"azure": {"waf_mode": "Block"}}, LOCATION, "allowed: Prevention, Detection"),
        (
            {"azure": {"gateway_sku": "Standard_v2", "waf_mode": "Detection"}, "preview_header": False},
            LOCATION,
            "only with gateway_sku WAF_v2",
        ),
        (
            {"azure": {"gateway_sku": "Standard_v2"}},
            LOCATION,
            "bluegreen:azure.gateway_sku = 'Standard_v2' cannot require the preview header",
        ),
        (
            {"listen_port": 443, "azure": {"certificate_secret_id": "https://v.vault.azure.net/secrets/tls"}},
            LOCATION,
            "needs bluegreen:azure.domain",
        ),
        ({"preview_cidrs": ["10.20.0.0/16"]}, LOCATION, "never a private one, so this range never matches"),
        ({"azure": {"gateway_min_capacity": 5, "gateway_max_capacity": 3}}, LOCATION, ">= gateway_min_capacity"),
        ({"azure": {"certificate_secret_id": "my-cert"}}, LOCATION, "a Key Vault secret id"),
        ({"azure": {"cpu": 0.3}}, LOCATION, "0.25-4 in steps of 0.25"),
        ({"azure": {"domain": "Shop.Example"}}, LOCATION, "a lowercase DNS name"),
        ({"azure": {"vnetcidr": "10.0.0.0/16"}}, LOCATION, "unknown field(s) vnetcidr"),
        ({"listen_port": 443}, LOCATION, "listen_port = 443 needs a TLS certificate"),
        ({"preview_port": 65300}, LOCATION, "reserves ports 65200-65535"),
        ({"switch_steps": [10, 100]}, LOCATION, "only [100] (classic blue-green) is possible"),
        ({"db": {"backup_retention_days": 3}}, LOCATION, "keeps backups 7-35 days"),
        ({"db": {"instance": "db.r6g.large"}}, LOCATION, "a Flexible Server compute size"),
    ],
)
def test_bad_azure_settings_fail_before_any_resource(
    config: dict[str, Any], provider: dict[str, str], message: str
) -> None:
    assert_refused_before_any_resource({**PROD, **config}, "prod", provider, message)


def test_name_prefix_comes_from_the_stack_unless_the_stack_name_cannot_give_one() -> None:
    assert AzureSettings.parse(StackConfig.parse({"cloud": "azure"}, "Shop_Prod.EU"), "westeurope").name_prefix == (
        "shop-prod-eu"
    )
    with pytest.raises(ConfigError, match="the stack name does not give one, so set it"):
        AzureSettings.parse(StackConfig.parse({"cloud": "azure"}, "2024-prod"), "westeurope")
    settings = AzureSettings.parse(
        StackConfig.parse({"cloud": "azure", "azure": {"name_prefix": "shop"}}, "2024-prod"), "westeurope"
    )
    assert settings.name_prefix == "shop"
    assert settings.subnets() == {"gateway": "10.60.0.0/24", "db": "10.60.1.0/24", "apps": "10.60.2.0/23"}


def test_a_review_stack_gets_a_cheap_unprotected_database_and_its_own_names() -> None:
    """Review stacks inherit the template's settings; their database must be destroyable and their names unique."""
    run = run_stack(
        {
            "cloud": "azure",
            "capacity": 1,
            "idle_capacity": 0,
            "db": {"ephemeral": True, "backup_retention_days": 1},
            "azure": {"name_prefix": "shop"},
        },
        stack="pr-42",
        provider_config=LOCATION,
        extra_outputs=azure_outputs,
    )
    server = run.one(SERVER)
    assert server.protect is False and run.of_type(LOCK) == []
    assert server.inputs["sku"] == {"name": "Standard_B1ms", "tier": "Burstable"}
    assert server.inputs["backup"]["backupRetentionDays"] == 7, "Azure's minimum"
    assert server.inputs["network"]["publicNetworkAccess"] == "Disabled", "still private"
    vault = run.one("azure-native:keyvault:Vault").inputs["properties"]
    assert "enablePurgeProtection" not in vault and vault["softDeleteRetentionInDays"] == 7
    assert run.one("azure-native:resources:ResourceGroup").inputs["resourceGroupName"] == "pr-42-rg"
    assert app_of(run, "green").inputs["template"]["scale"] == {"minReplicas": 0, "maxReplicas": 1}


def test_the_readme_example_stack_builds() -> None:
    """The Azure stack file shown in docs/azure.md is valid and gives HTTPS on the custom domain."""
    import re

    import yaml
    from pulumi_harness import ROOT

    section = (ROOT / "docs" / "azure.md").read_text()
    doc = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))["config"]
    bluegreen = {k.split(":", 1)[1]: v for k, v in doc.items() if k.startswith("bluegreen:")}
    provider = {k: v for k, v in doc.items() if k.startswith("azure-native:")}
    run = run_stack(bluegreen, stack="prod-azure", provider_config=provider, extra_outputs=azure_outputs)
    assert run.outputs["live_url"] == "https://orders.example.com"
    assert {listener["protocol"] for listener in run.one(GATEWAY).inputs["httpListeners"]} == {"Https"}
    assert run.one(SERVER).inputs["sku"] == {"name": "Standard_D4ds_v5", "tier": "GeneralPurpose"}
    assert run.one(CONTAINER_APP, "-blue-app").inputs["containerAppName"] == "orders-blue"


def snake_case_keys(value: Any, path: str = "") -> set[str]:
    """Keys the SDK did not translate to its wire names: the SDK leaves unknown keys as written."""
    if isinstance(value, dict):
        return {
            found
            for key, item in value.items()
            for found in ({f"{path}.{key}"} if "_" in key else set()) | snake_case_keys(item, f"{path}.{key}")
        }
    if isinstance(value, list):
        return {found for item in value for found in snake_case_keys(item, f"{path}[]")}
    return set()


def test_every_property_name_is_one_the_installed_sdk_knows() -> None:
    """Plain-dict arguments are checked by nobody else: a misspelt key would reach Azure as written."""
    cert = "https://certs-vault.vault.azure.net/secrets/shop-tls"
    run = azure_stack(
        listen_port=443, db={"multi_az": True}, azure={"certificate_secret_id": cert, "domain": "shop.example.com"}
    )
    assert {r.type.split(":")[1] for r in run.resources if r.custom} >= {"network", "app", "dbforpostgresql"}
    assert run.of_type("azure-native:network:WebApplicationFirewallPolicy"), "the WAF policies' properties too"
    # Dynamic resources (the migration records) carry Pulumi's reserved ``__provider``, not an Azure property.
    azure = [r for r in run.resources if not r.type.startswith("pulumi-python:dynamic")]
    unknown = {found for r in azure for found in snake_case_keys(r.inputs, r.type)}
    assert unknown == set()


def test_probes_follow_health_path_and_ready_path() -> None:
    run = azure_stack(health_path="/livez", ready_path="/ready")
    (gateway,) = run.of_type("azure-native:network:ApplicationGateway")
    assert [p["path"] for p in gateway.inputs["probes"]] == ["/livez"]
    for color in ("blue", "green"):
        (container,) = app_of(run, color).inputs["template"]["containers"]
        probes = {p["type"]: p["httpGet"]["path"] for p in container["probes"]}
        assert probes == {"Liveness": "/livez", "Readiness": "/ready"}
