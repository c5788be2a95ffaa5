"""The policies of the pack, importable so tests and ``__main__`` share one list."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, StackValidationPolicy

from policies import guardrails
from policies.migration_policy import validate_migrations

PACK_NAME = "bluegreen-policies"

POLICIES = [
    StackValidationPolicy(
        name="migrations-backward-compatible",
        description="Pending migrations keep the live release working (expand/contract) and do not lock busy tables.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=validate_migrations,
    ),
    StackValidationPolicy(
        name="database-protected",
        description="The shared database is protect=True, so no replace or destroy can delete it.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=guardrails.validate_database_protected,
    ),
    StackValidationPolicy(
        name="database-deletion-protected",
        description="The shared database has the cloud's own deletion protection (flag or lock).",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=guardrails.validate_database_deletion_protected,
    ),
    StackValidationPolicy(
        name="database-private",
        description="The shared database is not reachable from the internet.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=guardrails.validate_database_private,
    ),
    StackValidationPolicy(
        name="database-encrypted",
        description="The shared database is encrypted at rest.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=guardrails.validate_database_encrypted,
    ),
    StackValidationPolicy(
        name="preview-not-open-to-world",
        description="The preview route (the idle colour) is not reachable from 0.0.0.0/0 or ::/0.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=guardrails.validate_preview_not_open,
        config_schema=PolicyConfigSchema(
            properties={"preview_port": {"type": "integer", "description": "defaults to bluegreen:preview_port"}}
        ),
    ),
    StackValidationPolicy(
        name="both-colors-declared",
        description="Blue and green are both declared, so a rollback is one routing change.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=guardrails.validate_both_colors,
    ),
    StackValidationPolicy(
        name="live-color-has-capacity",
        description="The live colour runs at least one task/instance.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=guardrails.validate_live_capacity,
        config_schema=PolicyConfigSchema(properties={"live_color": {"type": "string", "enum": ["blue", "green"]}}),
    ),
]


def build_policy_pack() -> None:
    """Serve the pack to the Pulumi engine (blocks; the engine stops the process)."""
    from pulumi_policy import PolicyPack

    PolicyPack(name=PACK_NAME, policies=POLICIES)
