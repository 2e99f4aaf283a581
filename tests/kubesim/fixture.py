"""pytest fixtures: `kubesim` (session: the real `python -m tests.kubesim` as a subprocess) and `namespace`."""

from __future__ import annotations

import uuid

import pytest

from tests.kubesim.launcher import Kubesim, KubesimError
from tests.prerequisites import require_tool


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
    kubesim.kubectl(
        "delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False, timeout=30
    )
