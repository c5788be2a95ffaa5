"""Pull-request previews through Pulumi Deployments (pulumi-pulumiservice).

The stack that enables ``bluegreen:previews`` becomes the *template*: it declares its
Deployment Settings (source, pull-request previews, review stacks, commits to main
deployed, path filters, OIDC credentials, and pre-run commands that lint the migrations
and preview with the policy pack). Pulumi Deployments copies the template's config into
every review stack it opens for a pull request; the program recognises a review stack by
its name, applies :meth:`StackConfig.review_variant` (the one rule that makes it cheap),
and declares a TTL schedule so an abandoned review stack is destroyed even if the
pull-request-closed hook never fires.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pulumi
import pulumi_pulumiservice as pulumiservice

from components.config import ConfigError, StackConfig, invalid

# Deployments run only when one of these changes: documentation alone never deploys.
DEFAULT_PATHS = (
    "__main__.py",
    "Pulumi.yaml",
    "Pulumi.*.yaml",
    "requirements.txt",
    "components/**",
    "policies/**",
    "migrations/**",
    "examples/**",
)


# Run before every Deployments operation (PR preview, review stack, commit to main).
# Deployments' own preview cannot take --policy-pack, so a preview with the pack comes
# first and fails the deployment on a mandatory violation.
def pre_run_commands(config: StackConfig) -> list[str]:
    """Install, lint the app's migrations (``migrations_dir``; none when it is empty), preview with the pack."""
    lint = [f"venv/bin/python -m policies lint {shlex.quote(config.migrations_dir)}"] if config.migrations_dir else []
    return [
        "python3 -m venv venv && venv/bin/pip install -q -r requirements.txt",
        *lint,
        'pulumi preview --stack "$PULUMI_CI_STACK" --policy-pack policies --non-interactive --diff',
    ]


SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|KEY|CREDENTIAL|PRIVATE", re.IGNORECASE)
OIDC_FIELDS = {
    "aws": ("role_arn", "session_name"),
    "gcp": ("project_id", "workload_pool_id", "provider_id", "service_account", "region"),
    "azure": ("client_id", "tenant_id", "subscription_id"),
}
OIDC_REQUIRED = {
    "aws": ("role_arn",),
    "gcp": ("project_id", "workload_pool_id", "provider_id", "service_account"),
    "azure": ("client_id", "tenant_id", "subscription_id"),
}
FIELDS = (
    "enabled",
    "repository",
    "branch",
    "repo_dir",
    "paths",
    "ttl_hours",
    "credentials",
    "oidc",
    "environment_variables",
    "review_stack_prefix",
)


@dataclass(frozen=True)
class PreviewSettings:
    """The validated ``bluegreen:previews`` object."""

    enabled: bool = False
    repository: str = ""
    branch: str = "main"
    repo_dir: str = "."
    paths: tuple[str, ...] = DEFAULT_PATHS
    ttl_hours: int = 48
    credentials: str = "oidc"
    oidc: dict[str, dict[str, str]] = field(default_factory=dict)
    environment_variables: dict[str, str] = field(default_factory=dict)
    review_stack_prefix: str = "pr-"

    def is_review_stack(self, stack: str) -> bool:
        return self.enabled and stack.startswith(self.review_stack_prefix)

    @classmethod
    def parse(cls, config: StackConfig) -> PreviewSettings:
        """Validate before any resource: secrets never in plain values, credentials for the cloud."""
        raw = dict(config.previews)

        def fail(key: str, value: Any, allowed: str) -> ConfigError:
            return invalid(f"bluegreen:previews.{key}", value, allowed)

        unknown = sorted(set(raw) - set(FIELDS))
        if unknown:
            raise ConfigError(f"bluegreen:previews has unknown field(s) {unknown}; allowed: {', '.join(FIELDS)}")
        enabled = raw.get("enabled", False)
        if not isinstance(enabled, bool):
            raise fail("enabled", enabled, "true or false")
        if not enabled:
            return cls()
        repository = raw.get("repository", "")
        if not isinstance(repository, str) or not re.fullmatch(r"[\w.-]+/[\w.-]+", repository):
            raise fail("repository", repository, "the GitHub repository as owner/name")
        branch = str(raw.get("branch", cls.branch))
        repo_dir = str(raw.get("repo_dir", cls.repo_dir))
        paths = raw.get("paths", list(DEFAULT_PATHS))
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
            raise fail("paths", paths, "a non-empty list of path globs that should trigger a deployment")
        ttl = raw.get("ttl_hours", cls.ttl_hours)
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= 720:
            raise fail("ttl_hours", ttl, "hours after the last push before a review stack is destroyed, 1-720")
        credentials = raw.get("credentials", cls.credentials)
        if credentials not in ("oidc", "esc"):
            raise fail("credentials", credentials, "oidc (Deployments' OIDC) or esc (an ESC environment in the stack)")
        oidc = raw.get("oidc", {}) or {}
        if not isinstance(oidc, dict) or set(oidc) - set(OIDC_FIELDS):
            raise fail("oidc", oidc, f"an object with any of {sorted(OIDC_FIELDS)}")
        for cloud, settings in oidc.items():
            if not isinstance(settings, dict) or set(settings) - set(OIDC_FIELDS[cloud]):
                raise fail(f"oidc.{cloud}", settings, f"an object with {', '.join(OIDC_FIELDS[cloud])}")
            missing = [k for k in OIDC_REQUIRED[cloud] if not settings.get(k)]
            if missing:
                raise fail(f"oidc.{cloud}", settings, f"missing {', '.join(missing)}")
        if credentials == "oidc" and config.cloud in OIDC_FIELDS and config.cloud not in oidc:
            raise fail(
                "oidc",
                oidc,
                f"cloud is {config.cloud}: give oidc.{config.cloud} ({', '.join(OIDC_REQUIRED[config.cloud])}), "
                "or set credentials: esc and import an ESC environment in the stack config",
            )
        env = raw.get("environment_variables", {}) or {}
        if not isinstance(env, dict):
            raise fail("environment_variables", env, "an object of plain, non-secret values")
        for name, value in env.items():
            if SECRET_NAME.search(name) or isinstance(value, dict):
                raise fail(
                    f"environment_variables.{name}",
                    "***",
                    "secrets never go in deployment settings in plain text: put them in a Pulumi ESC environment",
                )
        prefix = str(raw.get("review_stack_prefix", cls.review_stack_prefix))
        if not prefix:
            raise fail("review_stack_prefix", prefix, "a non-empty stack name prefix")
        return cls(
            enabled=True,
            repository=repository,
            branch=branch,
            repo_dir=repo_dir,
            paths=tuple(paths),
            ttl_hours=ttl,
            credentials=credentials,
            oidc={
                k: {**({"session_name": "bluegreen-deployments"} if k == "aws" else {}), **v} for k, v in oidc.items()
            },
            environment_variables={str(k): str(v) for k, v in env.items()},
            review_stack_prefix=prefix,
        )


def prepare(config: StackConfig) -> tuple[StackConfig, PreviewSettings]:
    """Validate the previews object; a review stack gets its template's config made cheap."""
    settings = PreviewSettings.parse(config)
    if settings.is_review_stack(config.stack):
        config = config.review_variant()
    return config, settings


@dataclass
class DeploymentPreviewsArgs:
    config: StackConfig
    settings: PreviewSettings
    organization: str
    project: str
    now: datetime | None = None


class DeploymentPreviews(pulumi.ComponentResource):
    """Deployment Settings on the template stack, or the TTL schedule of a review stack."""

    def __init__(self, name: str, args: DeploymentPreviewsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("bluegreen:previews:DeploymentPreviews", name, None, opts)
        config, settings = args.config, args.settings
        child = pulumi.ResourceOptions(parent=self)
        self.review_stack = settings.is_review_stack(config.stack)
        outputs: dict[str, Any] = {"review_stack": self.review_stack}
        if self.review_stack:
            now = args.now or datetime.now(UTC)
            # Rounded to the hour so that previews within the same hour show no diff.
            expires = (now + timedelta(hours=settings.ttl_hours)).replace(minute=0, second=0, microsecond=0)
            self.ttl = pulumiservice.TtlSchedule(
                f"{name}-ttl",
                organization=args.organization,
                project=args.project,
                stack=config.stack,
                timestamp=expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                delete_after_destroy=True,
                opts=child,
            )
            outputs["review_stack_expires"] = self.ttl.timestamp
        else:
            self.settings = pulumiservice.DeploymentSettings(
                f"{name}-settings",
                organization=args.organization,
                project=args.project,
                stack=config.stack,
                source_context=pulumiservice.DeploymentSettingsSourceContextArgs(
                    git=pulumiservice.DeploymentSettingsGitSourceArgs(
                        branch=settings.branch, repo_dir=settings.repo_dir
                    )
                ),
                vcs=pulumiservice.DeploymentSettingsVcsArgs(
                    provider="github",
                    repository=settings.repository,
                    deploy_commits=True,
                    preview_pull_requests=True,
                    pull_request_template=True,
                    paths=list(settings.paths),
                ),
                operation_context=pulumiservice.DeploymentSettingsOperationContextArgs(
                    pre_run_commands=pre_run_commands(config),
                    environment_variables=settings.environment_variables or None,
                    oidc=_oidc(settings.oidc) if settings.credentials == "oidc" and settings.oidc else None,
                    options=pulumiservice.OperationContextOptionsArgs(
                        skip_intermediate_deployments=True, delete_after_destroy=True
                    ),
                ),
                cache_options=pulumiservice.DeploymentSettingsCacheOptionsArgs(enable=True),
                opts=child,
            )
        self.register_outputs(outputs)


def _oidc(oidc: dict[str, dict[str, str]]) -> pulumiservice.OperationContextOIDCArgs:
    aws = oidc.get("aws")
    gcp = oidc.get("gcp")
    azure = oidc.get("azure")
    return pulumiservice.OperationContextOIDCArgs(
        aws=pulumiservice.AWSOIDCConfigurationArgs(**aws) if aws else None,
        gcp=pulumiservice.GCPOIDCConfigurationArgs(**gcp) if gcp else None,
        azure=pulumiservice.AzureOIDCConfigurationArgs(**azure) if azure else None,
    )


def declare(config: StackConfig, settings: PreviewSettings) -> DeploymentPreviews | None:
    """Declared only when previews are enabled on the stack."""
    if not settings.enabled:
        return None
    return DeploymentPreviews(
        f"{config.stack}-previews",
        DeploymentPreviewsArgs(
            config=config, settings=settings, organization=pulumi.get_organization(), project=pulumi.get_project()
        ),
    )
