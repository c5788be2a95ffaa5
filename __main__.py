"""The bluegreen Pulumi program: read the stack config, build its target, export the contract."""

from pathlib import Path

import pulumi

from components import previews
from components.config import StackConfig
from components.migration_set import load_stack_migrations, register_migrations
from components.targets import build_target

# Everything is validated before the first resource; a review stack gets its cheap variant.
config, preview_settings = previews.prepare(StackConfig.from_pulumi())
migrations = load_stack_migrations(config.migrations_location(Path.cwd()))
target = build_target(config)
register_migrations(config, migrations, parent=target)
previews.declare(config, preview_settings)
for name, value in target.outputs.items():
    pulumi.export(name, value)
