"""Real local stacks for the end-to-end tests (see sandbox.py); each is taken down in a finalizer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from components.local.runtime import LocalEnvironment
from tests.local.sandbox import LocalProject, scratch_project


@pytest.fixture
def local_project() -> Iterator[LocalProject]:
    with scratch_project() as project:
        yield project


@pytest.fixture
def running_env(local_project: LocalProject) -> LocalEnvironment:
    env = local_project.environment()
    env.up()
    return env
