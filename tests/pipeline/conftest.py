"""The local stacks of tests/local serve the pipeline's end-to-end tests too."""

from tests.local.conftest import local_project  # noqa: F401  (a fixture, used by name)
