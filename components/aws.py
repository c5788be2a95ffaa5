"""AWS target: one ALB in front of an ECS Fargate service per colour, sharing one RDS PostgreSQL.

Routing is the only thing that depends on ``live_color``: the prod listener's forward
action weights the two target groups (live 100 / idle 0, or a gradual step) and the
preview listener forwards to the idle one. Both target groups stay attached and both
services stay registered and healthy, so a switch or a rollback is one listener update.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.config import COLORS, ConfigError, StackConfig, invalid
from components.targets import contract_outputs

DEFAULT_DB_INSTANCE = "db.t4g.medium"
EPHEMERAL_DB_INSTANCE = "db.t4g.micro"
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
CONTAINER_NAME = "app"
DB_PORT = 5432
# Characters RDS accepts in a master password ('/', '@', '"' and space are refused).
DB_PASSWORD_SPECIALS = "!#$%&*()-_=+[]{}<>:?"


@dataclass(frozen=True)
class AwsSettings:
    """The ``bluegreen:aws`` object: what only AWS needs."""

    region: str
    vpc_id: str | None = None
    public_subnet_ids: tuple[str, ...] = ()
    private_subnet_ids: tuple[str, ...] = ()
    vpc_cidr: str = "10.40.0.0/16"
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
        raw = dict(config.cloud_settings)

        def fail(key: str, value: Any, allowed: str) -> ConfigError:
            return invalid(f"bluegreen:aws.{key}", value, allowed)

        unknown = sorted(set(raw) - set(cls.FIELDS))
        if unknown:
            raise ConfigError(f"bluegreen:aws has unknown field(s) {unknown}; allowed: {', '.join(cls.FIELDS)}")
        if not region:
            raise ConfigError("aws:region is not set: run `pulumi config set aws:region <region>` (e.g. eu-west-1)")
        vpc_id = raw.get("vpc_id")
        public = tuple(raw.get("public_subnet_ids") or ())
        private = tuple(raw.get("private_subnet_ids") or ())
        if vpc_id is not None:
            if not str(vpc_id).startswith("vpc-"):
                raise fail("vpc_id", vpc_id, "an existing VPC id (vpc-...)")
            for key, ids in (("public_subnet_ids", public), ("private_subnet_ids", private)):
                if len(ids) < 2 or not all(str(i).startswith("subnet-") for i in ids):
                    raise fail(key, list(ids), "with vpc_id, at least two subnet ids (subnet-...) in different AZs")
        elif public or private:
            raise fail("public_subnet_ids", list(public or private), "subnet ids need vpc_id too")
        certificate_arn = raw.get("certificate_arn")
        if certificate_arn is not None and not str(certificate_arn).startswith("arn:aws:acm:"):
            raise fail("certificate_arn", certificate_arn, "an ACM certificate ARN (arn:aws:acm:...)")

        def integer(key: str, lo: int, hi: int, allowed: str) -> int:
            value = raw.get(key, getattr(cls, key))
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise fail(key, value, allowed)
            return value

        cpu = integer("task_cpu", 256, 16384, "Fargate CPU units: 256, 512, 1024, 2048, 4096, 8192 or 16384")
        if cpu not in (256, 512, 1024, 2048, 4096, 8192, 16384):
            raise fail("task_cpu", cpu, "Fargate CPU units: 256, 512, 1024, 2048, 4096, 8192 or 16384")
        return cls(
            region=region,
            vpc_id=vpc_id,
            public_subnet_ids=public,
            private_subnet_ids=private,
            vpc_cidr=str(raw.get("vpc_cidr", cls.vpc_cidr)),
            certificate_arn=certificate_arn,
            deregistration_delay_s=integer("deregistration_delay_s", 0, 3600, "0-3600 seconds"),
            task_cpu=cpu,
            task_memory=integer("task_memory", 512, 122880, "Fargate memory in MiB, 512-122880"),
            health_check_grace_s=integer("health_check_grace_s", 0, 2147483647, "seconds >= 0"),
            log_retention_days=integer("log_retention_days", 1, 3653, "1-3653 days"),
        )


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

        vpc_id, public_subnets, private_subnets = self._network()
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
        # preview listener forwards to both target groups, which attaches them to the ALB.
        self.preview_listener, extra_listeners = self._preview_listeners()
        attached = [self.preview_listener, *extra_listeners]
        live, idle = self.config.live_color, self.config.idle_color

        def service(color: str, after: list[pulumi.Resource]) -> aws.ecs.Service:
            return self._service(color, private_subnets, task_sg, execution_role, task_role, after)

        self.services = {live: service(live, after=attached)}
        self.prod_listener = self._prod_listener(after=[self.services[live]])
        self.services[idle] = service(idle, after=[*attached, self.prod_listener])
        self.alarms = {color: self._alarms(color) for color in COLORS}

        scheme = "https" if self.settings.certificate_arn else "http"
        self.outputs = contract_outputs(
            self.config,
            live_url=_url(scheme, self.load_balancer.dns_name, self.config.listen_port),
            preview_url=_url(scheme, self.load_balancer.dns_name, self.config.preview_port),
            metrics={
                "source": "cloudwatch",
                "region": self.settings.region,
                "load_balancer": self.load_balancer.arn_suffix,
                "target_groups": {color: tg.arn_suffix for color, tg in self.target_groups.items()},
                "listen_port": self.config.listen_port,  # the prod listener, read back to verify a switch
            },
        )
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
        base = s.vpc_cidr.split("/")[0].split(".")
        public, private = [], []
        for index, zone in enumerate(zones):
            public_subnet = aws.ec2.Subnet(
                f"{name}-public-{index}",
                vpc_id=vpc.id,
                availability_zone=zone,
                cidr_block=f"{base[0]}.{base[1]}.{index}.0/24",
                map_public_ip_on_launch=False,
                opts=self.child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{index}-rta", subnet_id=public_subnet.id, route_table_id=public_rt.id, opts=self.child
            )
            # One NAT per AZ: losing an AZ must not cut the other AZ's tasks off from ECR/Secrets Manager.
            eip = aws.ec2.Eip(f"{name}-nat-{index}-eip", domain="vpc", opts=self.child)
            nat = aws.ec2.NatGateway(
                f"{name}-nat-{index}", subnet_id=public_subnet.id, allocation_id=eip.id, opts=self.child
            )
            private_subnet = aws.ec2.Subnet(
                f"{name}-private-{index}",
                vpc_id=vpc.id,
                availability_zone=zone,
                cidr_block=f"{base[0]}.{base[1]}.{index + 10}.0/24",
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
        """Least privilege: world → ALB prod ports, preview_cidrs → preview, ALB → tasks, tasks → DB."""
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
            final_snapshot_identifier=f"{name}-db-final" if keep else None,
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
        task_definition = aws.ecs.TaskDefinition(
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

    def _preview_listeners(self) -> tuple[aws.lb.Listener, list[aws.lb.Listener]]:
        """The preview route (the idle colour) and, with TLS, the port-80 redirect."""
        cfg, s, name = self.config, self.settings, self.name
        preview = aws.lb.Listener(
            f"{name}-preview-listener",
            load_balancer_arn=self.load_balancer.arn,
            port=cfg.preview_port,
            default_actions=[self._forward({c: 100 if c == cfg.idle_color else 0 for c in COLORS})],
            opts=self.child,
            **self._tls(),
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
        return preview, extra

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


def build(name: str, config: StackConfig) -> AwsBlueGreen:
    """Validate the AWS settings first, so a bad value registers nothing."""
    settings = AwsSettings.parse(config, pulumi.Config("aws").get("region"))
    return AwsBlueGreen(name, AwsBlueGreenArgs(config=config, settings=settings))
