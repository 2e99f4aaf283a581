"""environment.py: why a pod is not ready, in one phrase (the pure part of unready_reason)."""

from kubectl_preevy.environment import (
    Environment,
    exit_reason,
    exited_container,
    latest_warning,
    pod_reason,
)

UID = "6f1c0d1e-0000-4000-8000-000000000001"


def pod(*statuses, name="preevy-shop-main-abcde-0", uid=UID):
    return {"metadata": {"name": name, "uid": uid}, "status": {"containerStatuses": list(statuses)}}


def event(reason, message, timestamp, uid=UID):
    return {
        "reason": reason,
        "message": message,
        "lastTimestamp": timestamp,
        "type": "Warning",
        "involvedObject": {"kind": "Pod", "uid": uid},
    }


CRASHING = {
    "name": "docker",
    "restartCount": 3,
    "state": {
        "waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}
    },
    "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
}
RUNNING = {"name": "docker", "restartCount": 0, "state": {"running": {"startedAt": "2026-11-28T21:00:00Z"}}}


def test_a_crashing_container_is_found_and_explained_by_its_exit_code_and_last_log_line():
    status, terminated = exited_container(pod(RUNNING | {"name": "sidecar"}, CRASHING))
    assert status["name"] == "docker"
    assert exit_reason(status, terminated, "failed to start daemon: permission denied") == (
        "container docker exited with code 1 (restart count 3), its last log line: "
        "failed to start daemon: permission denied"
    )
    assert exit_reason(status, terminated, "") == "container docker exited with code 1 (restart count 3)"


def test_a_container_running_again_after_a_crash_is_not_the_reason():
    recovered = RUNNING | {"restartCount": 1, "lastState": {"terminated": {"exitCode": 137}}}
    assert exited_container(pod(recovered)) is None


def test_the_latest_warning_explains_a_running_pod_and_backoff_comes_last():
    events = [
        event("BackOff", "Back-off restarting failed container", "2026-11-28T21:05:00Z"),
        event(
            "Unhealthy",
            "Readiness probe failed: HTTP probe failed with statuscode: 500",
            "2026-11-28T21:04:00Z",
        ),
        event(
            "Unhealthy",
            'Readiness probe failed: Get "http://10.0.0.5:2375/_ping":\n  connection refused',
            "2026-11-28T21:03:00Z",
        ),
    ]
    assert pod_reason(pod(RUNNING), events) == (
        "Unhealthy: Readiness probe failed: HTTP probe failed with statuscode: 500"
    )


def test_events_of_the_pod_this_name_had_before_are_ignored():
    old = event("FailedMount", "MountVolume.SetUp failed", "2026-11-28T21:09:00Z", uid="an-older-pod")
    assert latest_warning([old], uid=UID) is None
    assert pod_reason(pod(RUNNING), [old]) == (
        "pod preevy-shop-main-abcde-0 runs but is not ready (its readiness probe fails)"
    )


def test_without_warnings_a_waiting_container_says_why_on_one_line():
    waiting = {
        "name": "docker",
        "state": {"waiting": {"reason": "ContainerCreating", "message": "pulling\nimage docker:dind"}},
    }
    assert (
        pod_reason(pod(waiting), [])
        == "container docker is waiting (ContainerCreating): pulling image docker:dind"
    )


def test_a_long_reason_is_cut_to_one_short_line():
    long = event("FailedMount", "x" * 1000, "2026-11-28T21:00:00Z")
    reason = latest_warning([long])
    assert reason is not None and reason.endswith("...") and len(reason) < 400 and "\n" not in reason


def test_the_line_kubectl_delete_prints_for_the_docker_host_and_whether_it_is_being_deleted():
    statefulset = Environment({"kind": "StatefulSet", "metadata": {"name": "default-a-x1y2z"}})
    legacy = Environment({"kind": "Deployment", "metadata": {"name": "default-a-old"}})
    assert statefulset.deleted_line == 'statefulset.apps "default-a-x1y2z" deleted'
    assert legacy.deleted_line == 'deployment.apps "default-a-old" deleted'
    assert not statefulset.deleting
    statefulset.statefulset["metadata"]["deletionTimestamp"] = "2026-11-29T03:00:00Z"
    legacy.statefulset["metadata"]["labels"] = {"preevy.dev/deleted": "true"}  # an earlier version's mark
    assert statefulset.deleting and legacy.deleting
