"""The StatefulSet controller's OrderedReady rolling update as Kubernetes 1.32 does it, including the
"forced rollback" trap (kubernetes/kubernetes#67250): a pod of an older revision that is not Ready is
never replaced by the controller; deleting it is the documented way out."""

import json

from tests.emulator import manifests

# never Ready (a readiness probe that fails), as a dockerd that keeps crashing behind its probe; fixed
PROBE = '["sleep", "3600"]\n        readinessProbe: {{exec: {{command: ["{}"]}}, periodSeconds: 1}}'


def apply(kubesim, namespace: str, manifest: str) -> None:
    kubesim.kubectl("apply", "--server-side", "--field-manager=t", "-n", namespace, "-f", "-", input=manifest)


def get(kubesim, namespace: str, *what: str) -> dict:
    return json.loads(kubesim.kubectl("get", *what, "-n", namespace, "-o", "json").stdout)


def test_a_not_ready_pod_of_an_older_revision_is_not_replaced_until_deleted(kubesim, namespace):
    broken = manifests.statefulset("trap", app="trap").replace('["sleep", "3600"]', PROBE.format("false"))
    apply(kubesim, namespace, broken)
    kubesim.kubectl(
        "wait", "--for=jsonpath={.status.containerStatuses[0].started}=true", "pod/trap-0",
        "-n", namespace, "--timeout=60s",
    )  # fmt: skip
    old_revision = get(kubesim, namespace, "pod", "trap-0")["metadata"]["labels"]["controller-revision-hash"]

    fixed = manifests.statefulset("trap", app="trap").replace('["sleep", "3600"]', PROBE.format("true"))
    apply(kubesim, namespace, fixed)
    kubesim.kubectl(
        "wait", "--for=jsonpath={.status.observedGeneration}=2", "statefulset/trap",
        "-n", namespace, "--timeout=60s",
    )  # fmt: skip
    status = get(kubesim, namespace, "statefulset", "trap")["status"]
    assert status["updateRevision"] != old_revision
    assert status["currentRevision"] == old_revision
    stuck = kubesim.kubectl(
        "rollout", "status", "statefulset/trap", "-n", namespace, "--timeout=4s", check=False
    )
    assert stuck.returncode != 0 and "timed out" in stuck.stderr
    assert get(kubesim, namespace, "pod", "trap-0")["metadata"]["labels"]["controller-revision-hash"] == (
        old_revision
    )  # the controller left the crashing pod of the old revision alone

    kubesim.kubectl("delete", "pod", "trap-0", "-n", namespace, "--wait=false")
    kubesim.kubectl("rollout", "status", "statefulset/trap", "-n", namespace, "--timeout=60s")
    pod = get(kubesim, namespace, "pod", "trap-0")
    assert pod["metadata"]["labels"]["controller-revision-hash"] == status["updateRevision"]
    status = get(kubesim, namespace, "statefulset", "trap")["status"]
    assert status["currentRevision"] == status["updateRevision"]
