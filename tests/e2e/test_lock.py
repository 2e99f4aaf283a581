"""Concurrent runs on one environment: a lock in the cluster takes them one at a time (Preevy creates the
environment twice, #456), and a lock left behind by a crashed run is taken over."""

import datetime
import json
import re

from tests.e2e import (
    UP_TIMEOUT,
    environment_objects,
    hello_project,
    preevy,
    run_until,
    start,
    stop,
    up_json,
)

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


def held_lock(name: str, namespace: str, holder: str) -> str:
    """A lock ConfigMap held by another (live) run, for an hour."""
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "annotations": {
                    "preevy.dev/lock-holder": holder,
                    "preevy.dev/lock-expires-at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            },
        }
    )


def test_a_change_between_the_first_look_and_the_lock_is_seen_and_applied(kubesim, namespace, env, tmp_path):
    """`up` looks at the environment while it takes the lock; what another run changed meanwhile (here: the
    template hash, as an up of another template would) fails the precondition of the unchanged
    environment's annotate, and the environment is looked at again and applied, not taken as unchanged."""
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "drift"]
    statefulset = up_json(*flags, cwd=project, env=env)["statefulSet"]
    hash_path = "jsonpath={.metadata.annotations.preevy\\.dev/template-hash}"
    template_hash = kubesim.kubectl("get", "sts", statefulset, "-n", namespace, "-o", hash_path).stdout
    assert template_hash
    holder = "`kubectl preevy up` on another-ci (pid 7)"
    kubesim.kubectl("create", "-f", "-", input=held_lock("preevy-lock-default-drift", namespace, holder))

    def change_then_release(proc) -> None:
        kubesim.kubectl(
            "annotate", "sts", statefulset, "-n", namespace, "preevy.dev/template-hash=another", "--overwrite"
        )
        kubesim.kubectl("delete", "configmap", "preevy-lock-default-drift", "-n", namespace)

    up = run_until(
        ["up", *flags, "--timeout", "60s"], f"> waiting for {holder}", project, env, change_then_release
    )
    assert up.returncode == 0, up.stderr
    assert f"updating environment drift in namespace {namespace}" in up.stderr
    assert "is unchanged and ready" not in up.stderr
    assert (
        kubesim.kubectl("get", "sts", statefulset, "-n", namespace, "-o", hash_path).stdout == template_hash
    )
    assert "configmap/preevy-lock-default-drift" not in lock_names(kubesim, namespace)

    # nothing changed since: the next up finds it unchanged, and the precondition holds
    again = preevy("up", *flags, "--timeout", "60s", cwd=project, env=env, timeout=UP_TIMEOUT)
    assert again.returncode == 0, again.stderr
    assert f"environment drift in namespace {namespace} is unchanged and ready" in again.stderr
    preevy("down", *flags, cwd=project, env=env, check=True)


def test_an_instance_name_still_carried_by_leftovers_is_passed_over(kubesim, namespace, env, tmp_path):
    """A new environment's name is derived (its dry run is made with the first one while the cluster is
    read); objects of a `down --no-wait` still carrying that name make `up` choose the next one, and the
    leftovers are not touched."""
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "taken"]
    dry_run = preevy("up", "--dry-run", *flags, cwd=project, env=env, check=True).stdout
    first_name = re.search(r"preevy.dev/instance: (\S+)", dry_run).group(1)
    leftover = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "left-by-a-down",
            "namespace": namespace,
            "labels": {
                "preevy.dev/instance": first_name,
                "preevy.dev/profile-id": "default",
                "preevy.dev/env-id": "taken",
                "preevy.dev/deleted": "true",
            },
        },
        "data": {"kept": "yes"},
    }
    kubesim.kubectl("create", "-f", "-", input=json.dumps(leftover))

    statefulset = up_json(*flags, cwd=project, env=env)["statefulSet"]
    assert statefulset != first_name and statefulset.startswith("default-taken-")
    kept = kubesim.kubectl("get", "configmap", "left-by-a-down", "-n", namespace, "-o", "json").stdout
    assert json.loads(kept)["data"] == {"kept": "yes"}
    assert json.loads(kept)["metadata"]["labels"]["preevy.dev/instance"] == first_name
    preevy("down", *flags, cwd=project, env=env, check=True)


def test_a_foresight_the_model_contradicts_releases_its_lock_and_up_starts_over(
    kubesim, namespace, env, tmp_path, monkeypatch
):
    """`up` takes the lock of the id it foresaw while the model is read; a model naming another project
    leaves no lock behind (then `up` goes the usual way, with the model's id)."""
    from kubectl_preevy import process
    from kubectl_preevy.cli import build_parser
    from kubectl_preevy.commands import up

    project = hello_project(tmp_path / "hello")
    monkeypatch.chdir(project)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    args = build_parser("kubectl preevy", "up").parse_args(["up", "-n", namespace])
    wrong = up._Foreseen("other-main", 'from project "other" and git branch "main"', project_name="other")

    process.journal.reset(verbosity=0)
    current, early = up._load_beside_the_lock(args, 60, wrong)
    assert early is None and current.project is not None and current.project.name == "hello"
    taken = [r.argv for r in process.journal.records if "create" in r.argv and r.returncode == 0]
    assert taken, "the foreseen id's lock was taken"
    assert [n for n in lock_names(kubesim, namespace) if "preevy-lock" in n] == []  # and released
