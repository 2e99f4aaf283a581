"""Fixtures of the end-to-end tests (the emulator's own come from tests/conftest.py)."""

import pytest

from tests.e2e import user_env


@pytest.fixture
def env(kubesim, tmp_path) -> dict[str, str]:
    """The environment of a user of the emulator, with a profile store of this test only."""
    return user_env(kubesim, tmp_path / "config")
