"""The AWS target under Pulumi mocks: routing, the minimal switch, protection, validation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi_harness import SECRET, Registration, StackRun, run_stack
from rejections import assert_refused_before_any_resource, with_invalid_value
from test_config import INVALID_VALUES

REGION = {"aws:region": "eu-west-1"}
LISTENER = "aws:lb/listener:Listener"
SERVICE = "aws:ecs/service:Service"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
# Prod with an allow-list of public egress addresses only (the header-guarded route: test_preview_access.py).
PROD = {
    "cloud": "aws",
    "environment": "prod",
    "preview_cidrs": ["198.51.100.0/24"],
    "preview_header": False,
    "capacity": 4,
    "idle_capacity": 1,
}


def aws_stack(stack: str = "prod", **config: Any) -> StackRun:
    return run_stack({**PROD, **config}, stack=stack, provider_config=REGION)


def forward_weights(listener: Registration) -> dict[str, float]:
    """Colour -> weight of the listener's forward action (target group ARNs name their colour)."""
    (action,) = listener.inputs["defaultActions"]
    assert action["type"] == "forward"
    weights = {}
    for tg in action["forward"]["targetGroups"]:
        color = "blue" if "-blue-tg" in tg["arn"] else "green"
        weights[color] = tg["weight"]
    return weights


@pytest.mark.parametrize("live", ["blue", "green"])
def test_prod_routes_all_traffic_to_live_and_preview_to_idle(live: str) -> None:
    idle = "green" if live == "blue" else "blue"
    run = aws_stack(live_color=live, blue_version="1.4.0", green_version="1.5.0")
    prod = run.one(LISTENER, "prod-listener")
    preview = run.one(LISTENER, "preview-listener")
    assert forward_weights(prod) == {live: 100, idle: 0}
    assert forward_weights(preview) == {live: 0, idle: 100}
    assert prod.inputs["port"] == 80 and preview.inputs["port"] == 8443

    out = run.outputs
    assert (out["live_color"], out["idle_color"]) == (live, idle)
    assert (out["blue_version"], out["green_version"]) == ("1.4.0", "1.5.0")
    assert out["live_url"] == "http://prod-bluegreen-alb-123.eu-west-1.elb.amazonaws.com"
    assert out["preview_url"] == "http://prod-bluegreen-alb-123.eu-west-1.elb.amazonaws.com:8443"
    assert out["metrics"] == {
        "source": "cloudwatch",
        "region": "eu-west-1",
        "load_balancer": "app/prod-bluegreen-alb/0123456789abcdef",
        "target_groups": {
            "blue": "targetgroup/prod-bluegreen-blue-tg/0123456789abcdef",
            "green": "targetgroup/prod-bluegreen-green-tg/0123456789abcdef",
        },
        "listen_port": 80,
    }
    services = {s.inputs["tags"]["bluegreen:color"]: s for s in run.of_type(SERVICE)}
    assert services[live].inputs["desiredCount"] == 4
    assert services[idle].inputs["desiredCount"] == 1
    for color, service in services.items():
        (lb,) = service.inputs["loadBalancers"]
        assert lb["targetGroupArn"].endswith(f"-{color}-tg"), "each colour stays registered in its own target group"
        assert service.inputs["waitForSteadyState"] is True


def diff_runs(a: StackRun, b: StackRun) -> dict[tuple[str, str], set[str]]:
    """(type, name) -> the top-level input keys that differ between two runs."""
    before, after = a.by_name(), b.by_name()
    assert before.keys() == after.keys(), "a colour flip must neither add nor remove resources"
    changed = {}
    for key, old in before.items():
        new = after[key]
        keys = {k for k in old.inputs.keys() | new.inputs.keys() if old.inputs.get(k) != new.inputs.get(k)}
        if keys or old.protect != new.protect or old.parent != new.parent:
            changed[key] = keys
    return changed


def test_minimal_switch_changes_only_the_listeners() -> None:
    """During a release the pipeline holds the idle colour warm, so a flip touches routing alone."""
    blue = aws_stack(live_color="blue", warm_idle=True)
    green = aws_stack(live_color="green", warm_idle=True)
    changed = diff_runs(blue, green)
    assert changed == {
        (LISTENER, "prod-bluegreen-prod-listener"): {"defaultActions"},
        (LISTENER, "prod-bluegreen-preview-listener"): {"defaultActions"},
    }


def test_flip_outside_a_release_only_adds_desired_count_changes() -> None:
    """Without warm_idle the services rescale in place (desiredCount), nothing is replaced."""
    changed = diff_runs(aws_stack(live_color="blue"), aws_stack(live_color="green"))
    assert changed == {
        (LISTENER, "prod-bluegreen-prod-listener"): {"defaultActions"},
        (LISTENER, "prod-bluegreen-preview-listener"): {"defaultActions"},
        (SERVICE, "prod-bluegreen-blue-service"): {"desiredCount"},
        (SERVICE, "prod-bluegreen-green-service"): {"desiredCount"},
    }


@pytest.mark.parametrize("live", ["blue", "green"])
def test_a_bare_flip_scales_the_new_live_colour_before_the_route_moves(live: str) -> None:
    """Engine order: the live service (steady) -> the prod listener -> the idle service scales down."""
    idle = "green" if live == "blue" else "blue"
    run = aws_stack(live_color=live)
    prod = run.one(LISTENER, "prod-listener")
    preview = run.one(LISTENER, "preview-listener")
    services = {color: run.one(SERVICE, f"-{color}-service") for color in ("blue", "green")}
    assert services[live].inputs["waitForSteadyState"] is True
    assert services[live].urn in prod.dependencies
    assert prod.urn in services[idle].dependencies and prod.urn not in services[live].dependencies
    assert {preview.urn} <= set(services[live].dependencies) & set(services[idle].dependencies)
    assert services[idle].urn not in prod.dependencies


def test_gradual_switch_step_weights_and_keeps_both_colours_at_capacity() -> None:
    run = aws_stack(live_color="green", switch_steps=[10, 50, 100], live_traffic_percent=10)
    assert forward_weights(run.one(LISTENER, "prod-listener")) == {"green": 10, "blue": 90}
    assert forward_weights(run.one(LISTENER, "preview-listener")) == {"green": 0, "blue": 100}
    assert {s.inputs["desiredCount"] for s in run.of_type(SERVICE)} == {4}


def test_database_is_private_encrypted_protected_and_its_password_secret() -> None:
    run = aws_stack()
    db = run.one("aws:rds/instance:Instance")
    assert db.protect is True
    assert db.inputs["deletionProtection"] is True
    assert db.inputs["storageEncrypted"] is True
    assert db.inputs["publiclyAccessible"] is False
    assert db.inputs["skipFinalSnapshot"] is False and db.inputs["finalSnapshotIdentifier"]
    assert db.inputs["backupRetentionPeriod"] >= 1
    assert db.inputs["password"] == SECRET and "password" in db.secret_paths

    version = run.one("aws:secretsmanager/secretVersion:SecretVersion")
    assert version.inputs["secretString"] == SECRET
    subnet_group = run.one("aws:rds/subnetGroup:SubnetGroup")
    assert all("-private-" in s for s in subnet_group.inputs["subnetIds"])

    (db_ingress,) = [r for r in run.of_type(INGRESS) if r.inputs["securityGroupId"] == "prod-bluegreen-db-sg-id"]
    assert db_ingress.inputs["referencedSecurityGroupId"] == "prod-bluegreen-task-sg-id"
    assert db_ingress.inputs["fromPort"] == db_ingress.inputs["toPort"] == 5432
    assert "cidrIpv4" not in db_ingress.inputs

    assert "database_endpoint" in run.secret_outputs
    plain = json.dumps([r.inputs for r in run.resources])
    assert "mock-password-of" not in plain, "the generated password appears nowhere in plain text"


def test_tasks_get_the_password_from_secrets_manager_not_the_environment() -> None:
    run = aws_stack(blue_version="1.4.0", green_version="1.5.0")
    for task in run.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        (container,) = json.loads(task.inputs["containerDefinitions"])
        env = {e["name"]: e["value"] for e in container["environment"]}
        color = env["APP_COLOR"]
        assert container["image"] == f"ghcr.io/example/bluegreen-app:{env['APP_VERSION']}"
        assert env["APP_VERSION"] == {"blue": "1.4.0", "green": "1.5.0"}[color]
        assert "PGPASSWORD" not in env
        assert container["secrets"] == [
            {"name": "PGPASSWORD", "valueFrom": "arn:mock:aws:secretsmanager/secret:Secret:prod-bluegreen-db-password"}
        ]
        assert task.inputs["requiresCompatibilities"] == ["FARGATE"]


def test_security_groups_are_least_privilege() -> None:
    run = aws_stack(preview_cidrs=["198.51.100.0/24", "192.0.2.0/24"])
    rules = run.of_type(INGRESS)
    alb = [r.inputs for r in rules if r.inputs["securityGroupId"] == "prod-bluegreen-alb-sg-id"]
    world = [r for r in alb if r.get("cidrIpv4") == "0.0.0.0/0" or r.get("cidrIpv6") == "::/0"]
    assert {r["fromPort"] for r in world} == {80}, "only the prod port is open to the world"
    preview = [r for r in alb if r["fromPort"] == 8443]
    assert sorted(r["cidrIpv4"] for r in preview) == ["192.0.2.0/24", "198.51.100.0/24"]
    (tasks,) = [r.inputs for r in rules if r.inputs["securityGroupId"] == "prod-bluegreen-task-sg-id"]
    assert tasks["referencedSecurityGroupId"] == "prod-bluegreen-alb-sg-id" and tasks["fromPort"] == 8080
    egress = {r.name: r.inputs for r in run.of_type(EGRESS)}
    assert egress["prod-bluegreen-alb-to-tasks"]["referencedSecurityGroupId"] == "prod-bluegreen-task-sg-id"


def test_https_listener_and_redirect_when_a_certificate_is_configured() -> None:
    cert = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
    run = aws_stack(listen_port=443, aws={"certificate_arn": cert, "domain": "shop.example.com"})
    prod = run.one(LISTENER, "prod-listener")
    assert prod.inputs["protocol"] == "HTTPS" and prod.inputs["certificateArn"] == cert
    assert prod.inputs["sslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    redirect = run.one(LISTENER, "http-redirect")
    (action,) = redirect.inputs["defaultActions"]
    assert action["redirect"] == {"port": "443", "protocol": "HTTPS", "statusCode": "HTTP_301"}
    assert run.outputs["live_url"] == "https://shop.example.com", "the name the certificate covers"
    assert run.outputs["preview_url"] == "https://shop.example.com:8443"
    world_ports = {r.inputs["fromPort"] for r in run.of_type(INGRESS) if r.inputs.get("cidrIpv4") == "0.0.0.0/0"}
    assert world_ports == {80, 443}


def test_existing_vpc_is_used_instead_of_a_new_one() -> None:
    run = aws_stack(
        aws={
            "vpc_id": "vpc-0abc",
            "public_subnet_ids": ["subnet-p1", "subnet-p2"],
            "private_subnet_ids": ["subnet-q1", "subnet-q2"],
        }
    )
    assert not run.of_type("aws:ec2/vpc:Vpc") and not run.of_type("aws:ec2/natGateway:NatGateway")
    assert run.one("aws:lb/loadBalancer:LoadBalancer").inputs["subnets"] == ["subnet-p1", "subnet-p2"]
    assert run.one("aws:rds/subnetGroup:SubnetGroup").inputs["subnetIds"] == ["subnet-q1", "subnet-q2"]


def test_new_vpc_spans_two_zones_with_a_nat_each() -> None:
    run = aws_stack()
    subnets = run.of_type("aws:ec2/subnet:Subnet")
    assert sorted({s.inputs["availabilityZone"] for s in subnets}) == ["eu-west-1a", "eu-west-1b"]
    assert len(run.of_type("aws:ec2/natGateway:NatGateway")) == 2
    assert all(s.inputs.get("mapPublicIpOnLaunch") in (False, None) for s in subnets)


def test_alarms_per_colour_use_the_monitor_thresholds() -> None:
    run = aws_stack(monitor={"max_error_rate": 0.02, "max_p99_ms": 750, "window_s": 300, "interval_s": 15})
    alarms = {a.name: a.inputs for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert set(alarms) == {f"prod-bluegreen-{c}-{k}" for c in ("blue", "green") for k in ("5xx-rate", "p99-latency")}
    assert alarms["prod-bluegreen-green-5xx-rate"]["threshold"] == 0.02
    latency = alarms["prod-bluegreen-blue-p99-latency"]
    assert latency["threshold"] == 0.75 and latency["extendedStatistic"] == "p99"
    assert latency["dimensions"]["TargetGroup"] == "targetgroup/prod-bluegreen-blue-tg/0123456789abcdef"


def test_every_child_is_parented_to_the_component_and_named_after_it() -> None:
    run = aws_stack()
    (component,) = run.of_type("bluegreen:aws:BlueGreen")
    assert component.parent.endswith("pulumi:pulumi:Stack::bluegreen-prod")
    for resource in run.resources:
        if resource is not component:
            assert resource.parent == component.urn, resource.name
            assert resource.name.startswith("prod-bluegreen-"), resource.name


@pytest.mark.parametrize(("key", "value", "message"), INVALID_VALUES)
def test_bad_config_fails_before_any_resource(key: str, value: object, message: str) -> None:
    assert_refused_before_any_resource(with_invalid_value(PROD, key, value), "prod", REGION, message)


@pytest.mark.parametrize(
    ("aws_settings", "provider", "message"),
    [
        ({}, {}, "aws:region is not set"),
        ({"vpc_id": "net-1"}, REGION, "an existing VPC id"),
        ({"vpc_id": "vpc-1", "public_subnet_ids": ["subnet-1"]}, REGION, "at least two subnet ids"),
        ({"private_subnet_ids": ["subnet-1", "subnet-2"]}, REGION, "subnet ids need vpc_id"),
        ({"certificate_arn": "my-cert"}, REGION, "an ACM certificate ARN"),
        (
            {"certificate_arn": "arn:aws:acm:eu-west-1:123456789012:certificate/abc"},
            REGION,
            "bluegreen:aws.certificate_arn = 'arn:aws:acm:eu-west-1:123456789012:certificate/abc' needs "
            "bluegreen:aws.domain",
        ),
        ({"domain": "https://shop.example.com"}, REGION, "bluegreen:aws.domain"),
        ({"route53_zone_id": "Z0123456789ABCDEFGHIJ"}, REGION, "set domain too"),
        ({"domain": "shop.example.com", "route53_zone_id": "zone-1"}, REGION, "a Route 53 hosted zone id"),
        ({"vpc_cidr": "10.40.0.0/8"}, REGION, "bluegreen:aws.vpc_cidr = '10.40.0.0/8' is invalid"),
        ({"vpc_cidr": "10.40.0.1/16"}, REGION, "not a CIDR block"),
        ({"vpc_cidr": "8.8.0.0/16"}, REGION, "a private IPv4 block"),
        ({"vpc_cidr": "10.40.0.0/24"}, REGION, "of /16 to /22"),
        (
            {
                "vpc_id": "vpc-1",
                "public_subnet_ids": ["subnet-1", "subnet-2"],
                "private_subnet_ids": ["subnet-3", "subnet-4"],
                "vpc_cidr": "10.1.0.0/16",
            },
            REGION,
            "only for the VPC the stack creates",
        ),
        ({"task_cpu": 300}, REGION, "Fargate CPU units"),
        ({"deregistration_delay_s": -1}, REGION, "0-3600 seconds"),
        ({"vpcid": "vpc-1"}, REGION, "unknown field(s) ['vpcid']"),
    ],
)
def test_bad_aws_settings_fail_before_any_resource(
    aws_settings: dict[str, Any], provider: dict[str, str], message: str
) -> None:
    assert_refused_before_any_resource({**PROD, "aws": aws_settings}, "prod", provider, message)


def test_prod_stack_file_builds() -> None:
    """Pulumi.prod.yaml, as shipped, is a valid AWS stack with HTTPS."""
    import yaml
    from pulumi_harness import ROOT

    doc = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    bluegreen = {k.split(":", 1)[1]: v for k, v in doc.items() if k.startswith("bluegreen:")}
    provider = {k: v for k, v in doc.items() if k.startswith("aws:")}
    run = run_stack(bluegreen, stack="prod", provider_config=provider)
    assert run.one(LISTENER, "prod-listener").inputs["protocol"] == "HTTPS"
    assert run.one("aws:rds/instance:Instance").inputs["multiAz"] is True


def test_target_groups_check_the_configured_health_path() -> None:
    run = aws_stack(health_path="/livez", ready_path="/ready")
    groups = run.of_type("aws:lb/targetGroup:TargetGroup")
    assert len(groups) == 2 and {g.inputs["healthCheck"]["path"] for g in groups} == {"/livez"}
