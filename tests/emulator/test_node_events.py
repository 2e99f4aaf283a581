"""Events the kubesim kubelet records, read with the real kubectl (get events, describe pod)."""

from __future__ import annotations

import json
import time

from tests.emulator.test_node_kubelet import _apply, _until, container, pod_manifest


def _events(sim, ns, selector):
    out = sim.kubectl("get", "events", "-n", ns, "--field-selector", selector, "-o", "json").stdout
    return json.loads(out)["items"]


def _event(sim, ns, pod, reason, good=lambda e: True, timeout=20.0):
    """The one Event of that reason about the pod, once good(event)."""

    def found():
        events = _events(sim, ns, f"involvedObject.name={pod},reason={reason}")
        assert len(events) <= 1, events  # repeats are aggregated into one Event
        return events and good(events[0]) and events[0]

    return _until(found, timeout=timeout, what=f"{reason} event of {pod}", interval=0.3)


def test_kubelet_events_for_probes_crashes_and_missing_volumes(kubesim, namespace):
    unready = {"exec": {"command": ["sh", "-c", "echo not ready yet; exit 1"]}, "periodSeconds": 1}
    _apply(
        kubesim,
        namespace,
        "\n".join(
            json.dumps(pod)
            for pod in [
                pod_manifest("unready", [container(readinessProbe=unready)]),
                pod_manifest("crash", [container(command=("sh", "-c", "exit 3"))]),
                pod_manifest(
                    "nocm",
                    [container(volumeMounts=[{"name": "c", "mountPath": "/c"}])],
                    [{"name": "c", "configMap": {"name": "absent"}}],
                ),
                pod_manifest(
                    "noclaim",
                    [container(volumeMounts=[{"name": "data", "mountPath": "/data"}])],
                    [{"name": "data", "persistentVolumeClaim": {"claimName": "absent"}}],
                ),
            ]
        ),
    )

    # a probe failing every second: one Event whose count grows (written every few seconds)
    unhealthy = _event(kubesim, namespace, "unready", "Unhealthy", lambda e: e["count"] >= 3)
    assert (
        unhealthy["type"] == "Warning" and unhealthy["message"] == "Readiness probe failed: not ready yet\n"
    )
    assert unhealthy["source"] == {"component": "kubelet", "host": "kubesim-node"}
    assert unhealthy["reportingComponent"] == "kubelet"
    assert unhealthy["firstTimestamp"] <= unhealthy["lastTimestamp"]
    ref = unhealthy["involvedObject"]
    assert (ref["kind"], ref["name"], ref["apiVersion"], ref["fieldPath"]) == (
        "Pod",
        "unready",
        "v1",
        "spec.containers{main}",
    )

    backoff = _event(kubesim, namespace, "crash", "BackOff")
    uid = kubesim.kubectl("get", "pod", "crash", "-n", namespace, "-o", "jsonpath={.metadata.uid}").stdout
    assert backoff["type"] == "Warning"
    assert backoff["message"] == f"Back-off restarting failed container main in pod crash_{namespace}({uid})"

    mount = _event(kubesim, namespace, "nocm", "FailedMount")
    assert (mount["type"], mount["message"]) == (
        "Warning",
        'MountVolume.SetUp failed for volume "c" : configmap "absent" not found',
    )
    assert "fieldPath" not in mount["involvedObject"]
    # a missing claim: the scheduler never places the pod (the kubelet never sees it)
    claim = _event(kubesim, namespace, "noclaim", "FailedScheduling")
    assert (claim["type"], claim["source"]["component"], claim["message"]) == (
        "Warning",
        "default-scheduler",
        '0/1 nodes are available: persistentvolumeclaim "absent" not found. '
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
    )

    # what the product reads: the latest Warning of a pod, by kind, name and type
    warnings = _events(kubesim, namespace, "involvedObject.kind=Pod,involvedObject.name=crash,type=Warning")
    assert {e["reason"] for e in warnings} == {"BackOff"}
    table = kubesim.kubectl("get", "events", "-n", namespace).stdout
    assert (
        "Unhealthy" in table and "pod/unready" in table and "Readiness probe failed: not ready yet" in table
    )


def test_describe_pod_lists_the_lifecycle_events(kubesim, namespace):
    _apply(kubesim, namespace, pod_manifest("plain", [container()]))
    _event(kubesim, namespace, "plain", "Started")
    described = kubesim.kubectl("describe", "pod", "plain", "-n", namespace).stdout
    events = described.split("\nEvents:\n", 1)[1].splitlines()[2:]  # below the header lines
    rows = [line.split(None, 4) for line in events]
    assert [(r[0], r[1]) for r in rows] == [
        ("Normal", "Scheduled"),
        ("Normal", "Pulled"),
        ("Normal", "Created"),
        ("Normal", "Started"),
    ]
    assert rows[0][3:] == ["default-scheduler", f"Successfully assigned {namespace}/plain to kubesim-node"]
    assert [r[3] for r in rows[1:]] == ["kubelet"] * 3
    assert rows[1][4] == 'Container image "busybox:1.36" already present on machine'
    assert (rows[2][4], rows[3][4]) == ("Created container main", "Started container main")
    kubesim.kubectl("delete", "pod", "plain", "-n", namespace, "--wait=true")
    killing = _event(kubesim, namespace, "plain", "Killing", timeout=5)
    assert killing["message"] == "Stopping container main"


def test_deleted_pod_gets_sigterm_before_sigkill(kubesim, namespace, tmp_path):
    marks = tmp_path / "marks"
    trap = "trap 'echo got-term > /marks/term; exit 0' TERM; while true; do sleep 0.1; done"
    _apply(
        kubesim,
        namespace,
        pod_manifest(
            "trapper",
            [container(command=("sh", "-c", trap), volumeMounts=[{"name": "m", "mountPath": "/marks"}])],
            [{"name": "m", "hostPath": {"path": str(marks), "type": "DirectoryOrCreate"}}],
        ),
    )
    kubesim.kubectl("wait", "-n", namespace, "--for=condition=Ready", "pod/trapper", "--timeout=30s")
    start = time.monotonic()
    kubesim.kubectl("delete", "pod", "trapper", "-n", namespace, "--wait=true")
    assert (marks / "term").read_text() == "got-term\n"
    assert time.monotonic() - start < 2  # it exited at once: no waiting out the grace period
