"""Programs the tests need. A missing one skips a test on a developer's machine, and FAILS it in CI
(CI=true): there no test may skip for a missing prerequisite (scripts/setup.sh installs them all)."""

import os
import shutil

import pytest


def require_tool(name: str) -> str:
    """The program's path, else skip (locally) or fail (CI=true)."""
    path = shutil.which(name)
    if path:
        return path
    message = f"required program {name!r} is not installed: run scripts/setup.sh"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: no test may skip for a missing prerequisite)")
    pytest.skip(message)
