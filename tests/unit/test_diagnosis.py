"""True failures while waiting for the pod (issue 10), from the pod and events as Kubernetes 1.32 writes them."""

import datetime

from kubectl_preevy import diagnosis
from kubectl_preevy.errors import ExitCode

STS = "default-x-abcde"
POD = f"{STS}-0"
SINCE = datetime.datetime(2026, 11, 28, 12, 0, 0, tzinfo=datetime.timezone.utc)


def event(
    kind: str,
    name: str,
    reason: str,
    message: str,
    at: str = "2026-11-28T12:00:05Z",
    uid: str | None = None,
    type_: str = "Warning",
) -> dict:
    return {
        "kind": "Event",
        "involvedObject": {"kind": kind, "name": name, "namespace": "ns", **({"uid": uid} if uid else {})},
        "reason": reason,
        "message": message,
        "type": type_,
        "lastTimestamp": at,
    }


def pod(statuses: list[dict] | None = None, phase: str = "Pending", scheduled: bool = True) -> dict:
    return {
        "metadata": {"name": POD, "uid": "u1"},
        "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": f"data-{POD}"}}]},
        "status": {
            "phase": phase,
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "True" if scheduled else "False",
                    "reason": "" if scheduled else "Unschedulable",
                }
            ],
            "containerStatuses": statuses or [],
        },
    }


PSA_MESSAGE = (
    f'create Pod {POD} in StatefulSet {STS} failed error: pods "{POD}" is forbidden: violates PodSecurity '
    '"baseline:latest": privileged (container "docker" must not set securityContext.privileged=true)'
)


def test_failed_create_by_pod_security():
    found = diagnosis.diagnose(
        STS, None, [event("StatefulSet", STS, "FailedCreate", PSA_MESSAGE)], SINCE, "ns"
    )
    assert found is not None and found.exit_code == ExitCode.REFUSED
    assert found.reason == (
        'the namespace\'s Pod Security policy "baseline:latest" refuses the pod: privileged (container "docker" '
        "must not set securityContext.privileged=true)"
    )
    assert "kubectl preevy template --variant sysbox" in found.fix
    assert "kubectl label namespace ns pod-security.kubernetes.io/enforce=privileged" in found.fix


def test_an_older_failed_create_belongs_to_another_run():
    old = event("StatefulSet", STS, "FailedCreate", PSA_MESSAGE, at="2026-11-28T11:59:50Z")
    assert diagnosis.diagnose(STS, None, [old], SINCE, "ns") is None


def test_failed_create_by_quota():
    message = (
        f'create Pod {POD} in StatefulSet {STS} failed error: pods "{POD}" is forbidden: exceeded quota: q, '
        "requested: requests.memory=256Mi, used: requests.memory=900Mi, limited: requests.memory=1Gi"
    )
    found = diagnosis.diagnose(STS, None, [event("StatefulSet", STS, "FailedCreate", message)], SINCE, "ns")
    assert found is not None and found.exit_code == ExitCode.REFUSED
    assert found.reason.startswith("a ResourceQuota refuses the pod or its volume claim: exceeded quota: q,")
    assert "raise it" in found.fix


def test_claim_pending_without_a_storage_class():
    events = [
        event(
            "PersistentVolumeClaim",
            f"data-{POD}",
            "FailedBinding",
            "no persistent volumes available for this claim and no storage class is set",
            type_="Normal",
        ),
        event(
            "Pod",
            POD,
            "FailedScheduling",
            "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
            uid="u1",
        ),
    ]
    found = diagnosis.diagnose(STS, pod(scheduled=False), events, SINCE, "ns")
    assert found is not None and found.exit_code == ExitCode.REFUSED
    assert (
        found.reason
        == f"volume claim data-{POD} stays Pending: no persistent volumes available for this claim and no storage class is set"
    )
    assert "--kube-pod-storage-class" in found.fix
    assert diagnosis.diagnose(STS, pod(scheduled=True), events, SINCE, "ns") is None


def test_image_pull_failure_quotes_the_kubelet():
    status = {
        "name": "docker",
        "image": "nope:1",
        "state": {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "nope:1"'}},
    }
    events = [event("Pod", POD, "Failed", 'Failed to pull image "nope:1": rpc error: not found', uid="u1")]
    found = diagnosis.diagnose(STS, pod([status]), events, SINCE, "ns")
    assert found is not None and found.exit_code == ExitCode.REFUSED
    assert (
        found.reason
        == 'container docker cannot pull image nope:1: Failed to pull image "nope:1": rpc error: not found'
    )


def test_oom_killed_and_crash_loop_are_failures():
    oom = {
        "name": "docker",
        "restartCount": 1,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
    }
    found = diagnosis.diagnose(STS, pod([oom], phase="Running"), [], SINCE, "ns")
    assert found is not None and found.exit_code == ExitCode.FAILURE and "OOMKilled" in found.reason
    crash = {
        "name": "docker",
        "restartCount": 2,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"reason": "Error", "exitCode": 1}},
    }
    found = diagnosis.diagnose(STS, pod([crash], phase="Running"), [], SINCE, "ns")
    assert found is not None and found.crash and found.exit_code == ExitCode.FAILURE


def test_an_oom_kill_of_this_run_counts_even_once_restarted_an_older_one_does_not():
    def restarted(finished: str) -> dict:
        return {
            "name": "docker",
            "restartCount": 1,
            "state": {"running": {"startedAt": finished}},
            "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137, "finishedAt": finished}},
        }

    found = diagnosis.diagnose(
        STS, pod([restarted("2026-11-28T12:00:07Z")], phase="Running"), [], SINCE, "ns"
    )
    assert found is not None and found.exit_code == ExitCode.FAILURE
    assert (
        found.reason
        == "container docker was killed for exceeding its memory limit (OOMKilled, restart count 1)"
    )
    assert (
        diagnosis.diagnose(STS, pod([restarted("2026-11-28T11:00:00Z")], phase="Running"), [], SINCE, "ns")
        is None
    )


def test_a_pod_starting_is_no_failure():
    creating = {"name": "docker", "state": {"waiting": {"reason": "ContainerCreating"}}}
    assert diagnosis.diagnose(STS, pod([creating]), [], SINCE, "ns") is None


def test_the_events_are_read_only_where_the_diagnosis_needs_them():
    pulling = {"name": "docker", "state": {"waiting": {"reason": "ErrImagePull"}}}
    crash = {"name": "docker", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
    running = {"name": "docker", "state": {"running": {}}}
    deleting = pod([running], phase="Running")
    deleting["metadata"]["deletionTimestamp"] = "2026-11-28T12:00:09Z"
    for needed in (None, deleting, pod([pulling]), pod(scheduled=False)):
        assert diagnosis.needs_events(needed)
    for alone in (pod([running], phase="Running"), pod([crash], phase="Running"), pod()):
        assert not diagnosis.needs_events(alone)
        # what the pod alone tells is what the events would have added nothing to
        events = [
            event("Pod", POD, "Failed", "anything", uid="u1"),
            event("StatefulSet", STS, "FailedCreate", PSA_MESSAGE),
            event(
                "PersistentVolumeClaim", f"data-{POD}", "FailedBinding", "no storage class", type_="Normal"
            ),
        ]
        assert diagnosis.diagnose(STS, alone, events, SINCE, "ns") == diagnosis.diagnose(
            STS, alone, [], SINCE, "ns"
        )


def test_apply_warnings():
    stderr = 'Warning: would violate PodSecurity "restricted:latest": privileged\nstatefulset.apps/x serverside-applied\n'
    assert diagnosis.apply_warnings(stderr) == ['would violate PodSecurity "restricted:latest": privileged']
