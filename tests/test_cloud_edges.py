"""What the clouds refuse or race on, under mocks: TLS names, WAF_v2, DNS links, networks, names, rollouts."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pulumi
import pytest
from azure_mock_outputs import azure_outputs
from pulumi_harness import ProgramFailedError, StackRun, run_stack
from rejections import assert_refused_before_any_resource
from test_gcp_component import PROVIDER as GCP_PROVIDER
from test_gcp_component import provider_outputs as gcp_outputs

from components.aws import snapshot_identifier
from components.config import ConfigError, StackConfig
from components.targets import validate_target

REGION = {"aws:region": "eu-west-1"}
LOCATION = {"azure-native:location": "westeurope"}
CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
VAULT_CERT = "https://certs.vault.azure.net/secrets/shop-tls"
AWS = {"cloud": "aws", "environment": "prod", "capacity": 4, "idle_capacity": 1}
AZURE = {"cloud": "azure", "environment": "prod", "capacity": 4, "idle_capacity": 1}
SUBNET = "aws:ec2/subnet:Subnet"
SERVER = "azure-native:dbforpostgresql:Server"
GATEWAY = "azure-native:network:ApplicationGateway"
WAF = "azure-native:network:WebApplicationFirewallPolicy"


def aws(stack: str = "prod", calls: Any = None, **config: Any) -> StackRun:
    return run_stack({**AWS, **config}, stack=stack, provider_config=REGION, calls=calls)


def azure(stack: str = "prod", **config: Any) -> StackRun:
    return run_stack({**AZURE, **config}, stack=stack, provider_config=LOCATION, extra_outputs=azure_outputs)


def gcp(stack: str = "prod", **config: Any) -> StackRun:
    return run_stack({"cloud": "gcp", **config}, stack=stack, provider_config=GCP_PROVIDER, extra_outputs=gcp_outputs)


# -- item 2: the URLs name what the certificate names -----------------------------------------


def test_aws_domain_drives_the_urls_the_certificate_and_the_alias_record() -> None:
    run = aws(
        listen_port=443, aws={"domain": "Shop.Example.com", "certificate_arn": CERT, "route53_zone_id": "Z0ABC123"}
    )
    assert run.outputs["live_url"] == "https://shop.example.com"
    assert run.outputs["preview_url"] == "https://shop.example.com:8443"
    assert run.outputs["load_balancer_host"] == "prod-bluegreen-alb-123.eu-west-1.elb.amazonaws.com"
    listeners = {r.name: r.inputs for r in run.of_type("aws:lb/listener:Listener")}
    for name in ("prod-bluegreen-prod-listener", "prod-bluegreen-preview-listener"):
        assert listeners[name]["protocol"] == "HTTPS" and listeners[name]["certificateArn"] == CERT
    record = run.one("aws:route53/record:Record").inputs
    assert (record["zoneId"], record["name"], record["type"]) == ("Z0ABC123", "shop.example.com", "A")
    assert record["aliases"] == [
        {
            "name": "prod-bluegreen-alb-123.eu-west-1.elb.amazonaws.com",
            "zoneId": "Z32O12XQLNTSW2",
            "evaluateTargetHealth": True,
        }
    ]


def test_aws_without_a_certificate_is_plain_http_on_the_domain_or_the_albs_name() -> None:
    named = aws(aws={"domain": "shop.example.com"})
    assert named.outputs["live_url"] == "http://shop.example.com"
    assert named.outputs["preview_url"] == "http://shop.example.com:8443"
    assert not named.of_type("aws:route53/record:Record"), "no zone given: the user keeps the record"
    bare = aws()
    assert bare.outputs["live_url"] == "http://prod-bluegreen-alb-123.eu-west-1.elb.amazonaws.com"
    assert {r.inputs["protocol"] for r in bare.of_type("aws:lb/listener:Listener")} == {"HTTP"}


def test_azure_domain_drives_the_urls() -> None:
    plain = azure(azure={"domain": "shop.example.com"})
    assert plain.outputs["live_url"] == "http://shop.example.com"
    assert plain.outputs["load_balancer_host"] == "prod-q7x2k9.westeurope.cloudapp.azure.com"
    tls = azure(listen_port=443, azure={"domain": "shop.example.com", "certificate_secret_id": VAULT_CERT})
    assert tls.outputs["live_url"] == "https://shop.example.com"
    assert tls.one(GATEWAY).inputs["sslCertificates"] == [{"name": "tls", "keyVaultSecretId": VAULT_CERT}]


@pytest.mark.parametrize(
    ("config", "provider", "keys"),
    [
        ({**AWS, "listen_port": 443, "aws": {"certificate_arn": CERT}}, REGION, ("aws.certificate_arn", "aws.domain")),
        (
            {**AZURE, "listen_port": 443, "azure": {"certificate_secret_id": VAULT_CERT}},
            LOCATION,
            ("azure.certificate_secret_id", "azure.domain"),
        ),
    ],
)
def test_a_certificate_without_a_domain_is_refused_naming_both_keys(
    config: dict[str, Any], provider: dict[str, str], keys: tuple[str, str]
) -> None:
    assert_refused_before_any_resource(config, "prod", provider, f"bluegreen:{keys[0]}")
    with pytest.raises(ConfigError) as refused:
        validate_target(StackConfig.parse(config, "prod"))
    assert all(f"bluegreen:{key}" in str(refused.value) for key in keys)
    assert "TLS verification" in str(refused.value)


def test_the_pipeline_refuses_it_before_opening_the_stack(tmp_path: Path) -> None:
    """``open_target`` checks the cloud's settings first: a ConfigError, which the commands turn into exit 2."""
    from scripts.targets import open_target

    (tmp_path / "Pulumi.prod.yaml").write_text(
        f"config:\n  aws:region: eu-west-1\n  bluegreen:cloud: aws\n  bluegreen:aws:\n    certificate_arn: {CERT}\n"
    )
    with pytest.raises(ConfigError, match=r"needs bluegreen:aws\.domain"):
        open_target("prod", tmp_path)


# -- item 6: Azure's races and refusals --------------------------------------------------------


def test_waf_v2_declares_a_firewall_policy_and_attaches_it() -> None:
    run = azure(azure={"waf_mode": "Detection"})
    gateway = run.one(GATEWAY).inputs
    assert gateway["sku"] == {"name": "WAF_v2", "tier": "WAF_v2"}, "the default"
    policy = run.by_name()[(WAF, "prod-bluegreen-waf")]
    assert gateway["firewallPolicy"] == {"id": "prod-bluegreen-waf-id"}
    assert policy.inputs["managedRules"]["managedRuleSets"] == [{"ruleSetType": "OWASP", "ruleSetVersion": "3.2"}]
    assert policy.inputs["policySettings"]["mode"] == "Detection" and policy.inputs["policySettings"]["state"]
    standard = azure(preview_header=False, preview_cidrs=["198.51.100.0/24"], azure={"gateway_sku": "Standard_v2"})
    assert not standard.of_type(WAF) and "firewallPolicy" not in standard.one(GATEWAY).inputs


def test_the_flexible_server_waits_for_its_dns_zone_link() -> None:
    run = azure()
    server = run.one(SERVER)
    link = run.one("azure-native:privatedns:VirtualNetworkLink", "-db-zone-link")
    zone = run.one("azure-native:privatedns:PrivateZone", "-db-zone")
    assert {link.urn, zone.urn} <= set(server.dependencies)
    apps_link = run.one("azure-native:privatedns:VirtualNetworkLink", "-apps-zone-link")
    assert apps_link.urn in run.one(GATEWAY).dependencies, "the gateway resolves the apps through it"


# -- item 7: networks, names, rollouts ---------------------------------------------------------


def subnets(run: StackRun) -> dict[str, str]:
    return {r.name.rsplit("-bluegreen-", 1)[1]: r.inputs["cidrBlock"] for r in run.of_type(SUBNET)}


@pytest.mark.parametrize(
    ("vpc_cidr", "expected"),
    [
        (None, ["10.40.0.0/24", "10.40.1.0/24", "10.40.10.0/24", "10.40.11.0/24"]),
        ("172.20.0.0/16", ["172.20.0.0/24", "172.20.1.0/24", "172.20.10.0/24", "172.20.11.0/24"]),
        ("10.7.32.0/20", ["10.7.32.0/24", "10.7.33.0/24", "10.7.42.0/24", "10.7.43.0/24"]),
        ("192.168.4.0/22", ["192.168.4.0/26", "192.168.4.64/26", "192.168.6.128/26", "192.168.6.192/26"]),
    ],
)
def test_aws_subnets_follow_vpc_cidr(vpc_cidr: str | None, expected: list[str]) -> None:
    run = aws(capacity=2, aws={} if vpc_cidr is None else {"vpc_cidr": vpc_cidr})
    found = subnets(run)
    assert [found[k] for k in ("public-0", "public-1", "private-0", "private-1")] == expected
    vpc = ipaddress.ip_network(run.one("aws:ec2/vpc:Vpc").inputs["cidrBlock"])
    assert all(ipaddress.ip_network(c).subnet_of(vpc) for c in expected)  # type: ignore[arg-type]


def test_a_vpc_too_small_for_capacity_is_refused() -> None:
    config = {**AWS, "capacity": 30, "idle_capacity": 1, "aws": {"vpc_cidr": "10.9.0.0/22"}}
    assert_refused_before_any_resource(config, "prod", REGION, "fewer than the 120 that bluegreen:capacity 30 needs")


def test_nat_gateways_and_their_addresses_wait_for_the_internet_gateway() -> None:
    run = aws()
    igw = run.one("aws:ec2/internetGateway:InternetGateway")
    for type_ in ("aws:ec2/natGateway:NatGateway", "aws:ec2/eip:Eip"):
        found = run.of_type(type_)
        assert len(found) == 2 and all(igw.urn in r.dependencies for r in found), type_


ALB_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?")
SNAPSHOT = re.compile(r"[A-Za-z](-?[A-Za-z0-9])*")


@pytest.mark.parametrize("stack", ["Prod_EU.2", "2024.prod", "prod--eu", "staging_blue-green"])
def test_odd_stack_names_yield_valid_aws_identifiers(stack: str) -> None:
    run = aws(stack=stack)
    (component,) = run.of_type("bluegreen:aws:BlueGreen")
    assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", component.name), component.name
    assert all(r.name.startswith(component.name) for r in run.resources if r is not component)
    db = run.one("aws:rds/instance:Instance").inputs
    snapshot = db["finalSnapshotIdentifier"]
    assert SNAPSHOT.fullmatch(snapshot) and len(snapshot) <= 255, snapshot
    # Autonamed resources take their logical name as the prefix: ALB, target groups, cluster.
    for type_ in ("aws:lb/loadBalancer:LoadBalancer", "aws:lb/targetGroup:TargetGroup", "aws:ecs/cluster:Cluster"):
        assert all(ALB_NAME.fullmatch(r.name) for r in run.of_type(type_)), type_
    families = {r.inputs["family"] for r in run.of_type("aws:ecs/taskDefinition:TaskDefinition")}
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,255}", f) for f in families), families
    assert aws(stack=stack).one("aws:rds/instance:Instance").inputs["finalSnapshotIdentifier"] == snapshot, "stable"


def test_valid_stack_names_keep_their_names_and_snapshot_identifiers_are_bounded() -> None:
    assert aws(stack="prod").one("aws:rds/instance:Instance").inputs["finalSnapshotIdentifier"] == (
        "prod-bluegreen-db-final"
    )
    assert snapshot_identifier("9--x_" + "y" * 300) == ("bg-9-x-" + "y" * 300)[:255]
    assert SNAPSHOT.fullmatch(snapshot_identifier("a" * 254 + "-b"))


def rolled_back(args: pulumi.runtime.MockCallArgs) -> dict[str, Any] | None:
    """ECS after a circuit-breaker rollback of green: steady, on a task definition the update did not ask for."""
    if args.token != "aws:ecs/getService:getService" or "-green-" not in str(args.args.get("serviceName")):
        return None
    old = "arn:aws:ecs:eu-west-1:123456789012:task-definition/prod-bluegreen-green:6"
    return {"taskDefinition": old, "deployments": [{"status": "PRIMARY", "taskDefinition": old}]}


def test_a_circuit_breaker_rollback_fails_the_update() -> None:
    run = aws()
    assert run.outputs["task_definitions"] == {
        c: f"arn:mock:aws:ecs/taskDefinition:TaskDefinition:prod-bluegreen-{c}-task" for c in ("blue", "green")
    }
    assert {t for t, _ in run.invokes if t == "aws:ecs/getService:getService"}
    with pytest.raises(ProgramFailedError) as failed:
        aws(calls=rolled_back, green_version="2.0.0")
    message = str(failed.value)
    assert "green (2.0.0) did not roll out" in message and "task-definition/prod-bluegreen-green:6" in message
    assert "TaskDefinition:prod-bluegreen-green-task" in message


def test_a_preview_does_not_read_the_services_back() -> None:
    run = run_stack(AWS, stack="prod", provider_config=REGION, preview=True, calls=rolled_back)
    assert not [t for t, _ in run.invokes if t == "aws:ecs/getService:getService"]


def test_gcp_direct_vpc_subnet_holds_both_colours_at_max_instances() -> None:
    subnet = "gcp:compute/subnetwork:Subnetwork"
    assert gcp().one(subnet).inputs["ipCidrRange"] == "10.10.0.0/23", "2 x 2 x 100 addresses"
    assert gcp(gcp={"max_instances": 10}).one(subnet).inputs["ipCidrRange"] == "10.10.0.0/26"
    assert gcp(gcp={"max_instances": 1000}).one(subnet).inputs["ipCidrRange"] == "10.10.0.0/20"
    assert gcp(gcp={"subnet_cidr": "10.8.0.0/22"}).one(subnet).inputs["ipCidrRange"] == "10.8.0.0/22"
    assert_refused_before_any_resource(
        {"cloud": "gcp", "gcp": {"subnet_cidr": "10.10.0.0/24"}},
        "prod",
        GCP_PROVIDER,
        "both colours may run bluegreen:gcp.max_instances (100): 400 addresses, but this block has 252",
    )


def test_gcp_networks_can_be_destroyed() -> None:
    connection = "gcp:servicenetworking/connection:Connection"
    kept = gcp()
    assert kept.one(connection).inputs["deletionPolicy"] == "ABANDON"
    assert not [r.name for r in kept.resources if r.retain_on_delete]
    previews = {"enabled": True, "repository": "acme/bluegreen", "credentials": "esc"}
    review = gcp(stack="pr-7", previews=previews)
    assert review.one(connection).inputs["deletionPolicy"] == "REMOVE_PEERING"
    retained = {r.type for r in review.resources if r.retain_on_delete}
    assert retained == {
        "gcp:compute/network:Network",
        "gcp:compute/subnetwork:Subnetwork",
        "gcp:compute/globalAddress:GlobalAddress",
    }
    assert review.one("gcp:compute/globalAddress:GlobalAddress", "sql-range").retain_on_delete
