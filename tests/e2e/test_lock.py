"""Concurrent runs on one environment: a lock in the cluster takes them one at a time (Preevy creates the
environment twice, #456), and a lock left behind by a crashed run is taken over."""

import json

from tests.e2e import UP_TIMEOUT, environment_objects, hello_project, preevy, start, stop

CRASHED_HOLDER = "`kubectl preevy up` on crashed-ci (pid 1)"


def lock_names(kubesim, namespace: str) -> list[str]:
    return kubesim.kubectl("get", "configmaps", "-n", namespace, "-o", "name").stdout.split()


def test_two_concurrent_ups_make_one_environment_and_a_stale_lock_is_taken_over(
    kubesim, namespace, env, tmp_path
):
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "race"]
    kubesim.kubectl(
        "create",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "preevy-lock-default-race",
                    "namespace": namespace,
                    "annotations": {
                        "preevy.dev/lock-holder": CRASHED_HOLDER,
                        "preevy.dev/lock-expires-at": "2020-01-01T00:00:00Z",
                    },
                },
            }
        ),
    )

    runs = [start(["up", *flags, "-o", "json", "--timeout", "60s"], project, env) for _ in range(2)]
    try:
        outputs = [proc.communicate(timeout=UP_TIMEOUT) for proc in runs]
    finally:
        for proc in runs:
            stop(proc)
    stderrs = [stderr for _, stderr in outputs]
    assert [proc.returncode for proc in runs] == [0, 0], "\n---\n".join(stderrs)

    # one environment: the second run waited for the first, then found and reused its environment
    documents = [json.loads(stdout) for stdout, _ in outputs]
    assert documents[0]["statefulSet"] == documents[1]["statefulSet"]
    assert kubesim.kubectl("get", "statefulsets", "-n", namespace, "-o", "name").stdout.split() == [
        f"statefulset.apps/{documents[0]['statefulSet']}"
    ]
    assert sorted("creating environment race" in stderr for stderr in stderrs) == [False, True]
    # ... found ready and unchanged (issue 13: then not applied again)
    reused = f"environment race in namespace {namespace} is unchanged and ready: not applied again"
    assert sorted(reused in stderr for stderr in stderrs) == [False, True]
    assert sorted("> waiting for `kubectl preevy up` on " in stderr for stderr in stderrs) == [False, True]
    # the crashed run's lock was taken over by exactly one of them, and said so
    broken = [line for stderr in stderrs for line in stderr.splitlines() if CRASHED_HOLDER in line]
    assert broken == [
        f"warning: the lock of environment race held by {CRASHED_HOLDER} expired at "
        "2020-01-01T00:00:00Z (that run stopped without releasing it): taking it over"
    ]
    assert "configmap/preevy-lock-default-race" not in lock_names(kubesim, namespace)

    preevy("down", *flags, cwd=project, env=env, check=True)
    assert environment_objects(kubesim, namespace, "preevy.dev/env-id=race") == []
    assert "configmap/preevy-lock-default-race" not in lock_names(kubesim, namespace)
