"""kubesim as a process: clean SIGTERM shutdown, and watch expiry with a tiny history (own instances)."""

from __future__ import annotations

import json
import os
import time
import urllib.request

import pytest

from tests.kubesim.launcher import Kubesim
from tests.prerequisites import require_tool

from . import manifests


@pytest.fixture
def private_sim(tmp_path):
    require_tool("kubectl")
    sim = Kubesim(tmp_path, extra_args=("--watch-history", "10")).start()
    yield sim
    sim.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def test_sigterm_stops_pods_and_exits_zero(private_sim):
    sim = private_sim
    sim.kubectl(
        "apply",
        "--server-side",
        "--field-manager=t",
        "-f",
        "-",
        input=manifests.statefulset("term", app="term"),
    )
    sim.kubectl("rollout", "status", "statefulset/term", "--timeout=60s")
    pids = sim.pod_pids("default", "term-0")
    assert pids and all(_alive(p) for p in pids)
    t0 = time.monotonic()
    assert sim.stop() == 0
    assert time.monotonic() - t0 < 30
    assert not _alive(sim.proc.pid)
    for pid in pids:
        assert not _alive(pid), f"pod process {pid} survived kubesim"


def test_watch_from_a_too_old_resource_version_gets_410(private_sim):
    sim = private_sim
    for i in range(15):
        sim.kubectl("create", "-f", "-", input=manifests.configmap(f"c{i}"))
    with urllib.request.urlopen(
        sim.url + "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=2&timeoutSeconds=5",
        timeout=30,
    ) as r:
        events = [json.loads(line) for line in r.read().decode().splitlines()]
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"


def test_kubeconfig_names_kubesim(private_sim):
    import yaml

    cfg = yaml.safe_load(private_sim.kubeconfig.read_text())
    assert cfg["current-context"] == "kubesim"
    ctx = cfg["contexts"][0]
    assert ctx["name"] == "kubesim" and ctx["context"] == {
        "cluster": "kubesim",
        "user": "kubesim",
        "namespace": "default",
    }
    servers = {c["name"]: c["cluster"]["server"] for c in cfg["clusters"]}
    assert servers["kubesim"] == private_sim.server and private_sim.server.startswith("https://127.0.0.1:")
    assert servers["kubesim-http"] == private_sim.url and private_sim.url.startswith("http://127.0.0.1:")
    assert cfg["users"][0]["user"]["client-certificate-data"]
