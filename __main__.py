"""The bluegreen Pulumi program: read the stack config, build its target, export the contract."""

import pulumi

from components import previews
from components.config import StackConfig
from components.migration_set import register_migrations
from components.targets import build_target

# Everything is validated before the first resource; a review stack gets its cheap variant.
config, preview_settings = previews.prepare(StackConfig.from_pulumi())
register_migrations(config)
target = build_target(config)
previews.declare(config, preview_settings)
for name, value in target.outputs.items():
    pulumi.export(name, value)
