"""`down` and the lock (issue 13): down looks for the environment while it takes the lock; when another run
held the lock, it looks again once it holds it, so that what that run made meanwhile is deleted too."""

import datetime

import yaml

from tests.e2e import environment_objects, hello_project, preevy, run_until


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
