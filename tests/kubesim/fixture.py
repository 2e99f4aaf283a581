"""pytest fixtures: `kubesim` (session: the real `python -m tests.kubesim` as a subprocess) and `namespace`."""
from __future__ import annotations

import os
import shutil
import uuid

import pytest

from tests.kubesim.launcher import Kubesim, KubesimError


def require_tool(name: str) -> str:
    """The path of a prerequisite program; skip the test locally when missing, fail it under CI=true."""
    path = shutil.which(name)
    if path:
        return path
    msg = f"required program {name!r} is not installed"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg + " (CI=true: no test may skip for a missing prerequisite)")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def kubesim(tmp_path_factory):
    require_tool("kubectl")
    sim = Kubesim(tmp_path_factory.mktemp("kubesim"))
    try:
        sim.start()
    except KubesimError as e:
        pytest.fail(str(e))
    yield sim
    code = sim.stop()
    if code != 0:
        pytest.fail(f"kubesim exited with {code} (want 0); its log:\n{sim.log()}")


@pytest.fixture
def namespace(kubesim):
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubesim.clear_faults()
    kubesim.kubectl("create", "namespace", name)
    yield name
    kubesim.clear_faults()
    kubesim.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False, timeout=30)
