"""The GCP component under Pulumi mocks: routing per colour, preview limits, the database, secrets, bad config."""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pytest
import yaml
from pulumi_harness import ROOT, SECRET, ProgramFailedError, Registration, StackRun, run_stack, with_deployed
from rejections import assert_refused_before_any_resource, with_invalid_value
from test_config import INVALID_VALUES

PROVIDER = {"gcp:project": "shop-prod-1234", "gcp:region": "europe-west1"}
PASSWORD = "mock-generated-password-3f9a"
PUBLIC_IP = "203.0.113.10"
DB_IP = "10.20.0.3"
# The metrics output of a stack named prod (the metrics source tests read the same object).
EXPECTED_METRICS = {
    "source": "cloud_monitoring",
    "project": "shop-prod-1234",
    "url_map": "prod-bluegreen-urlmap-a1b2c3d",
    "backend_services": {
        "blue": "prod-bluegreen-blue-backend-a1b2c3d",
        "green": "prod-bluegreen-green-backend-a1b2c3d",
    },
}

URL_MAP = "gcp:compute/uRLMap:URLMap"
BACKEND = "gcp:compute/backendService:BackendService"
RUN = "gcp:cloudrunv2/service:Service"
RULE = "gcp:compute/globalForwardingRule:GlobalForwardingRule"
SQL = "gcp:sql/databaseInstance:DatabaseInstance"
ARMOR = "gcp:compute/securityPolicy:SecurityPolicy"


def provider_outputs(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    """What GCP would return for the outputs the component reads (names are auto-generated)."""
    out: dict[str, Any] = {"selfLink": f"https://www.googleapis.com/compute/v1/projects/p/global/x/{args.name}"}
    if "name" not in args.inputs:
        out["name"] = f"{args.name}-a1b2c3d"
    extra = {
        "random:index/randomPassword:RandomPassword": {"result": PASSWORD},
        "gcp:compute/globalAddress:GlobalAddress": {"address": PUBLIC_IP},
        SQL: {"privateIpAddress": DB_IP},
        "gcp:serviceaccount/account:Account": {
            "email": "run@shop-prod-1234.iam.gserviceaccount.com",
            "member": "serviceAccount:run@shop-prod-1234.iam.gserviceaccount.com",
        },
        "gcp:secretmanager/secretVersion:SecretVersion": {"version": "1"},
    }
    out.update(extra.get(args.typ, {}))
    return out


def gcp_stack(
    stack: str = "prod", provider: dict[str, str] | None = None, deployed: dict[str, Any] | None = None, **config: Any
) -> StackRun:
    """``deployed``: the stack's last outputs, as its self stack reference reads them."""
    return run_stack(
        {"cloud": "gcp", **config},
        stack=stack,
        provider_config=PROVIDER if provider is None else provider,
        extra_outputs=with_deployed(provider_outputs, deployed),
    )


def named(run: StackRun, type_: str, name: str) -> Registration:
    return run.by_name()[(type_, f"{run.stack}-bluegreen-{name}")]


def mock_id(run: StackRun, name: str) -> str:
    return f"{run.stack}-bluegreen-{name}-id"


@pytest.mark.parametrize("live", ["blue", "green"])
def test_prod_traffic_goes_to_the_live_backend_only(live: str) -> None:
    idle = "green" if live == "blue" else "blue"
    run = gcp_stack(live_color=live)
    url_map = named(run, URL_MAP, "urlmap").inputs
    assert "defaultService" not in url_map
    weights = {w["backendService"]: w["weight"] for w in url_map["defaultRouteAction"]["weightedBackendServices"]}
    assert weights == {mock_id(run, f"{live}-backend"): 100, mock_id(run, f"{idle}-backend"): 0}

    prod_rule = named(run, RULE, "prod-rule").inputs
    assert prod_rule["portRange"] == "80" and prod_rule["loadBalancingScheme"] == "EXTERNAL_MANAGED"
    assert prod_rule["target"] == mock_id(run, "prod-http-proxy")
    assert named(run, "gcp:compute/targetHttpProxy:TargetHttpProxy", "prod-http-proxy").inputs["urlMap"] == mock_id(
        run, "urlmap"
    )
    assert run.outputs["live_color"] == live and run.outputs["idle_color"] == idle
    assert run.outputs["live_url"] == f"http://{PUBLIC_IP}"


@pytest.mark.parametrize("live", ["blue", "green"])
def test_preview_route_reaches_the_idle_colour_through_cloud_armor(live: str) -> None:
    idle = "green" if live == "blue" else "blue"
    run = gcp_stack(live_color=live, preview_port=8443)
    preview_map = named(run, URL_MAP, "preview-urlmap").inputs
    assert preview_map["defaultService"] == mock_id(run, f"{idle}-preview-backend")
    preview_rule = named(run, RULE, "preview-rule").inputs
    assert preview_rule["portRange"] == "8443"
    assert preview_rule["ipAddress"] == named(run, RULE, "prod-rule").inputs["ipAddress"], "one IP, two ports"
    assert named(run, "gcp:compute/targetHttpProxy:TargetHttpProxy", "preview-http-proxy").inputs["urlMap"] == mock_id(
        run, "preview-urlmap"
    )
    assert run.outputs["preview_url"] == f"http://{PUBLIC_IP}:8443"

    armor_link = "https://www.googleapis.com/compute/v1/projects/p/global/x/prod-bluegreen-preview-armor"
    for color in ("blue", "green"):
        assert named(run, BACKEND, f"{color}-preview-backend").inputs["securityPolicy"] == armor_link
        assert "securityPolicy" not in named(run, BACKEND, f"{color}-backend").inputs, "prod is not allow-listed"


def test_cloud_armor_admits_only_preview_cidrs_in_rules_of_ten() -> None:
    cidrs = [f"198.51.{i}.0/24" for i in range(12)]
    rules = named(gcp_stack(preview_cidrs=cidrs, preview_header=False), ARMOR, "preview-armor").inputs["rules"]
    allows = [r for r in rules if r["action"] == "allow"]
    assert [len(r["match"]["config"]["srcIpRanges"]) for r in allows] == [10, 2]
    assert [ip for r in allows for ip in r["match"]["config"]["srcIpRanges"]] == cidrs
    default = max(rules, key=lambda r: r["priority"])
    assert default["priority"] == 2147483647 and default["action"] == "deny(403)"
    assert default["match"]["config"]["srcIpRanges"] == ["*"]
    assert all(r["match"]["versionedExpr"] == "SRC_IPS_V1" for r in rules)


def test_gradual_switch_weights_both_colours() -> None:
    run = gcp_stack(live_color="green", switch_steps=[10, 50, 100], live_traffic_percent=10)
    services = named(run, URL_MAP, "urlmap").inputs["defaultRouteAction"]["weightedBackendServices"]
    weights = {w["backendService"]: w["weight"] for w in services}
    assert weights == {mock_id(run, "green-backend"): 10, mock_id(run, "blue-backend"): 90}
    assert named(run, RUN, "blue-run").inputs["template"]["scaling"]["minInstanceCount"] == 2, "still serving"


def test_each_colour_runs_its_version_behind_the_load_balancer_only() -> None:
    run = gcp_stack(
        blue_version="1.4.2", green_version="1.5.0", capacity=4, idle_capacity=1, image="europe-docker.pkg.dev/p/r/app"
    )
    for color, version, floor in (("blue", "1.4.2", 4), ("green", "1.5.0", 1)):
        service = named(run, RUN, f"{color}-run").inputs
        assert service["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
        template = service["template"]
        assert template["scaling"]["minInstanceCount"] == floor
        (container,) = template["containers"]
        assert container["image"] == f"europe-docker.pkg.dev/p/r/app:{version}"
        envs = {e["name"]: e for e in container["envs"]}
        assert envs["APP_VERSION"]["value"] == version and envs["APP_COLOR"]["value"] == color
        assert "value" not in envs["DATABASE_URL"], "the database URL comes from Secret Manager only"
        assert envs["DATABASE_URL"]["valueSource"]["secretKeyRef"] == {
            "secret": "prod-bluegreen-database-url",
            "version": "1",
        }
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert template["vpcAccess"]["networkInterfaces"] == [
            {"network": mock_id(run, "vpc"), "subnetwork": mock_id(run, "subnet")}
        ]
        neg = named(run, "gcp:compute/regionNetworkEndpointGroup:RegionNetworkEndpointGroup", f"{color}-neg").inputs
        assert neg["networkEndpointType"] == "SERVERLESS"
        assert neg["cloudRun"]["service"] == f"prod-bluegreen-{color}-run-a1b2c3d"
        for backend in (f"{color}-backend", f"{color}-preview-backend"):
            assert named(run, BACKEND, backend).inputs["backends"] == [{"group": mock_id(run, f"{color}-neg")}]
    warm = gcp_stack(capacity=4, idle_capacity=1, warm_idle=True)
    assert named(warm, RUN, "green-run").inputs["template"]["scaling"]["minInstanceCount"] == 4


def test_cloud_sql_is_private_protected_and_backed_up() -> None:
    run = gcp_stack(db={"engine_version": "15", "backup_retention_days": 14, "multi_az": True, "storage_gb": 50})
    instance = named(run, SQL, "db")
    assert instance.protect is True
    assert instance.inputs["deletionProtection"] is True
    assert instance.inputs["databaseVersion"] == "POSTGRES_15"
    settings = instance.inputs["settings"]
    assert settings["deletionProtectionEnabled"] is True
    assert settings["ipConfiguration"]["ipv4Enabled"] is False
    assert settings["ipConfiguration"]["privateNetwork"] == mock_id(run, "vpc")
    assert "authorizedNetworks" not in settings["ipConfiguration"]
    backups = settings["backupConfiguration"]
    assert backups["enabled"] is True and backups["pointInTimeRecoveryEnabled"] is True
    assert backups["backupRetentionSettings"] == {"retainedBackups": 14, "retentionUnit": "COUNT"}
    assert backups["transactionLogRetentionDays"] == 7
    assert settings["availabilityType"] == "REGIONAL" and settings["diskSize"] == 50
    assert settings["edition"] == "ENTERPRISE" and settings["tier"] == "db-custom-1-3840"
    peering = named(run, "gcp:servicenetworking/connection:Connection", "sql-peering").inputs
    assert peering["service"] == "servicenetworking.googleapis.com"
    assert peering["reservedPeeringRanges"] == ["prod-bluegreen-sql-range-a1b2c3d"]
    assert named(run, "gcp:compute/globalAddress:GlobalAddress", "sql-range").inputs["purpose"] == "VPC_PEERING"


def test_secrets_stay_secret() -> None:
    run = gcp_stack()
    user = named(run, "gcp:sql/user:User", "db-user")
    assert user.inputs["password"] == SECRET and "password" in user.secret_paths
    version = named(run, "gcp:secretmanager/secretVersion:SecretVersion", "database-url")
    assert version.inputs["secretData"] == SECRET
    grant = named(run, "gcp:secretmanager/secretIamMember:SecretIamMember", "run-sa-database-url").inputs
    assert grant["role"] == "roles/secretmanager.secretAccessor"
    assert grant["member"] == "serviceAccount:run@shop-prod-1234.iam.gserviceaccount.com"
    assert grant["secretId"] == "prod-bluegreen-database-url"
    # The generated passwords appear nowhere in plain text: not in inputs, not in plain outputs.
    plain_outputs = {k: v for k, v in run.outputs.items() if k not in run.secret_outputs}
    assert PASSWORD not in json.dumps([r.inputs for r in run.resources]) + json.dumps(plain_outputs)
    assert run.secret_outputs == {"database_endpoint", "preview_header_value"}, "secrets are exported as secrets"
    assert run.outputs["database_endpoint"] == DB_IP


def test_outputs_follow_the_contract_and_name_the_metrics() -> None:
    run = gcp_stack(blue_version="2.0.0", green_version="2.1.0", live_color="green")
    assert run.outputs["blue_version"] == "2.0.0" and run.outputs["green_version"] == "2.1.0"
    assert run.outputs["live_traffic_percent"] == 100
    assert run.outputs["metrics"] == EXPECTED_METRICS


def test_every_child_is_parented_and_named_after_the_component() -> None:
    run = gcp_stack()
    (component,) = run.of_type("bluegreen:gcp:BlueGreen")
    children = [r for r in run.resources if r is not component]
    assert children and all(r.parent == component.urn for r in children)
    assert all(r.name.startswith(f"{component.name}-") for r in children)
    for api in ("run.googleapis.com", "sqladmin.googleapis.com", "servicenetworking.googleapis.com"):
        assert api in [r.inputs["service"] for r in run.of_type("gcp:projects/service:Service")]
    assert not run.of_type("gcp:projects/service:Service") or all(
        r.inputs["disableOnDestroy"] is False for r in run.of_type("gcp:projects/service:Service")
    )
    assert not gcp_stack(gcp={"enable_apis": False}).of_type("gcp:projects/service:Service")


def test_flipping_live_color_changes_only_the_url_maps() -> None:
    """The release flips with the idle colour held warm: only routing may differ, nothing appears or goes."""
    common = {"capacity": 3, "idle_capacity": 1, "warm_idle": True, "blue_version": "1.0.0", "green_version": "1.1.0"}
    before = gcp_stack(live_color="blue", **common).by_name()
    after = gcp_stack(live_color="green", **common).by_name()
    assert before.keys() == after.keys()
    changed = sorted(key for key in before if before[key].inputs != after[key].inputs)
    assert changed == [(URL_MAP, "prod-bluegreen-preview-urlmap"), (URL_MAP, "prod-bluegreen-urlmap")]


def test_a_bare_flip_to_a_colour_below_capacity_is_refused_before_routing_or_capacity_change() -> None:
    """The URL map depends on both colours, so a flip is judged against the deployed outputs instead."""
    common = {"capacity": 3, "idle_capacity": 1}
    deployed = gcp_stack(live_color="blue", **common).outputs
    assert deployed["capacities"] == {"blue": 3, "green": 1} and deployed["traffic"] == {"blue": 100, "green": 0}
    with pytest.raises(ProgramFailedError, match=r"refusing to send 100% of production to green, which runs 1 of"):
        gcp_stack(live_color="green", deployed=deployed, **common)
    try:
        gcp_stack(live_color="green", deployed=deployed, **common)
    except ProgramFailedError as refused:
        assert "warm_idle true" in str(refused) and "bluegreen switch" in str(refused)
        registered = {r.type for r in refused.resources}
        assert URL_MAP not in registered and "gcp:cloudrunv2/service:Service" not in registered

    # The steps that work: warm green, flip, then cool blue.
    warm = gcp_stack(live_color="blue", warm_idle=True, deployed=deployed, **common).outputs
    flipped = gcp_stack(live_color="green", warm_idle=True, deployed=warm, **common).outputs
    with pytest.raises(ProgramFailedError, match="refusing to scale blue down to 1 instances while it has 100%"):
        gcp_stack(live_color="green", deployed=warm, **common)  # flip and cool in one update
    gcp_stack(live_color="green", deployed=flipped, **common)


def test_a_domain_gets_https_with_a_managed_certificate() -> None:
    run = gcp_stack(listen_port=443, preview_port=8443, gcp={"domain": "Shop.Example.com"})
    cert = named(run, "gcp:compute/managedSslCertificate:ManagedSslCertificate", "cert").inputs
    assert cert["managed"]["domains"] == ["shop.example.com"]
    for role in ("prod", "preview"):
        proxy = named(run, "gcp:compute/targetHttpsProxy:TargetHttpsProxy", f"{role}-https-proxy").inputs
        assert proxy["sslCertificates"] == [mock_id(run, "cert")]
        assert named(run, RULE, f"{role}-rule").inputs["target"] == mock_id(run, f"{role}-https-proxy")
    assert not any("prod-http-proxy" in r.name or "preview-http-proxy" in r.name for r in run.resources)
    redirect = named(run, URL_MAP, "redirect-urlmap").inputs["defaultUrlRedirect"]
    assert redirect["httpsRedirect"] is True
    assert named(run, RULE, "redirect-rule").inputs["portRange"] == "80"
    assert run.outputs["live_url"] == "https://shop.example.com"
    assert run.outputs["preview_url"] == "https://shop.example.com:8443"


def test_an_existing_network_is_used_as_given() -> None:
    network = "projects/host-proj/global/networks/shared"
    subnetwork = "projects/host-proj/regions/europe-west1/subnetworks/apps"
    run = gcp_stack(gcp={"network": network, "subnetwork": subnetwork})
    for created in ("gcp:compute/network:Network", "gcp:compute/subnetwork:Subnetwork"):
        assert not run.of_type(created)
    assert not run.of_type("gcp:servicenetworking/connection:Connection")
    assert named(run, SQL, "db").inputs["settings"]["ipConfiguration"]["privateNetwork"] == network
    interfaces = named(run, RUN, "blue-run").inputs["template"]["vpcAccess"]["networkInterfaces"]
    assert interfaces == [{"network": network, "subnetwork": subnetwork}]


@pytest.mark.parametrize(
    ("config", "provider", "message"),
    [
        ({}, {"gcp:region": "europe-west1"}, "gcp:project is not set"),
        ({}, {"gcp:project": "shop-prod-1234"}, "gcp:region is not set"),
        ({}, {"gcp:project": "shop-prod-1234", "gcp:region": "europe-west1-b"}, "not a zone"),
        ({}, {"gcp:project": "Shop", "gcp:region": "europe-west1"}, "gcp:project = 'Shop' is invalid"),
        ({"gcp": {"domain": "https://shop.example.com"}}, None, "bluegreen:gcp.domain"),
        ({"gcp": {"domain": "*.example.com"}}, None, "no scheme, port, path or wildcard"),
        ({"gcp": {"domain": "localhost"}}, None, "fully qualified domain name"),
        ({"gcp": {"domain": "shop.example.com:8443"}}, None, "bluegreen:gcp.domain"),
        ({"gcp": {"domain": "-bad.example.com"}}, None, "bluegreen:gcp.domain"),
        ({"gcp": {"domian": "shop.example.com"}}, None, "unknown field(s) ['domian']"),
        ({"gcp": {"network": "shared"}}, None, "set both network and subnetwork"),
        ({"gcp": {"network": "Shared_Net", "subnetwork": "apps"}}, None, "bluegreen:gcp.network"),
        ({"gcp": {"subnet_cidr": "8.8.8.0/24"}}, None, "a private IPv4 block"),
        ({"gcp": {"subnet_cidr": "10.10.0.0/28"}}, None, "/26 or larger"),
        ({"gcp": {"max_instances": 0}}, None, "bluegreen:gcp.max_instances"),
        ({"gcp": {"max_instances": 2}, "capacity": 3, "idle_capacity": 1}, None, "must be at least capacity (3)"),
        ({"gcp": {"enable_apis": "yes"}}, None, "bluegreen:gcp.enable_apis"),
        ({"gcp": {"domain": "shop.example.com"}}, None, "bluegreen:listen_port = 80 is invalid"),
        ({"gcp": {"domain": "shop.example.com"}, "listen_port": 8080}, None, "Google validates managed certificates"),
        ({"db": {"engine_version": "16.4"}}, None, "Cloud SQL takes a major version only"),
    ],
)
def test_bad_gcp_config_fails_before_any_resource(
    config: dict[str, Any], provider: dict[str, str] | None, message: str
) -> None:
    assert_refused_before_any_resource(
        {"cloud": "gcp", **config}, "prod", PROVIDER if provider is None else provider, message
    )


@pytest.mark.parametrize(("key", "value", "message"), INVALID_VALUES)
def test_bad_stack_config_fails_before_any_resource(key: str, value: object, message: str) -> None:
    assert_refused_before_any_resource(with_invalid_value({"cloud": "gcp"}, key, value), "prod", PROVIDER, message)


def test_stack_names_gcp_cannot_use_become_valid_bounded_prefixes() -> None:
    """Review stacks get long generated names; capitals, '_' and '.' are legal in stack names."""
    pattern = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
    names: dict[str, tuple[str, str]] = {}
    for stack in ("pr-pulumi-acme-bluegreen-41", "pr-pulumi-acme-bluegreen-42", "Prod_EU.2"):
        run = gcp_stack(stack=stack)
        (component,) = run.of_type("bluegreen:gcp:BlueGreen")
        assert pattern.fullmatch(component.name) and len(component.name) <= 30
        assert all(r.name.startswith(component.name) for r in run.resources)
        account = run.one("gcp:serviceaccount/account:Account").inputs["accountId"]
        assert pattern.fullmatch(account) and 6 <= len(account) <= 30
        labels = run.one("gcp:secretmanager/secret:Secret").inputs["labels"]
        assert re.fullmatch(r"[a-z0-9_-]{1,63}", labels["stack"]), labels
        secret = run.one("gcp:secretmanager/secret:Secret").inputs["secretId"]
        names[stack] = (account, secret)
    assert len({a for a, _ in names.values()}) == 3 and len({s for _, s in names.values()}) == 3, "no collisions"
    assert gcp_stack(stack="prod").of_type("bluegreen:gcp:BlueGreen")[0].name == "prod-bluegreen", "valid stays"


def test_a_review_stack_gets_a_destroyable_database() -> None:
    previews = {
        "enabled": True,
        "repository": "acme/bluegreen",
        "oidc": {
            "gcp": {
                "project_id": "123456789012",
                "workload_pool_id": "pulumi",
                "provider_id": "pulumi-deployments",
                "service_account": "deploy@shop-prod-1234.iam.gserviceaccount.com",
            }
        },
    }
    template = {"capacity": 3, "idle_capacity": 1, "db": {"instance": "db-custom-4-15360", "multi_az": True}}
    review = gcp_stack(stack="pr-42", previews=previews, **template)
    instance = named(review, SQL, "db")
    assert instance.protect is False and instance.inputs["deletionProtection"] is False
    settings = instance.inputs["settings"]
    assert settings["deletionProtectionEnabled"] is False and settings["retainBackupsOnDelete"] is False
    assert settings["tier"] == "db-f1-micro" and settings["availabilityType"] == "ZONAL"
    assert settings["ipConfiguration"]["ipv4Enabled"] is False, "still private"
    assert settings["backupConfiguration"]["enabled"] is True
    assert settings["userLabels"]["ephemeral"] == "true"
    floors = [r.inputs["template"]["scaling"]["minInstanceCount"] for r in review.of_type(RUN)]
    assert sorted(floors) == [0, 1], "one colour serves"

    template_stack = named(gcp_stack(stack="prod", previews=previews, **template), SQL, "db")
    assert template_stack.protect is True and template_stack.inputs["settings"]["retainBackupsOnDelete"] is True
    assert template_stack.inputs["settings"]["tier"] == "db-custom-4-15360"


def test_the_readme_example_stack_builds() -> None:
    """The stack file shown in docs/gcp.md is valid and builds what it says."""
    section = (ROOT / "docs" / "gcp.md").read_text()
    example = yaml.safe_load(section.split("```yaml", 1)[1].split("```", 1)[0])["config"]
    provider = {k: v for k, v in example.items() if k.startswith("gcp:")}
    config = {k.removeprefix("bluegreen:"): v for k, v in example.items() if k.startswith("bluegreen:")}
    run = run_stack(config, stack="prod-gcp", provider_config=provider, extra_outputs=provider_outputs)
    assert run.outputs["live_url"] == "https://orders.example.com"
    assert run.outputs["metrics"]["project"] == example["gcp:project"]
    assert named(run, SQL, "db").inputs["settings"]["tier"] == "db-custom-2-7680"


def test_a_first_preview_with_unknown_outputs_registers_the_same_resources() -> None:
    """``pulumi preview`` of a new stack knows no ids or addresses yet; the program must still plan everything."""
    planned = run_stack({"cloud": "gcp"}, stack="prod", provider_config=PROVIDER, preview=True)
    applied = gcp_stack()
    assert planned.by_name().keys() == applied.by_name().keys()
    assert named(planned, SQL, "db").protect is True


def test_each_colour_alerts_on_the_monitor_thresholds() -> None:
    run = gcp_stack(monitor={"max_error_rate": 0.02, "max_p99_ms": 750, "window_s": 30, "interval_s": 5})
    for color in ("blue", "green"):
        policy = named(run, "gcp:monitoring/alertPolicy:AlertPolicy", f"{color}-alerts").inputs
        errors, latency = (c["conditionThreshold"] for c in policy["conditions"])
        scope = (
            'resource.type = "https_lb_rule" AND resource.labels.url_map_name = "prod-bluegreen-urlmap-a1b2c3d" '
            f'AND resource.labels.backend_target_name = "prod-bluegreen-{color}-backend-a1b2c3d"'
        )
        requests = f'metric.type = "loadbalancing.googleapis.com/https/request_count" AND {scope}'
        assert errors["filter"] == f"{requests} AND metric.labels.response_code_class = 500"
        assert errors["denominatorFilter"] == requests
        assert errors["thresholdValue"] == 0.02 and errors["comparison"] == "COMPARISON_GT"
        assert errors["aggregations"][0]["alignmentPeriod"] == "60s", "Cloud Monitoring aligns on 60 s or more"
        assert latency["filter"] == f'metric.type = "loadbalancing.googleapis.com/https/backend_latencies" AND {scope}'
        assert latency["aggregations"][0]["crossSeriesReducer"] == "REDUCE_PERCENTILE_99"
        assert latency["thresholdValue"] == 750
        assert policy["combiner"] == "OR" and policy["userLabels"]["color"] == color


def test_bare_network_names_mean_this_project() -> None:
    run = gcp_stack(gcp={"network": "shared", "subnetwork": "apps"})
    assert (
        named(run, SQL, "db").inputs["settings"]["ipConfiguration"]["privateNetwork"]
        == "projects/shop-prod-1234/global/networks/shared"
    )
    assert named(run, RUN, "green-run").inputs["template"]["vpcAccess"]["networkInterfaces"] == [
        {
            "network": "projects/shop-prod-1234/global/networks/shared",
            "subnetwork": "projects/shop-prod-1234/regions/europe-west1/subnetworks/apps",
        }
    ]


def test_cloud_run_probes_follow_the_configured_health_path() -> None:
    run = gcp_stack(health_path="/livez", ready_path="/ready")
    for service in run.of_type("gcp:cloudrunv2/service:Service"):
        (container,) = service.inputs["template"]["containers"]
        assert container["startupProbe"]["httpGet"]["path"] == "/livez"
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
