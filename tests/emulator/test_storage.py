"""StorageClasses and Pending claims in kubesim through the real kubectl."""

from __future__ import annotations

import json
import time

import yaml

from tests.emulator.waiting import until

DEFAULT = "storageclass.kubernetes.io/is-default-class"
UNBOUND = (
    "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
    "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
)


def _claim(name, storage_class=None):
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}


def _pod_with(claim):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"uses-{claim}"},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "busybox:1.36",
                    "command": ["sleep", "3600"],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }
            ],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
        },
    }


def _apply(kubesim, ns, *objs):
    kubesim.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(objs))


def _get(kubesim, ns, kind, name):
    return json.loads(kubesim.kubectl("get", kind, name, "-n", ns, "-o", "json").stdout)


def _event(kubesim, ns, name, reason):
    def find():
        out = kubesim.kubectl(
            "get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name},reason={reason}", "-o", "json"
        ).stdout  # fmt: skip
        items = json.loads(out)["items"]
        return items[0] if items else None

    return until(find, f"{reason} event of {name}")


def test_one_default_class_out_of_the_box(kubesim):
    table = kubesim.kubectl("get", "storageclass").stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "PROVISIONER",
        "RECLAIMPOLICY",
        "VOLUMEBINDINGMODE",
        "ALLOWVOLUMEEXPANSION",
        "AGE",
    ]
    assert table[1].split()[:6] == [
        "standard",
        "(default)",
        "kubesim.io/hostpath",
        "Delete",
        "Immediate",
        "false",
    ]


def test_claim_of_a_missing_class_stays_pending_and_its_pod_unschedulable(kubesim, namespace):
    _apply(kubesim, namespace, _claim("fastdata", "fast"), _pod_with("fastdata"))
    event = _event(kubesim, namespace, "fastdata", "ProvisioningFailed")
    assert (event["type"], event["source"]["component"], event["message"]) == (
        "Warning",
        "persistentvolume-controller",
        'storageclass.storage.k8s.io "fast" not found',
    )
    scheduling = _event(kubesim, namespace, "uses-fastdata", "FailedScheduling")
    assert (scheduling["type"], scheduling["source"]["component"], scheduling["message"]) == (
        "Warning",
        "default-scheduler",
        UNBOUND,
    )
    pod = _get(kubesim, namespace, "pod", "uses-fastdata")
    assert pod["status"]["phase"] == "Pending" and "nodeName" not in pod["spec"]
    cond = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "Unschedulable", UNBOUND)
    assert _get(kubesim, namespace, "pvc", "fastdata")["status"]["phase"] == "Pending"
    fast = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": f"fast-{namespace}"},
    }
    fast["provisioner"] = "kubesim.io/hostpath"
    kubesim.kubectl("apply", "-f", "-", input=yaml.safe_dump(fast))
    try:
        # the class's name differs: the claim stays Pending (a claim's class never changes)
        time.sleep(1)
        assert _get(kubesim, namespace, "pvc", "fastdata")["status"]["phase"] == "Pending"
    finally:
        kubesim.kubectl("delete", "storageclass", f"fast-{namespace}")


def test_without_a_default_class_claims_wait_until_one_exists(kubesim, namespace):
    kubesim.kubectl("annotate", "storageclass", "standard", f"{DEFAULT}-")
    try:
        _apply(kubesim, namespace, _claim("data"), _pod_with("data"))
        event = _event(kubesim, namespace, "data", "FailedBinding")
        assert (event["type"], event["message"]) == (
            "Normal",
            "no persistent volumes available for this claim and no storage class is set",
        )
        claim = _get(kubesim, namespace, "pvc", "data")
        assert claim["status"]["phase"] == "Pending" and "storageClassName" not in claim["spec"]
        assert _event(kubesim, namespace, "uses-data", "FailedScheduling")["message"] == UNBOUND
        described = kubesim.kubectl("describe", "pod", "uses-data", "-n", namespace).stdout
        assert "PodScheduled   False" in described
    finally:
        kubesim.kubectl("annotate", "storageclass", "standard", f"{DEFAULT}=true", "--overwrite")
    # the default class is given to the waiting claim (retroactive default), then the pod runs
    kubesim.kubectl("wait", "--for=condition=Ready", "pod/uses-data", "-n", namespace, "--timeout=60s")
    claim = _get(kubesim, namespace, "pvc", "data")
    assert (claim["status"]["phase"], claim["spec"]["storageClassName"]) == ("Bound", "standard")


def _statefulset(name, when_deleted="Retain", when_scaled="Retain", replicas=1):
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "serviceName": name,
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": when_deleted, "whenScaled": when_scaled},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "main",
                            "image": "busybox:1.36",
                            "command": ["sleep", "3600"],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        }
                    ],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                }
            ],
        },
    }


def _names(kubesim, ns, kind):
    out = kubesim.kubectl("get", kind, "-n", ns, "-o", "jsonpath={.items[*].metadata.name}").stdout
    return sorted(out.split())


def test_claim_retention_policy_when_deleted_and_when_scaled(kubesim, namespace):
    _apply(kubesim, namespace, _statefulset("keep"), _statefulset("drop", "Delete", "Delete", replicas=2))
    kubesim.kubectl("rollout", "status", "sts/keep", "sts/drop", "-n", namespace, "--timeout=60s")
    assert _names(kubesim, namespace, "pvc") == ["data-drop-0", "data-drop-1", "data-keep-0"]
    kubesim.kubectl("scale", "sts/drop", "--replicas=1", "-n", namespace)
    until(
        lambda: _names(kubesim, namespace, "pvc") == ["data-drop-0", "data-keep-0"], "scaled-down claim gone"
    )
    kubesim.kubectl("delete", "sts", "keep", "drop", "-n", namespace, "--wait=true")
    until(lambda: _names(kubesim, namespace, "pvc") == ["data-keep-0"], "claims of `drop` deleted with it")
    until(lambda: _names(kubesim, namespace, "pods") == [], "pods gone")


def test_deletion_propagation_orphan_and_foreground(kubesim, namespace):
    _apply(kubesim, namespace, _statefulset("orph"), _statefulset("fore"))
    kubesim.kubectl("rollout", "status", "sts/orph", "sts/fore", "-n", namespace, "--timeout=60s")
    kubesim.kubectl("delete", "sts", "orph", "-n", namespace, "--cascade=orphan")
    time.sleep(1)
    pod = _get(kubesim, namespace, "pod", "orph-0")
    assert "ownerReferences" not in pod["metadata"] and "deletionTimestamp" not in pod["metadata"]
    kubesim.kubectl("delete", "sts", "fore", "-n", namespace, "--cascade=foreground", "--wait=false")
    owner = _get(kubesim, namespace, "sts", "fore")  # held while its pod terminates (grace 1 s)
    assert (
        owner["metadata"]["finalizers"] == ["foregroundDeletion"] and owner["metadata"]["deletionTimestamp"]
    )
    kubesim.kubectl("wait", "--for=delete", "sts/fore", "-n", namespace, "--timeout=60s")
    assert _names(kubesim, namespace, "pods") == ["orph-0"]  # fore-0 went before its StatefulSet


def test_a_foreground_deletion_marks_even_an_object_without_dependents_first(kubesim, namespace):
    # as the apiserver: the DELETE answers the object deleting (foregroundDeletion, deletionTimestamp); the
    # garbage collector removes the finalizer, finding no dependents, and the object goes
    kubesim.kubectl("create", "configmap", "alone", "-n", namespace)
    path = f"/api/v1/namespaces/{namespace}/configmaps/alone"
    options = json.dumps({"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Foreground"})
    answer = json.loads(kubesim.kubectl("delete", "--raw", path, "-f", "-", input=options).stdout)
    assert answer["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert answer["metadata"]["deletionTimestamp"]
    kubesim.kubectl("wait", "--for=delete", "configmap/alone", "-n", namespace, "--timeout=60s")
