"""Pull-request previews: Deployment Settings on the template, cheap review stacks with a TTL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_harness import ROOT, SECRET, ProgramFailedError, StackRun, run_stack

from components.config import ConfigError, StackConfig
from components.previews import PreviewSettings, pre_run_commands

SETTINGS = "pulumiservice:index:DeploymentSettings"
TTL = "pulumiservice:index:TtlSchedule"
ROLE = "arn:aws:iam::123456789012:role/pulumi-deployments"
PREVIEWS = {"enabled": True, "repository": "acme/bluegreen", "oidc": {"aws": {"role_arn": ROLE}}}
TEMPLATE = {
    "cloud": "aws",
    "environment": "prod",
    "preview_cidrs": ["198.51.100.0/24"],
    "capacity": 4,
    "idle_capacity": 2,
    "warm_idle": True,
    "db": {"instance": "db.r6g.large", "multi_az": True, "storage_gb": 100},
    "previews": PREVIEWS,
}


def stack(name: str, **changes: Any) -> StackRun:
    return run_stack({**TEMPLATE, **changes}, stack=name, provider_config={"aws:region": "eu-west-1"})


def test_nothing_is_declared_when_previews_are_off() -> None:
    run = stack("prod", previews={})
    assert not [r for r in run.resources if r.type.startswith("pulumiservice:")]


def test_template_stack_declares_deployment_settings() -> None:
    run = stack("prod")
    settings = run.one(SETTINGS).inputs
    assert (settings["organization"], settings["project"], settings["stack"]) == ("acme", "bluegreen", "prod")
    vcs = settings["vcs"]
    assert vcs["provider"] == "github" and vcs["repository"] == "acme/bluegreen"
    assert vcs["previewPullRequests"] is True, "every pull request gets a preview"
    assert vcs["pullRequestTemplate"] is True, "and a review stack made from this one"
    assert vcs["deployCommits"] is True, "commits to main are deployed"
    assert "components/**" in vcs["paths"] and "migrations/**" in vcs["paths"]
    assert not [p for p in vcs["paths"] if p.endswith(".md") or p.startswith("docs")], "docs never deploy"
    assert settings["sourceContext"]["git"]["branch"] == "main"
    context = settings["operationContext"]
    assert context["oidc"]["aws"]["roleARN"] == ROLE
    assert any("--policy-pack policies" in c for c in context["preRunCommands"])
    assert "venv/bin/python -m policies lint migrations" in context["preRunCommands"]
    assert not run.of_type(TTL)
    db = run.one("aws:rds/instance:Instance")
    assert db.protect and db.inputs["deletionProtection"] is True


def test_review_stack_is_the_cheap_variant_with_a_ttl() -> None:
    before = datetime.now(UTC)
    run = stack("pr-acme-bluegreen-42")
    assert not run.of_type(SETTINGS), "review stacks inherit the template's settings"
    ttl = run.one(TTL).inputs
    assert (ttl["organization"], ttl["project"], ttl["stack"]) == ("acme", "bluegreen", "pr-acme-bluegreen-42")
    assert ttl["deleteAfterDestroy"] is True
    expires = datetime.strptime(ttl["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    hours = (expires - before).total_seconds() / 3600
    assert 46.9 < hours <= 48, hours

    counts = {
        s.inputs["tags"]["bluegreen:color"]: s.inputs["desiredCount"] for s in run.of_type("aws:ecs/service:Service")
    }
    assert counts == {"blue": 1, "green": 0}, "one colour serves; both stay declared"
    db = run.one("aws:rds/instance:Instance")
    assert db.protect is False and db.inputs["deletionProtection"] is False
    assert db.inputs["skipFinalSnapshot"] is True
    assert db.inputs["instanceClass"] == "db.t4g.micro" and db.inputs["multiAz"] is False
    assert db.inputs["storageEncrypted"] is True and db.inputs["publiclyAccessible"] is False
    preview_rules = [
        r.inputs
        for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["fromPort"] == 8443
    ]
    assert [r["cidrIpv4"] for r in preview_rules] == ["198.51.100.0/24"], "the preview route stays closed"
    rule = run.one("aws:lb/listenerRule:ListenerRule", "preview-rule").inputs
    assert rule["conditions"][0]["httpHeader"]["values"] == [SECRET], "and needs the template's header"


def test_no_secret_in_plain_text() -> None:
    run = stack("prod", previews={**PREVIEWS, "environment_variables": {"LOG_LEVEL": "debug"}})
    settings = run.one(SETTINGS)
    assert settings.inputs["operationContext"]["environmentVariables"] == {"LOG_LEVEL": "debug"}
    text = json.dumps(settings.inputs)
    for marker in ("AWS_SECRET_ACCESS_KEY", "PULUMI_ACCESS_TOKEN", "PASSWORD", "mock-password"):
        assert marker not in text


def test_review_variant_rule() -> None:
    template = StackConfig.parse({**TEMPLATE, "switch_steps": [10, 100], "live_traffic_percent": 10}, "prod")
    review = template.review_variant()
    assert (review.capacity, review.idle_capacity, review.warm_idle) == (1, 0, False)
    assert review.switch_steps == (100,) and review.live_traffic_percent == 100
    assert review.db.ephemeral and not review.db.multi_az and review.db.instance is None
    assert review.environment == "dev" and not review.is_prod
    kept = ("image", "blue_version", "green_version", "preview_cidrs", "monitor", "cloud", "live_color")
    assert all(getattr(review, k) == getattr(template, k) for k in kept)


@pytest.mark.parametrize(
    ("previews", "message"),
    [
        ({"enabled": True}, "owner/name"),
        ({"enabled": True, "repository": "acme/bluegreen"}, "give oidc.aws"),
        ({**PREVIEWS, "ttl_hours": 0}, "1-720"),
        ({**PREVIEWS, "credentials": "keys"}, "oidc (Deployments' OIDC) or esc"),
        ({**PREVIEWS, "oidc": {"aws": {}}}, "missing role_arn"),
        ({**PREVIEWS, "environment_variables": {"AWS_SECRET_ACCESS_KEY": "x"}}, "Pulumi ESC environment"),
        ({**PREVIEWS, "environment_variables": {"DB_PASSWORD": "x"}}, "never go in deployment settings"),
        ({**PREVIEWS, "ttl": 3}, "unknown field(s) ['ttl']"),
        ({"enabled": "yes"}, "true or false"),
    ],
)
def test_bad_previews_settings_fail_before_any_resource(previews: dict[str, Any], message: str) -> None:
    with pytest.raises(ProgramFailedError) as err:
        stack("prod", previews=previews)
    assert isinstance(err.value.cause, ConfigError)
    assert message in str(err.value.cause)
    assert err.value.resources == []


def test_esc_credentials_need_no_oidc() -> None:
    config = StackConfig.parse({**TEMPLATE, "previews": {**PREVIEWS, "oidc": {}, "credentials": "esc"}}, "prod")
    assert PreviewSettings.parse(config).credentials == "esc"


def test_prod_database_is_never_ephemeral() -> None:
    with pytest.raises(ConfigError, match="never ephemeral"):
        StackConfig.parse({**TEMPLATE, "db": {"ephemeral": True}}, "prod")


WORKFLOW = ROOT / ".github" / "workflows" / "pulumi.yml"


def workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job["steps"]


def test_workflow_previews_pull_requests_with_the_policy_pack_and_comments() -> None:
    doc = workflow()
    triggers = doc[True] if True in doc else doc["on"]  # PyYAML reads the key `on` as True
    assert "pull_request" in triggers and triggers["push"]["branches"] == ["main"]
    jobs = doc["jobs"]
    preview = jobs["preview"]
    assert preview["if"] == "github.event_name == 'pull_request'"
    assert "test" in preview["needs"]
    action = next(s for s in steps(preview) if str(s.get("uses", "")).startswith("pulumi/actions@"))
    assert action["with"]["command"] == "preview"
    assert action["with"]["policyPacks"] == "policies"
    assert action["with"]["comment-on-pr"] is True
    assert "secrets.PULUMI_ACCESS_TOKEN" in action["env"]["PULUMI_ACCESS_TOKEN"]
    assert doc["permissions"]["id-token"] == "write", "cloud credentials through OIDC, no stored keys"
    assert preview["permissions"]["pull-requests"] == "write"


def test_workflow_deploys_main_and_runs_the_project_checks() -> None:
    jobs = workflow()["jobs"]
    up = jobs["up"]
    assert up["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    action = next(s for s in steps(up) if str(s.get("uses", "")).startswith("pulumi/actions@"))
    assert action["with"]["command"] == "up" and action["with"]["policyPacks"] == "policies"
    runs = " ".join(s.get("run", "") for s in steps(jobs["test"]))
    assert "make test" in runs
    lint = " ".join(s.get("run", "") for s in steps(jobs["preview"]))
    assert "python -m policies lint --stack ${{ vars.PULUMI_STACK }}" in lint


def test_workflow_has_no_inline_secrets() -> None:
    text = Path(WORKFLOW).read_text()
    for line in text.splitlines():
        if any(k in line.upper() for k in ("TOKEN", "SECRET", "PASSWORD")) and ":" in line:
            value = line.split(":", 1)[1].strip()
            assert value == "" or value.startswith("${{") or value in ("write", "read"), line


def test_the_pre_run_lint_follows_migrations_dir() -> None:
    def commands(**raw: Any) -> list[str]:
        return pre_run_commands(StackConfig.parse({"cloud": "aws", **raw}, "prod"))

    assert "venv/bin/python -m policies lint 'db/my migrations'" in commands(migrations_dir="db/my migrations")
    assert not any("policies lint" in c for c in commands(migrations_dir=""))
    assert commands(migrations_dir="")[-1].startswith("pulumi preview")
