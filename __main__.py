"""The bluegreen Pulumi program: read the stack config, build its target, export the contract."""

import pulumi

from components.config import StackConfig
from components.migration_set import register_migrations
from components.targets import build_target

config = StackConfig.from_pulumi()
register_migrations(config)
target = build_target(config)
for name, value in target.outputs.items():
    pulumi.export(name, value)
