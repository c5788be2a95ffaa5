"""The preview route works from CI and never from the world: the secret header, public allow-lists, the pack."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest
from azure_mock_outputs import azure_outputs
from policy_args import from_run, policy_resource, violations
from pulumi_harness import SECRET, StackRun, run_stack
from rejections import assert_refused_before_any_resource
from test_gcp_component import PROVIDER as GCP_PROVIDER
from test_gcp_component import provider_outputs as gcp_outputs

from components.targets import PREVIEW_HEADER
from policies import guardrails
from scripts.smoke import REDACTED, Expectation, SmokeCheck, SmokeRunner, SmokeSettings, SmokeSuite, route_headers

REGION = {"aws:region": "eu-west-1"}
LOCATION = {"azure-native:location": "westeurope"}
AWS_TOKEN = "mock-password-of-prod-bluegreen-preview-token"
GCP_TOKEN = "mock-generated-password-3f9a"
AZURE_TOKEN = "S3cret-generated-password-value!"
LISTENER = "aws:lb/listener:Listener"
RULE = "aws:lb/listenerRule:ListenerRule"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ARMOR = "gcp:compute/securityPolicy:SecurityPolicy"
WAF = "azure-native:network:WebApplicationFirewallPolicy"
GATEWAY = "azure-native:network:ApplicationGateway"


def aws(**config: Any) -> StackRun:
    return run_stack({"cloud": "aws", "environment": "prod", **config}, stack="prod", provider_config=REGION)


def gcp(**config: Any) -> StackRun:
    return run_stack({"cloud": "gcp", **config}, stack="prod", provider_config=GCP_PROVIDER, extra_outputs=gcp_outputs)


def azure(**config: Any) -> StackRun:
    return run_stack(
        {"cloud": "azure", "environment": "prod", **config},
        stack="prod",
        provider_config=LOCATION,
        extra_outputs=azure_outputs,
    )


def assert_header_outputs(run: StackRun, token: str) -> None:
    assert run.outputs["preview_header_name"] == PREVIEW_HEADER == "X-Bluegreen-Preview"
    assert run.outputs["preview_header_value"] == token
    assert "preview_header_value" in run.secret_outputs and "preview_header_name" not in run.secret_outputs
    assert token not in json.dumps([r.inputs for r in run.resources]), "the value is a secret wherever it goes"


# -- AWS ----------------------------------------------------------------------------------------


def test_aws_preview_forwards_only_with_the_header() -> None:
    run = aws(live_color="blue")
    listener = run.one(LISTENER, "preview-listener").inputs
    (default,) = listener["defaultActions"]
    assert default["type"] == "fixed-response" and default["fixedResponse"]["statusCode"] == "403"
    rule = run.one(RULE, "preview-rule")
    assert rule.inputs["listenerArn"] == "arn:mock:aws:lb/listener:Listener:prod-bluegreen-preview-listener"
    (condition,) = rule.inputs["conditions"]
    assert condition["httpHeader"] == {"httpHeaderName": PREVIEW_HEADER, "values": [SECRET]}
    (action,) = rule.inputs["actions"]
    weights = {tg["arn"].rsplit("-", 2)[-2]: tg["weight"] for tg in action["forward"]["targetGroups"]}
    assert weights == {"blue": 0, "green": 100}, "the idle colour"
    # No allow-list: the port takes any address, and the header rule decides.
    preview = [r.inputs for r in run.of_type(INGRESS) if r.inputs["fromPort"] == 8443]
    assert [r["cidrIpv4"] for r in preview] == ["0.0.0.0/0"]
    services = run.of_type("aws:ecs/service:Service")
    assert all(rule.urn in s.dependencies for s in services), "the rule attaches the target groups"
    assert_header_outputs(run, AWS_TOKEN)


def test_aws_header_and_allow_list_together() -> None:
    run = aws(preview_cidrs=["203.0.113.0/28", "2001:db8::/48"])
    preview = sorted(
        (r.inputs.get("cidrIpv4") or r.inputs["cidrIpv6"]) for r in run.of_type(INGRESS) if r.inputs["fromPort"] == 8443
    )
    assert preview == ["2001:db8::/48", "203.0.113.0/28"]
    assert run.one(RULE, "preview-rule")


def test_aws_flip_changes_the_prod_listener_and_the_preview_rule_only() -> None:
    blue, green = aws(live_color="blue", warm_idle=True), aws(live_color="green", warm_idle=True)
    before, after = blue.by_name(), green.by_name()
    assert before.keys() == after.keys()
    changed = sorted(name for (type_, name), r in before.items() if r.inputs != after[(type_, name)].inputs)
    assert changed == ["prod-bluegreen-preview-rule", "prod-bluegreen-prod-listener"]


def test_without_the_header_the_allow_list_alone_guards_it() -> None:
    run = aws(preview_header=False, preview_cidrs=["203.0.113.7/32"])
    assert not run.of_type(RULE) and "preview_header_name" not in run.outputs
    (default,) = run.one(LISTENER, "preview-listener").inputs["defaultActions"]
    assert default["type"] == "forward"


# -- GCP ----------------------------------------------------------------------------------------


def armor_rules(run: StackRun) -> list[dict[str, Any]]:
    return sorted(run.one(ARMOR).inputs["rules"], key=lambda r: r["priority"])


def test_gcp_cloud_armor_allows_only_the_header() -> None:
    run = gcp()
    header, deny = armor_rules(run)
    assert header["action"] == "allow" and header["match"]["expr"]["expression"] == SECRET
    assert deny["action"] == "deny(403)" and deny["match"]["config"]["srcIpRanges"] == ["*"]
    assert_header_outputs(run, GCP_TOKEN)


def test_gcp_header_expressions_stay_within_cloud_armors_limits() -> None:
    from components.gcp import _header_expression

    cidrs = [f"203.0.113.{i * 16}/28" for i in range(6)]
    rules = armor_rules(gcp(preview_cidrs=cidrs))
    assert [r["action"] for r in rules] == ["allow", "allow", "deny(403)"], "4 + 2 ranges"
    expression = _header_expression("abc123", cidrs[:4])
    assert expression.startswith("request.headers['x-bluegreen-preview'] == 'abc123' && (")
    assert expression.count("inIpRange(origin.ip, ") == 4 and expression.count("||") == 3
    assert _header_expression("abc123", []) == "request.headers['x-bluegreen-preview'] == 'abc123'"


# -- Azure --------------------------------------------------------------------------------------


def test_azure_preview_listener_has_a_waf_policy_that_blocks_without_the_header() -> None:
    run = azure()
    preview_policy = run.by_name()[(WAF, "prod-bluegreen-preview-waf")].inputs
    (rule,) = preview_policy["customRules"]
    assert (rule["action"], rule["ruleType"], rule["priority"]) == ("Block", "MatchRule", 1)
    (condition,) = rule["matchConditions"]
    assert condition["matchVariables"] == [{"variableName": "RequestHeaders", "selector": PREVIEW_HEADER}]
    assert condition["operator"] == "Equal" and condition["negationConditon"] is True
    assert condition["matchValues"] == [SECRET]
    assert preview_policy["policySettings"]["mode"] == "Prevention"
    scrubbed = preview_policy["policySettings"]["logScrubbing"]["scrubbingRules"]
    assert scrubbed[0]["matchVariable"] == "RequestHeaderNames" and scrubbed[0]["selector"] == PREVIEW_HEADER
    listeners = {x["name"]: x for x in run.one(GATEWAY).inputs["httpListeners"]}
    assert listeners["preview"]["firewallPolicy"] == {"id": "prod-bluegreen-preview-waf-id"}
    assert "firewallPolicy" not in listeners["prod"], "production goes through the gateway's policy"
    nsg = run.one("azure-native:network:NetworkSecurityGroup").inputs["securityRules"]
    (allow,) = [r for r in nsg if r["destinationPortRange"] == "8443" and r["access"] == "Allow"]
    assert allow["sourceAddressPrefix"] == "Internet", "the WAF decides"
    assert_header_outputs(run, AZURE_TOKEN)


# -- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cloud", "provider", "frontend"),
    [
        ("aws", REGION, "an internet-facing ALB"),
        ("gcp", GCP_PROVIDER, "Google's front ends"),
        ("azure", LOCATION, "the Application Gateway's public IP"),
    ],
)
@pytest.mark.parametrize("cidr", ["10.20.0.0/16", "192.168.1.0/24", "100.64.0.0/10", "fd00::/8"])
def test_private_ranges_are_refused_on_public_frontends(
    cloud: str, provider: dict[str, str], frontend: str, cidr: str
) -> None:
    config = {"cloud": cloud, "preview_cidrs": ["203.0.113.0/24", cidr]}
    assert_refused_before_any_resource(config, "prod", provider, f"bluegreen:preview_cidrs = '{cidr}' is invalid")
    assert_refused_before_any_resource(config, "prod", provider, frontend)


def test_neither_guard_is_refused() -> None:
    assert_refused_before_any_resource(
        {"cloud": "aws", "preview_header": False}, "prod", REGION, "the preview route's only guard"
    )


# -- the policy pack ------------------------------------------------------------------------------


def preview_policy(run: StackRun | list[Any]) -> list[str]:
    resources = from_run(run) if isinstance(run, StackRun) else run
    found = violations(guardrails.validate_preview_not_open, resources, {"preview_port": 8443})
    assert found is not None
    return [message for message, _ in found]


def mutated(run: StackRun, type_: str, name: str, change: Any) -> list[Any]:
    out = []
    for r in from_run(run):
        if r.resource_type == type_ and name in r.name:
            props = copy.deepcopy(dict(r.props))
            change(props)
            r = policy_resource(r.resource_type, r.name, props, r.opts.protect, urn=r.urn)
        out.append(r)
    return out


MODES = {
    "header": {},
    "both": {"preview_cidrs": ["203.0.113.0/28"]},
    "allow-list": {"preview_header": False, "preview_cidrs": ["203.0.113.0/28"]},
}


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_every_guardrail_passes_each_cloud_in_every_preview_mode(cloud: str, mode: str) -> None:
    from policies.pack import POLICIES

    config = dict(MODES[mode])
    if cloud == "azure" and mode == "allow-list":
        config["azure"] = {"gateway_sku": "Standard_v2"}
    run = {"aws": aws, "gcp": gcp, "azure": azure}[cloud](live_color="green", **config)
    resources = from_run(run)
    found = {}
    for policy in POLICIES:
        if policy.name == "migrations-backward-compatible":
            continue  # judged over the migrations, in test_policy_migrations.py
        validate = policy._StackValidationPolicy__validate  # type: ignore[attr-defined]
        result = violations(validate, resources, {"preview_port": 8443, "live_color": "green"})
        if result:
            found[policy.name] = [m for m, _ in result]
    assert found == {}


def test_the_pack_accepts_an_any_address_port_only_behind_the_header() -> None:
    run = aws()
    assert preview_policy(run) == []
    opened = mutated(run, LISTENER, "preview-listener", lambda p: p.update(defaultActions=[{"type": "forward"}]))
    assert len(preview_policy(opened)) == 1 and "preview_header" in preview_policy(opened)[0]
    no_rule = [r for r in from_run(run) if r.resource_type != RULE]
    assert len(preview_policy(no_rule)) == 1
    assert preview_policy(gcp()) == []


def test_the_pack_accepts_azure_only_with_the_waf_rule_on_the_preview_listener() -> None:
    run = azure()
    assert preview_policy(run) == []

    def unguarded(props: dict[str, Any]) -> None:
        for listener in props["httpListeners"]:
            listener.pop("firewallPolicy", None)

    assert len(preview_policy(mutated(run, GATEWAY, "gateway", unguarded))) == 1
    no_rule = mutated(run, WAF, "preview-waf", lambda p: p.update(customRules=[]))
    assert len(preview_policy(no_rule)) == 1


# -- the pipeline's side: the header goes with every preview request, and is never shown ------------


def test_smoke_sends_the_route_header_and_never_shows_it() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        ok = request.headers.get(PREVIEW_HEADER) == "tok3n"
        return httpx.Response(200 if ok else 403, json={"color": "green"})

    outputs = {"preview_header_name": PREVIEW_HEADER, "preview_header_value": "tok3n"}
    assert route_headers(outputs, "live_url") == {}
    assert route_headers({}, "preview_url") == {}
    headers = route_headers(outputs, "preview_url")
    check = SmokeCheck("status", "GET", "/", {"X-Request-Source": "smoke"}, None, Expectation(status=201), {}, 1)
    suite = SmokeSuite(path=None, settings=SmokeSettings(attempts=1, timeout_s=5), checks=(check,))  # type: ignore[arg-type]
    client = httpx.Client(transport=httpx.MockTransport(answer))
    report = SmokeRunner(suite, "https://x.example", "green", "2.0.0", client=client, route_headers=headers).run()
    assert seen and all(r.headers[PREVIEW_HEADER] == "tok3n" for r in seen)
    assert seen[0].headers["X-Request-Source"] == "smoke"
    (result,) = report.results
    assert not result.passed and result.request is not None
    assert result.request["headers"] == {PREVIEW_HEADER: REDACTED, "X-Request-Source": "smoke"}
    assert "tok3n" not in json.dumps(report.to_dict())
