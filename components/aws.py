"""AWS target: one ALB in front of an ECS Fargate service per colour, sharing one RDS PostgreSQL.

Routing is the only thing that depends on ``live_color``: the prod listener's forward
action weights the two target groups (live 100 / idle 0, or a gradual step) and the
preview route forwards to the idle one (the preview listener's default action, or, when
``preview_header`` is on, a listener rule that matches the secret header while the
listener itself answers 403). Both target groups stay attached and both services stay
registered and healthy, so a switch or a rollback is one routing update.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.config import COLORS, ConfigError, StackConfig, domain_name, invalid
from components.targets import (
    PREVIEW_HEADER,
    contract_outputs,
    preview_header_outputs,
    preview_token,
    refuse_private_preview_cidrs,
)

DEFAULT_DB_INSTANCE = "db.t4g.medium"
EPHEMERAL_DB_INSTANCE = "db.t4g.micro"
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
CONTAINER_NAME = "app"
DB_PORT = 5432
# Characters RDS accepts in a master password ('/', '@', '"' and space are refused).
DB_PASSWORD_SPECIALS = "!#$%&*()-_=+[]{}<>:?"
# What ALB, target group, ECS and RDS names all accept: letters, digits, single hyphens, a letter first.
AWS_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*")
MAX_SNAPSHOT_IDENTIFIER = 255
# A created VPC may be /16 (AWS's largest) to /22; it is cut into 16 or more equal blocks, of
# which 0 and 1 are the public subnets and 10 and 11 the private ones (a /16 keeps /24s).
VPC_PREFIXES = (16, 22)
AWS_RESERVED_PER_SUBNET = 5
ROUTE53_ZONE_ID = re.compile(r"Z[A-Z0-9]{1,31}")
# The preview listener's answer to a request without the secret header.
PREVIEW_REFUSAL = "the preview route needs its header (see the stack output preview_header_name)"


@dataclass(frozen=True)
class AwsSettings:
    """The ``bluegreen:aws`` object: what only AWS needs."""

    region: str
    vpc_id: str | None = None
    public_subnet_ids: tuple[str, ...] = ()
    private_subnet_ids: tuple[str, ...] = ()
    vpc_cidr: str = "10.40.0.0/16"
    # The name users reach the stack by; the certificate must cover it. Without it, the
    # URLs use the load balancer's own DNS name (plain HTTP: no certificate names it).
    domain: str | None = None
    # A Route 53 hosted zone of ``domain``: the stack then keeps an alias record on the ALB.
    route53_zone_id: str | None = None
    certificate_arn: str | None = None
    deregistration_delay_s: int = 30
    task_cpu: int = 256
    task_memory: int = 512
    health_check_grace_s: int = 30
    log_retention_days: int = 30

    FIELDS = (
        "vpc_id",
        "public_subnet_ids",
        "private_subnet_ids",
        "vpc_cidr",
        "domain",
        "route53_zone_id",
        "certificate_arn",
        "deregistration_delay_s",
        "task_cpu",
        "task_memory",
        "health_check_grace_s",
        "log_retention_days",
    )

    @classmethod
    def parse(cls, config: StackConfig, region: str | None) -> AwsSettings:
        """Validate ``bluegreen:aws`` and ``aws:region`` before any resource exists."""
        fields = cls.fields_of(config)
        if not region:
            raise ConfigError("aws:region is not set: run `pulumi config set aws:region <region>` (e.g. eu-west-1)")
        return cls(region=region, **fields)

    @classmethod
    def fields_of(cls, config: StackConfig) -> dict[str, Any]:
        """Everything in ``bluegreen:aws``, validated (no provider config needed)."""
        raw = dict(config.cloud_settings)

        def fail(key: str, value: Any, allowed: str) -> ConfigError:
            return invalid(f"bluegreen:aws.{key}", value, allowed)

        unknown = sorted(set(raw) - set(cls.FIELDS))
        if unknown:
            raise ConfigError(f"bluegreen:aws has unknown field(s) {unknown}; allowed: {', '.join(cls.FIELDS)}")
        vpc_id = raw.get("vpc_id")
        public = tuple(raw.get("public_subnet_ids") or ())
        private = tuple(raw.get("private_subnet_ids") or ())
        if vpc_id is not None:
            if not str(vpc_id).startswith("vpc-"):
                raise fail("vpc_id", vpc_id, "an existing VPC id (vpc-...)")
            for key, ids in (("public_subnet_ids", public), ("private_subnet_ids", private)):
                if len(ids) < 2 or not all(str(i).startswith("subnet-") for i in ids):
                    raise fail(key, list(ids), "with vpc_id, at least two subnet ids (subnet-...) in different AZs")
            if "vpc_cidr" in raw:
                raise fail("vpc_cidr", raw["vpc_cidr"], "only for the VPC the stack creates; remove it with vpc_id")
        elif public or private:
            raise fail("public_subnet_ids", list(public or private), "subnet ids need vpc_id too")
        vpc_cidr = str(raw.get("vpc_cidr", cls.vpc_cidr))
        if vpc_id is None:
            _check_vpc_cidr(vpc_cidr, config.capacity, fail)

        certificate_arn = raw.get("certificate_arn")
        if certificate_arn is not None and not str(certificate_arn).startswith("arn:aws:acm:"):
            raise fail("certificate_arn", certificate_arn, "an ACM certificate ARN (arn:aws:acm:...)")
        domain = raw.get("domain") or None
        if domain is not None:
            domain = domain_name("bluegreen:aws.domain", domain)
        if certificate_arn is not None and domain is None:
            raise ConfigError(
                f"bluegreen:aws.certificate_arn = {certificate_arn!r} needs bluegreen:aws.domain: the certificate "
                "names your domain, not the load balancer's DNS name, so HTTPS to the ALB's name can never pass "
                "TLS verification (smoke checks and the switch's verification would fail); set "
                "bluegreen:aws.domain to the name the certificate covers (and point it at the ALB, or give "
                "bluegreen:aws.route53_zone_id), or remove certificate_arn for plain HTTP on the ALB's name"
            )
        zone_id = raw.get("route53_zone_id") or None
        if zone_id is not None:
            if not isinstance(zone_id, str) or not ROUTE53_ZONE_ID.fullmatch(zone_id):
                raise fail("route53_zone_id", zone_id, "a Route 53 hosted zone id such as Z0123456789ABCDEFGHIJ")
            if domain is None:
                raise fail("route53_zone_id", zone_id, "names the zone of bluegreen:aws.domain; set domain too")

        def integer(key: str, lo: int, hi: int, allowed: str) -> int:
            value = raw.get(key, getattr(cls, key))
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise fail(key, value, allowed)
            return value

        cpu = integer("task_cpu", 256, 16384, "Fargate CPU units: 256, 512, 1024, 2048, 4096, 8192 or 16384")
        if cpu not in (256, 512, 1024, 2048, 4096, 8192, 16384):
            raise fail("task_cpu", cpu, "Fargate CPU units: 256, 512, 1024, 2048, 4096, 8192 or 16384")
        return {
            "vpc_id": vpc_id,
            "public_subnet_ids": public,
            "private_subnet_ids": private,
            "vpc_cidr": str(ipaddress.ip_network(vpc_cidr)) if vpc_id is None else vpc_cidr,
            "domain": domain,
            "route53_zone_id": zone_id,
            "certificate_arn": certificate_arn,
            "deregistration_delay_s": integer("deregistration_delay_s", 0, 3600, "0-3600 seconds"),
            "task_cpu": cpu,
            "task_memory": integer("task_memory", 512, 122880, "Fargate memory in MiB, 512-122880"),
            "health_check_grace_s": integer("health_check_grace_s", 0, 2147483647, "seconds >= 0"),
            "log_retention_days": integer("log_retention_days", 1, 3653, "1-3653 days"),
        }

    def subnet_cidrs(self) -> tuple[list[str], list[str]]:
        """Public and private subnets (one of each per AZ), cut from ``vpc_cidr``."""
        return _subnet_blocks(ipaddress.ip_network(self.vpc_cidr))


def _subnet_blocks(vpc: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[list[str], list[str]]:
    blocks = list(vpc.subnets(new_prefix=max(24, vpc.prefixlen + 4)))
    return [str(blocks[0]), str(blocks[1])], [str(blocks[10]), str(blocks[11])]


def _check_vpc_cidr(value: str, capacity: int, fail: Callable[[str, Any, str], ConfigError]) -> None:
    """A private IPv4 block AWS accepts, whose private subnets hold both colours mid-deployment."""
    lo, hi = VPC_PREFIXES
    allowed = f"a private IPv4 block (10/8, 172.16/12 or 192.168/16) of /{lo} to /{hi}, e.g. 10.40.0.0/16"
    try:
        vpc = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise fail("vpc_cidr", value, f"not a CIDR block ({exc}); {allowed}") from None
    rfc1918 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
    if vpc.version != 4 or not lo <= vpc.prefixlen <= hi or not any(vpc.subnet_of(n) for n in rfc1918):  # type: ignore[arg-type]
        raise fail("vpc_cidr", value, allowed)
    # Worst case: both colours mid-deployment at 200% of capacity, spread over the two private subnets.
    _, private = _subnet_blocks(vpc)
    room = sum(ipaddress.ip_network(c).num_addresses - AWS_RESERVED_PER_SUBNET for c in private) - 2
    if 4 * capacity > room:
        raise fail(
            "vpc_cidr",
            value,
            f"its private subnets ({', '.join(private)}) hold {room} task addresses, fewer than the "
            f"{4 * capacity} that bluegreen:capacity {capacity} needs (two colours, each at 200% while it "
            "deploys); give a larger vpc_cidr or an existing VPC",
        )


def aws_name(name: str) -> str:
    """``name`` if every AWS name built from it is valid, else a stable form that is.

    Stack names may hold '_' and '.', which ALB, target group, ECS cluster and RDS names
    (and the final snapshot identifier) refuse; a short hash of the original keeps two
    cleaned names apart.
    """
    if AWS_NAME.fullmatch(name):
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    cleaned = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not cleaned[:1].isalpha():
        cleaned = f"bg-{cleaned}".rstrip("-")
    return f"{cleaned}-{digest}"


def snapshot_identifier(text: str) -> str:
    """An RDS snapshot identifier: letters, digits, single hyphens, a letter first, at most 255."""
    cleaned = re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9-]+", "-", text)).strip("-")
    if not cleaned[:1].isalpha():
        cleaned = f"bg-{cleaned}"
    return cleaned[:MAX_SNAPSHOT_IDENTIFIER].rstrip("-")


@dataclass
class AwsBlueGreenArgs:
    """Everything the component needs: the validated stack config and the AWS settings."""

    config: StackConfig
    settings: AwsSettings


class AwsBlueGreen(pulumi.ComponentResource):
    """Blue and green ECS services behind one ALB, with one shared RDS PostgreSQL."""

    outputs: dict[str, Any]

    def __init__(self, name: str, args: AwsBlueGreenArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("bluegreen:aws:BlueGreen", name, None, opts)
        self.name = name
        self.config = args.config
        self.settings = args.settings
        self.child = pulumi.ResourceOptions(parent=self)
        self.task_definitions: dict[str, aws.ecs.TaskDefinition] = {}

        vpc_id, public_subnets, private_subnets = self._network()
        # The preview route's secret header (``preview_header``); None: the allow-list alone guards it.
        self.preview_token = preview_token(name, self) if self.config.preview_header else None
        alb_sg, task_sg, db_sg = self._security_groups(vpc_id)
        self.db_secret, self.database = self._database(private_subnets, db_sg)
        execution_role, task_role = self._roles()
        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
            opts=self.child,
        )
        self.target_groups = {color: self._target_group(color, vpc_id) for color in COLORS}
        self.load_balancer = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=False,
            security_groups=[alb_sg.id],
            subnets=public_subnets,
            drop_invalid_header_fields=True,
            opts=self.child,
        )
        # A bare flip (live_color alone, warm_idle false) must never route production to a
        # colour below capacity, so the order is: the colour that is live scales up and is
        # steady, then the prod listener moves, then the other colour scales down. The
        # preview route forwards to both target groups, which attaches them to the ALB.
        self.preview_listener, self.preview_rule, extra_listeners = self._preview_listeners()
        attached = [self.preview_listener, *([self.preview_rule] if self.preview_rule else []), *extra_listeners]
        live, idle = self.config.live_color, self.config.idle_color

        def service(color: str, after: list[pulumi.Resource]) -> aws.ecs.Service:
            return self._service(color, private_subnets, task_sg, execution_role, task_role, after)

        self.services = {live: service(live, after=attached)}
        self.prod_listener = self._prod_listener(after=[self.services[live]])
        self.services[idle] = service(idle, after=[*attached, self.prod_listener])
        self.alarms = {color: self._alarms(color) for color in COLORS}
        self.dns_record = self._dns_record()

        # The certificate names the domain, so HTTPS URLs use it; without one, plain HTTP on
        # the domain (if the user points it here) or on the ALB's own name.
        s = self.settings
        scheme = "https" if s.certificate_arn else "http"
        host: pulumi.Input[str] = s.domain or self.load_balancer.dns_name
        self.outputs = contract_outputs(
            self.config,
            live_url=_url(scheme, host, self.config.listen_port),
            preview_url=_url(scheme, host, self.config.preview_port),
            metrics={
                "source": "cloudwatch",
                "region": self.settings.region,
                "load_balancer": self.load_balancer.arn_suffix,
                "target_groups": {color: tg.arn_suffix for color, tg in self.target_groups.items()},
                "listen_port": self.config.listen_port,  # the prod listener, read back to verify a switch
            },
        )
        self.outputs["load_balancer_host"] = self.load_balancer.dns_name
        self.outputs.update(preview_header_outputs(self.preview_token))
        # What ECS runs per colour once the update is done (see _rolled_out).
        self.outputs["task_definitions"] = {color: self._rolled_out(color) for color in COLORS}
        self.outputs["database_endpoint"] = pulumi.Output.secret(self.database.address)
        self.register_outputs(self.outputs)

    # -- network -----------------------------------------------------------------

    def _network(self) -> tuple[pulumi.Input[str], list[pulumi.Input[str]], list[pulumi.Input[str]]]:
        """An existing VPC from settings, or a new one with public/private subnets in two AZs."""
        s = self.settings
        if s.vpc_id:
            return s.vpc_id, list(s.public_subnet_ids), list(s.private_subnet_ids)
        name = self.name
        zones = aws.get_availability_zones(state="available").names[:2]
        vpc = aws.ec2.Vpc(
            f"{name}-vpc", cidr_block=s.vpc_cidr, enable_dns_hostnames=True, enable_dns_support=True, opts=self.child
        )
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=self.child)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            opts=self.child,
        )
        public_cidrs, private_cidrs = s.subnet_cidrs()
        public, private = [], []
        for index, zone in enumerate(zones):
            public_subnet = aws.ec2.Subnet(
                f"{name}-public-{index}",
                vpc_id=vpc.id,
                availability_zone=zone,
                cidr_block=public_cidrs[index],
                map_public_ip_on_launch=False,
                opts=self.child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{index}-rta", subnet_id=public_subnet.id, route_table_id=public_rt.id, opts=self.child
            )
            # One NAT per AZ: losing an AZ must not cut the other AZ's tasks off from ECR/Secrets Manager.
            # AWS creates neither an EIP for a NAT nor the NAT itself in a VPC without an attached
            # internet gateway, and nothing in their inputs names it: the dependency is explicit.
            after_igw = pulumi.ResourceOptions(parent=self, depends_on=[igw])
            eip = aws.ec2.Eip(f"{name}-nat-{index}-eip", domain="vpc", opts=after_igw)
            nat = aws.ec2.NatGateway(
                f"{name}-nat-{index}", subnet_id=public_subnet.id, allocation_id=eip.id, opts=after_igw
            )
            private_subnet = aws.ec2.Subnet(
                f"{name}-private-{index}",
                vpc_id=vpc.id,
                availability_zone=zone,
                cidr_block=private_cidrs[index],
                opts=self.child,
            )
            private_rt = aws.ec2.RouteTable(
                f"{name}-private-{index}-rt",
                vpc_id=vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
                opts=self.child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{index}-rta",
                subnet_id=private_subnet.id,
                route_table_id=private_rt.id,
                opts=self.child,
            )
            public.append(public_subnet.id)
            private.append(private_subnet.id)
        return vpc.id, public, private

    def _security_groups(
        self, vpc_id: pulumi.Input[str]
    ) -> tuple[aws.ec2.SecurityGroup, aws.ec2.SecurityGroup, aws.ec2.SecurityGroup]:
        """Least privilege: world → ALB prod ports, preview_cidrs → preview, ALB → tasks, tasks → DB.

        With no ``preview_cidrs`` the preview port takes any address, and the secret header
        (a listener rule) is what lets a request through (config refuses that without the header).
        """
        cfg, name = self.config, self.name
        alb = aws.ec2.SecurityGroup(f"{name}-alb-sg", vpc_id=vpc_id, description="bluegreen ALB", opts=self.child)
        tasks = aws.ec2.SecurityGroup(f"{name}-task-sg", vpc_id=vpc_id, description="bluegreen tasks", opts=self.child)
        db = aws.ec2.SecurityGroup(f"{name}-db-sg", vpc_id=vpc_id, description="bluegreen database", opts=self.child)

        def ingress(rule: str, sg: aws.ec2.SecurityGroup, port: int, description: str, **source: Any) -> None:
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-{rule}",
                security_group_id=sg.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=description,
                opts=self.child,
                **source,
            )

        prod_ports = [cfg.listen_port] + ([80] if self.settings.certificate_arn and cfg.listen_port != 80 else [])
        for port in prod_ports:
            ingress(f"alb-prod-{port}-v4", alb, port, "production traffic", cidr_ipv4="0.0.0.0/0")
        for index, cidr in enumerate(cfg.preview_cidrs):
            family = {"cidr_ipv6": cidr} if ":" in cidr else {"cidr_ipv4": cidr}
            ingress(f"alb-preview-{index}", alb, cfg.preview_port, "preview of the idle colour", **family)
        if not cfg.preview_cidrs:
            ingress(
                "alb-preview-any-v4",
                alb,
                cfg.preview_port,
                f"preview of the idle colour: any address, only with the {PREVIEW_HEADER} header",
                cidr_ipv4="0.0.0.0/0",
            )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-alb-to-tasks",
            security_group_id=alb.id,
            ip_protocol="tcp",
            from_port=cfg.app_port,
            to_port=cfg.app_port,
            referenced_security_group_id=tasks.id,
            description="ALB to tasks",
            opts=self.child,
        )
        ingress("tasks-from-alb", tasks, cfg.app_port, "from the ALB only", referenced_security_group_id=alb.id)
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-tasks-egress",
            security_group_id=tasks.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4="0.0.0.0/0",
            description="image pulls, Secrets Manager, CloudWatch Logs",
            opts=self.child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-tasks-to-db",
            security_group_id=tasks.id,
            ip_protocol="tcp",
            from_port=DB_PORT,
            to_port=DB_PORT,
            referenced_security_group_id=db.id,
            description="tasks to the shared database",
            opts=self.child,
        )
        ingress("db-from-tasks", db, DB_PORT, "from the tasks only", referenced_security_group_id=tasks.id)
        return alb, tasks, db

    # -- database ----------------------------------------------------------------

    def _database(
        self, private_subnets: list[pulumi.Input[str]], db_sg: aws.ec2.SecurityGroup
    ) -> tuple[aws.secretsmanager.Secret, aws.rds.Instance]:
        """The shared PostgreSQL: private, encrypted, protected twice, password never in plain text.

        Only an ephemeral database (a review stack's) drops the protections, so that
        its stack can be destroyed when the pull request closes.
        """
        db, name = self.config.db, self.name
        keep = not db.ephemeral
        password = random.RandomPassword(
            f"{name}-db-password", length=32, special=True, override_special=DB_PASSWORD_SPECIALS, opts=self.child
        )
        secret = aws.secretsmanager.Secret(
            f"{name}-db-password",
            description="bluegreen shared database password",
            recovery_window_in_days=7 if keep else 0,
            opts=self.child,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-db-password", secret_id=secret.id, secret_string=password.result, opts=self.child
        )
        subnet_group = aws.rds.SubnetGroup(f"{name}-db-subnets", subnet_ids=private_subnets, opts=self.child)
        instance = aws.rds.Instance(
            f"{name}-db",
            engine="postgres",
            engine_version=db.engine_version,
            instance_class=db.instance or (DEFAULT_DB_INSTANCE if keep else EPHEMERAL_DB_INSTANCE),
            allocated_storage=db.storage_gb,
            max_allocated_storage=db.storage_gb * 4,
            storage_type="gp3",
            db_name=db.name,
            username=db.username,
            password=password.result,
            port=DB_PORT,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[db_sg.id],
            publicly_accessible=False,
            storage_encrypted=True,
            deletion_protection=keep,
            skip_final_snapshot=not keep,
            final_snapshot_identifier=snapshot_identifier(f"{name}-db-final") if keep else None,
            copy_tags_to_snapshot=True,
            backup_retention_period=db.backup_retention_days,
            multi_az=db.multi_az,
            auto_minor_version_upgrade=True,
            apply_immediately=False,
            tags={"bluegreen:ephemeral": str(db.ephemeral).lower()},
            opts=pulumi.ResourceOptions(parent=self, protect=keep),
        )
        return secret, instance

    # -- compute ---------------------------------------------------------------------

    def _roles(self) -> tuple[aws.iam.Role, aws.iam.Role]:
        """The execution role pulls the image and reads only the DB password; the task role is the app's."""
        name = self.name
        assume = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        )
        execution = aws.iam.Role(f"{name}-execution-role", assume_role_policy=assume, opts=self.child)
        aws.iam.RolePolicyAttachment(
            f"{name}-execution-policy",
            role=execution.name,
            policy_arn="arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
            opts=self.child,
        )
        aws.iam.RolePolicy(
            f"{name}-read-db-password",
            role=execution.id,
            policy=self.db_secret.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": arn}],
                    }
                )
            ),
            opts=self.child,
        )
        task = aws.iam.Role(f"{name}-task-role", assume_role_policy=assume, opts=self.child)
        return execution, task

    def _target_group(self, color: str, vpc_id: pulumi.Input[str]) -> aws.lb.TargetGroup:
        cfg = self.config
        return aws.lb.TargetGroup(
            f"{self.name}-{color}-tg",
            port=cfg.app_port,
            protocol="HTTP",
            target_type="ip",
            vpc_id=vpc_id,
            deregistration_delay=self.settings.deregistration_delay_s,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                path=cfg.health_path,
                matcher="200",
                interval=10,
                timeout=5,
                healthy_threshold=2,
                unhealthy_threshold=3,
            ),
            tags={"bluegreen:color": color},
            opts=self.child,
        )

    def _service(
        self,
        color: str,
        subnets: list[pulumi.Input[str]],
        task_sg: aws.ec2.SecurityGroup,
        execution_role: aws.iam.Role,
        task_role: aws.iam.Role,
        after: list[pulumi.Resource],
    ) -> aws.ecs.Service:
        """One colour: its log group, task definition and Fargate service; nothing here reads live_color."""
        cfg, s, name = self.config, self.settings, self.name
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-{color}-logs", retention_in_days=s.log_retention_days, opts=self.child
        )
        container = pulumi.Output.all(
            log_group=log_group.name, db_host=self.database.address, secret_arn=self.db_secret.arn
        ).apply(
            lambda o: json.dumps(
                [
                    {
                        "name": CONTAINER_NAME,
                        "image": f"{cfg.image}:{cfg.version_of(color)}",
                        "essential": True,
                        "portMappings": [{"containerPort": cfg.app_port, "protocol": "tcp"}],
                        "environment": [
                            {"name": "APP_VERSION", "value": cfg.version_of(color)},
                            {"name": "APP_COLOR", "value": color},
                            {"name": "PORT", "value": str(cfg.app_port)},
                            {"name": "PGHOST", "value": o["db_host"]},
                            {"name": "PGPORT", "value": str(DB_PORT)},
                            {"name": "PGDATABASE", "value": cfg.db.name},
                            {"name": "PGUSER", "value": cfg.db.username},
                            {"name": "PGSSLMODE", "value": "require"},
                        ],
                        "secrets": [{"name": "PGPASSWORD", "valueFrom": o["secret_arn"]}],
                        "logConfiguration": {
                            "logDriver": "awslogs",
                            "options": {
                                "awslogs-group": o["log_group"],
                                "awslogs-region": s.region,
                                "awslogs-stream-prefix": color,
                            },
                        },
                    }
                ]
            )
        )
        task_definition = self.task_definitions[color] = aws.ecs.TaskDefinition(
            f"{name}-{color}-task",
            family=f"{name}-{color}",
            cpu=str(s.task_cpu),
            memory=str(s.task_memory),
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            execution_role_arn=execution_role.arn,
            task_role_arn=task_role.arn,
            container_definitions=container,
            opts=self.child,
        )
        return aws.ecs.Service(
            f"{name}-{color}-service",
            cluster=self.cluster.arn,
            task_definition=task_definition.arn,
            desired_count=cfg.desired_capacity(color),
            launch_type="FARGATE",
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=subnets, security_groups=[task_sg.id], assign_public_ip=False
            ),
            load_balancers=[
                aws.ecs.ServiceLoadBalancerArgs(
                    target_group_arn=self.target_groups[color].arn,
                    container_name=CONTAINER_NAME,
                    container_port=cfg.app_port,
                )
            ],
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            health_check_grace_period_seconds=s.health_check_grace_s,
            propagate_tags="SERVICE",
            wait_for_steady_state=True,
            tags={"bluegreen:color": color},
            # ``after``: the target group attached to the ALB (through a listener) before ECS
            # can use it, and for the colour that is not live, the prod listener (see __init__).
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )

    # -- routing ---------------------------------------------------------------------

    def _forward(self, weights: dict[str, int]) -> aws.lb.ListenerDefaultActionArgs:
        return aws.lb.ListenerDefaultActionArgs(
            type="forward",
            forward=aws.lb.ListenerDefaultActionForwardArgs(
                target_groups=[
                    aws.lb.ListenerDefaultActionForwardTargetGroupArgs(arn=self.target_groups[c].arn, weight=weights[c])
                    for c in COLORS
                ]
            ),
        )

    def _tls(self) -> dict[str, Any]:
        s = self.settings
        if s.certificate_arn:
            return {"protocol": "HTTPS", "certificate_arn": s.certificate_arn, "ssl_policy": TLS_POLICY}
        return {"protocol": "HTTP"}

    def _prod_listener(self, after: list[pulumi.Resource]) -> aws.lb.Listener:
        """Production's route, the switch: one of the only resources whose inputs depend on ``live_color``."""
        cfg = self.config
        return aws.lb.Listener(
            f"{self.name}-prod-listener",
            load_balancer_arn=self.load_balancer.arn,
            port=cfg.listen_port,
            default_actions=[self._forward({c: cfg.traffic_percent(c) for c in COLORS})],
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
            **self._tls(),
        )

    def _preview_listeners(self) -> tuple[aws.lb.Listener, aws.lb.ListenerRule | None, list[aws.lb.Listener]]:
        """The preview route (the idle colour), its header rule if any, and, with TLS, the port-80 redirect.

        With ``preview_header`` the listener itself answers 403 and only a rule that matches
        the secret header forwards, so the route holds even with the port open to any address.
        """
        cfg, s, name = self.config, self.settings, self.name
        to_idle = {c: 100 if c == cfg.idle_color else 0 for c in COLORS}
        if self.preview_token is None:
            default = self._forward(to_idle)
        else:
            default = aws.lb.ListenerDefaultActionArgs(
                type="fixed-response",
                fixed_response=aws.lb.ListenerDefaultActionFixedResponseArgs(
                    content_type="text/plain", message_body=PREVIEW_REFUSAL, status_code="403"
                ),
            )
        preview = aws.lb.Listener(
            f"{name}-preview-listener",
            load_balancer_arn=self.load_balancer.arn,
            port=cfg.preview_port,
            default_actions=[default],
            opts=self.child,
            **self._tls(),
        )
        rule = None
        if self.preview_token is not None:
            rule = aws.lb.ListenerRule(
                f"{name}-preview-rule",
                listener_arn=preview.arn,
                priority=1,
                conditions=[
                    aws.lb.ListenerRuleConditionArgs(
                        http_header=aws.lb.ListenerRuleConditionHttpHeaderArgs(
                            http_header_name=PREVIEW_HEADER, values=[self.preview_token]
                        )
                    )
                ],
                actions=[
                    aws.lb.ListenerRuleActionArgs(
                        type="forward",
                        forward=aws.lb.ListenerRuleActionForwardArgs(
                            target_groups=[
                                aws.lb.ListenerRuleActionForwardTargetGroupArgs(
                                    arn=self.target_groups[c].arn, weight=to_idle[c]
                                )
                                for c in COLORS
                            ]
                        ),
                    )
                ],
                opts=self.child,
            )
        extra = []
        if s.certificate_arn and cfg.listen_port != 80:
            extra.append(
                aws.lb.Listener(
                    f"{name}-http-redirect",
                    load_balancer_arn=self.load_balancer.arn,
                    port=80,
                    protocol="HTTP",
                    default_actions=[
                        aws.lb.ListenerDefaultActionArgs(
                            type="redirect",
                            redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                                port=str(cfg.listen_port), protocol="HTTPS", status_code="HTTP_301"
                            ),
                        )
                    ],
                    opts=self.child,
                )
            )
        return preview, rule, extra

    def _dns_record(self) -> aws.route53.Record | None:
        """With ``route53_zone_id``: ``domain`` as an alias of the ALB (no TTL to wait out on a change)."""
        s = self.settings
        if not (s.domain and s.route53_zone_id):
            return None
        return aws.route53.Record(
            f"{self.name}-dns",
            zone_id=s.route53_zone_id,
            name=s.domain,
            type="A",
            aliases=[
                aws.route53.RecordAliasArgs(
                    name=self.load_balancer.dns_name, zone_id=self.load_balancer.zone_id, evaluate_target_health=True
                )
            ],
            opts=self.child,
        )

    # -- what ECS runs ---------------------------------------------------------------

    def _rolled_out(self, color: str) -> pulumi.Output[str]:
        """The task definition ``color`` runs after ``pulumi up``; the update fails if it is not the new one.

        ``wait_for_steady_state`` also returns when the deployment circuit breaker rolled a
        failed deployment back (the service is steady again, on the old task definition), and
        the state would then record a task definition that is not running
        (hashicorp/terraform-provider-aws#19519). So the service is read back after its
        update and its PRIMARY deployment compared with what was asked for. A preview skips it.
        """
        wanted = self.task_definitions[color].arn
        if pulumi.runtime.is_dry_run():
            return wanted
        described = aws.ecs.get_service_output(
            cluster_arn=self.cluster.arn,
            service_name=self.services[color].name,
            opts=pulumi.InvokeOutputOptions(parent=self, depends_on=[self.services[color]]),
        )
        return pulumi.Output.all(described, wanted).apply(lambda got: _check_rollout(self.config, color, *got))

    # -- alarms ------------------------------------------------------------------------

    def _alarms(self, color: str) -> list[aws.cloudwatch.MetricAlarm]:
        """5xx rate and p99 latency per colour, with the monitor's thresholds."""
        monitor, name = self.config.monitor, self.name
        dimensions = {
            "LoadBalancer": self.load_balancer.arn_suffix,
            "TargetGroup": self.target_groups[color].arn_suffix,
        }
        period = max(60, math.ceil(monitor.interval_s / 60) * 60)
        periods = max(1, monitor.window_s // period)

        def metric(metric_id: str, metric_name: str) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
            return aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=metric_id,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace="AWS/ApplicationELB",
                    metric_name=metric_name,
                    dimensions=dimensions,
                    period=period,
                    stat="Sum",
                ),
            )

        error_rate = aws.cloudwatch.MetricAlarm(
            f"{name}-{color}-5xx-rate",
            alarm_description=f"{color}: 5xx responses / requests above bluegreen:monitor.max_error_rate",
            comparison_operator="GreaterThanThreshold",
            evaluation_periods=periods,
            threshold=monitor.max_error_rate,
            treat_missing_data="notBreaching",
            metric_queries=[
                metric("errors", "HTTPCode_Target_5XX_Count"),
                metric("requests", "RequestCount"),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="rate", expression="IF(requests > 0, errors / requests, 0)", label="5xx rate", return_data=True
                ),
            ],
            opts=self.child,
        )
        latency = aws.cloudwatch.MetricAlarm(
            f"{name}-{color}-p99-latency",
            alarm_description=f"{color}: p99 target response time above bluegreen:monitor.max_p99_ms",
            namespace="AWS/ApplicationELB",
            metric_name="TargetResponseTime",
            dimensions=dimensions,
            extended_statistic="p99",
            period=period,
            evaluation_periods=periods,
            threshold=monitor.max_p99_ms / 1000.0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            opts=self.child,
        )
        return [error_rate, latency]


def _url(scheme: str, host: pulumi.Input[str], port: int) -> pulumi.Output[str]:
    default = 443 if scheme == "https" else 80
    suffix = "" if port == default else f":{port}"
    return pulumi.Output.concat(scheme, "://", host, suffix)


class RolloutFailedError(RuntimeError):
    """ECS runs another task definition than the update asked for (a circuit-breaker rollback)."""


def _check_rollout(config: StackConfig, color: str, service: Any, wanted: str) -> str:
    """``wanted`` when the service's PRIMARY deployment runs it; RolloutFailedError otherwise."""
    primary = [d for d in (getattr(service, "deployments", None) or []) if getattr(d, "status", None) == "PRIMARY"]
    running = primary[0].task_definition if primary else getattr(service, "task_definition", None)
    if running and running != wanted:
        raise RolloutFailedError(
            f"{color} ({config.version_of(color)}) did not roll out: ECS's deployment circuit breaker rolled the "
            f"service back, so it runs {running}, not {wanted}; the new tasks never became healthy (see the "
            f"service's events and the stopped tasks' reasons). Set bluegreen:{color}_version back or fix the "
            "release, then `pulumi up` again (`bluegreen deploy` restores the previous config by itself)"
        )
    return wanted


def validate(config: StackConfig) -> None:
    """The ``bluegreen:aws`` checks the program makes, for the pipeline to make first (no provider config)."""
    AwsSettings.fields_of(config)
    refuse_private_preview_cidrs(config, "an internet-facing ALB")


def build(name: str, config: StackConfig) -> AwsBlueGreen:
    """Validate the AWS settings first, so a bad value registers nothing."""
    settings = AwsSettings.parse(config, pulumi.Config("aws").get("region"))
    refuse_private_preview_cidrs(config, "an internet-facing ALB")
    return AwsBlueGreen(aws_name(name), AwsBlueGreenArgs(config=config, settings=settings))
