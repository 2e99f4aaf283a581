"""Fixtures of the unit tests."""

import pytest


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path, monkeypatch):
    """Log files of failed in-process runs (cli.main) go to the test's directory, not the user's."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
