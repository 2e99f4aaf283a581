"""`down` and the lock (issue 13): down looks for the environment while it takes the lock; when another run
held the lock, it looks again once it holds it, so that what that run made meanwhile is deleted too."""

import datetime
import os
import signal

import yaml

from tests.e2e import environment_objects, error_lines, hello_project, preevy, run_until


def made_statefulset(kubesim, flags: list[str], project, env) -> str:
    """`up` with these flags (-n NS --id ID); the environment's StatefulSet as `statefulset.apps/NAME`."""
    preevy("up", *flags, cwd=project, env=env, check=True)
    (statefulset,) = kubesim.kubectl(
        "get", "statefulsets", "-n", flags[1], "-l", f"preevy.dev/env-id={flags[3]}", "-o", "name"
    ).stdout.split()
    return str(statefulset)


def test_a_down_that_waits_for_the_lock_deletes_what_the_holder_made_meanwhile(
    kubesim, namespace, env, tmp_path
):
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "meanwhile"]
    manifest = preevy("up", "--dry-run", *flags, cwd=project, env=env, check=True).stdout
    (statefulset,) = [
        o["metadata"]["name"] for o in yaml.safe_load_all(manifest) if o["kind"] == "StatefulSet"
    ]
    # another run (an `up`) holds the environment's lock, for ten more minutes
    lock = "preevy-lock-default-meanwhile"
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=10)
    kubesim.kubectl("create", "configmap", lock, "-n", namespace)
    kubesim.kubectl(
        "annotate",
        "configmap",
        lock,
        "-n",
        namespace,
        "preevy.dev/lock-holder=`kubectl preevy up` on another-ci (pid 1)",
        f"preevy.dev/lock-expires-at={expires.strftime('%Y-%m-%dT%H:%M:%SZ')}",
    )
    assert environment_objects(kubesim, namespace, f"preevy.dev/instance={statefulset}") == []

    def holder_makes_the_environment_and_releases(proc) -> None:
        kubesim.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
        kubesim.kubectl("delete", "configmap", lock, "-n", namespace)

    down = run_until(
        ["down", *flags], "> waiting for", project, env, holder_makes_the_environment_and_releases
    )
    assert down.returncode == 0, down.stderr
    assert down.stdout == "meanwhile\n"
    assert environment_objects(kubesim, namespace, f"preevy.dev/instance={statefulset}") == []
    assert environment_objects(kubesim, namespace, "preevy.dev/env-id=meanwhile") == []
    assert kubesim.kubectl("get", "configmap", lock, "-n", namespace, "--ignore-not-found").stdout == ""


def test_once_down_deletes_the_docker_host_its_lock_is_released_and_an_up_makes_a_new_instance(
    kubesim, namespace, env, tmp_path
):
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "handover"]
    old = made_statefulset(kubesim, flags, project, env)
    (claim,) = kubesim.kubectl(
        "get", "pvc", "-n", namespace, "-l", f"preevy.dev/instance={old.split('/')[1]}", "-o", "name"
    ).stdout.split()
    # a finalizer keeps the volume claim and the StatefulSet (and so `down`'s wait) until the test removes it
    hold = '{"metadata":{"finalizers":["test.preevy.dev/hold"]}}'
    for held in (claim, old):
        kubesim.kubectl("patch", held, "-n", namespace, "--type=merge", "-p", hold)
    lock = "preevy-lock-default-handover"
    made: list[str] = []

    def up_while_down_waits(proc) -> None:
        run_until_gone = datetime.datetime.now() + datetime.timedelta(seconds=60)
        while kubesim.kubectl("get", "configmap", lock, "-n", namespace, "--ignore-not-found").stdout:
            assert datetime.datetime.now() < run_until_gone, "down kept its lock while it waited"
        assert proc.poll() is None  # still waiting for the claim
        # the StatefulSet carries deletionTimestamp (and no other mark): listed as being deleted
        listed = preevy("ls", "-n", namespace, "-o", "json", cwd=project, env=env, check=True).stdout
        assert [(i["instance"], i["state"]) for i in yaml.safe_load(listed)["items"]] == [
            (old.split("/")[1], "deleting")
        ]
        again = preevy("up", *flags, cwd=project, env=env, timeout=180)
        made.append(again.stderr)
        assert again.returncode == 0, again.stderr
        for held in (claim, old):
            kubesim.kubectl(
                "patch", held, "-n", namespace, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
            )

    down = run_until(["down", *flags], "> deleting", project, env, up_while_down_waits)
    assert down.returncode == 0, down.stderr
    assert made, "the up did not run"
    assert environment_objects(kubesim, namespace, f"preevy.dev/instance={old.split('/')[1]}") == []
    (new,) = kubesim.kubectl(
        "get", "statefulsets", "-n", namespace, "-l", "preevy.dev/env-id=handover", "-o", "name"
    ).stdout.split()
    assert new != old
    listed = preevy("ls", "-n", namespace, "-o", "json", cwd=project, env=env, check=True).stdout
    assert [(i["envId"], i["state"]) for i in yaml.safe_load(listed)["items"]] == [("handover", "running")]
    preevy("down", *flags, cwd=project, env=env, check=True)


def test_a_down_interrupted_while_it_waits_says_how_to_finish_and_the_next_down_does(
    kubesim, namespace, env, tmp_path
):
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "cut"]
    statefulset = made_statefulset(kubesim, flags, project, env)
    instance = statefulset.split("/")[1]
    kubesim.kubectl(
        "patch",
        statefulset,
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":["test/hold"]}}',
    )
    lock = "preevy-lock-default-cut"

    def interrupt_once_the_lock_is_released(proc) -> None:
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=60)
        while kubesim.kubectl("get", "configmap", lock, "-n", namespace, "--ignore-not-found").stdout:
            assert datetime.datetime.now() < deadline, "down kept its lock while it waited"
        assert proc.poll() is None  # waiting for the StatefulSet
        os.killpg(proc.pid, signal.SIGINT)

    down = run_until(["down", *flags], "> deleting", project, env, interrupt_once_the_lock_is_released)
    assert down.returncode == 130, down.stderr
    assert error_lines(down.stderr) == [
        f"error: interrupted: run `kubectl preevy down --id cut --namespace={namespace} --force` to finish "
        "deleting the environment"
    ]
    assert statefulset in environment_objects(kubesim, namespace, f"preevy.dev/instance={instance}")

    def release_the_hold(proc) -> None:
        kubesim.kubectl(
            "patch", statefulset, "-n", namespace, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
        )

    # the hint, followed while the deletion still waits: that down finds the instance being deleted
    again = run_until(["down", *flags, "--force"], "> deleting", project, env, release_the_hold)
    assert again.returncode == 0, again.stderr
    assert again.stdout == "cut\n"
    assert environment_objects(kubesim, namespace, "preevy.dev/env-id=cut") == []
    # the hint, followed once the cluster has finished the deletion by itself: nothing left is success
    finished = preevy("down", *flags, "--force", cwd=project, env=env)
    assert finished.returncode == 0 and error_lines(finished.stderr) == [], finished.stderr
