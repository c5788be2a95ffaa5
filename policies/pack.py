"""The policies of the pack, importable so tests and ``__main__`` share one list."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, StackValidationPolicy

from policies import guardrails
from policies.migration_policy import validate_migrations

PACK_NAME = "bluegreen-policies"

# (name, what it guarantees, validate, config schema properties)
_RULES = [
    (
        "migrations-backward-compatible",
        "Pending migrations keep the live release working (expand/contract) and do not lock busy tables.",
        validate_migrations,
        None,
    ),
    (
        "database-protected",
        "The shared database is protect=True, so no replace or destroy can delete it.",
        guardrails.validate_database_protected,
        None,
    ),
    (
        "database-deletion-protected",
        "The shared database has the cloud's own deletion protection (flag or lock).",
        guardrails.validate_database_deletion_protected,
        None,
    ),
    (
        "database-private",
        "The shared database is not reachable from the internet.",
        guardrails.validate_database_private,
        None,
    ),
    (
        "database-encrypted",
        "The shared database is encrypted at rest.",
        guardrails.validate_database_encrypted,
        None,
    ),
    (
        "preview-not-open-to-world",
        "The preview route (the idle colour) is not reachable from 0.0.0.0/0 or ::/0 without the secret header.",
        guardrails.validate_preview_not_open,
        {"preview_port": {"type": "integer", "description": "defaults to bluegreen:preview_port"}},
    ),
    (
        "both-colors-declared",
        "Blue and green are both declared, so a rollback is one routing change.",
        guardrails.validate_both_colors,
        None,
    ),
    (
        "live-color-has-capacity",
        "The live colour runs at least one task/instance.",
        guardrails.validate_live_capacity,
        {"live_color": {"type": "string", "enum": ["blue", "green"]}},
    ),
]

POLICIES = [
    StackValidationPolicy(
        name=name,
        description=description,
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=validate,
        config_schema=PolicyConfigSchema(properties=schema) if schema else None,
    )
    for name, description, validate, schema in _RULES
]


def build_policy_pack() -> None:
    """Serve the pack to the Pulumi engine (blocks; the engine stops the process)."""
    from pulumi_policy import PolicyPack

    PolicyPack(name=PACK_NAME, policies=POLICIES)
