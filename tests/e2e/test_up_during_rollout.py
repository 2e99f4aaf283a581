"""A fresh `up` copies the files and stores the model while the rollout is waited for, as soon as the pod's
container runs (issue 13). What was done there is used only in the pod that turns Ready: a pod replaced
before it is Ready gets the copy again, as a first one (no retry said), with the files as they are then."""

import pathlib
import re
import time

from tests.e2e import hello_project, preevy, remote, run_until, serves_then_down, start, stop

MODEL = "/var/lib/preevy/projects/hello/docker-compose.yaml"


def pod_uid(kubesim, namespace: str, pod: str) -> str:
    return kubesim.kubectl(
        "get", "pod", pod, "-n", namespace, "-o", "jsonpath={.metadata.uid}", check=False
    ).stdout.strip()  # fmt: skip


def wait_for(condition, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.3)


def held_unready(kubesim, namespace: str, env, tmp_path, env_id: str) -> tuple[pathlib.Path, list[str], str]:
    """A hello project, its flags, and the pod its environment will have (as `up --dry-run` names it), held
    unready: the rollout waits until it is released."""
    project = hello_project(tmp_path / "hello")
    flags = ["--id", env_id, "-n", namespace]
    manifest = preevy("up", "--dry-run", *flags, cwd=project, env=env, check=True).stdout
    found = re.search(r"kind: StatefulSet\nmetadata:\n(?:  .*\n)*?  name: (\S+)", manifest)
    assert found, manifest
    pod = f"{found.group(1)}-0"
    kubesim.hold_unready(namespace, pod)
    return project, flags, pod


def test_a_pod_replaced_before_it_is_ready_gets_the_copy_again(kubesim, namespace, env, tmp_path):
    project, flags, pod = held_unready(kubesim, namespace, env, tmp_path, "replaced")
    up = start(["up", *flags, "--timeout", "180s"], project, env)
    try:
        stored = lambda: remote(kubesim, namespace, pod, "test", "-f", MODEL, check=False).returncode == 0  # noqa: E731
        wait_for(stored, "stored the model while the pod was not Ready")
        first = pod_uid(kubesim, namespace, pod)
        (project / "site" / "index.html").write_text("<p>changed while the pod was replaced</p>\n")
        kubesim.kubectl("delete", "pod", pod, "-n", namespace, "--wait=true")
        wait_for(lambda: pod_uid(kubesim, namespace, pod) not in ("", first), "replaced the pod")
        kubesim.hold_unready(namespace, pod, hold=False)
        _, stderr = up.communicate(timeout=180)
    finally:
        if up.poll() is None:
            stop(up)
    assert up.returncode == 0, stderr
    assert "trying once more" not in stderr, stderr
    serves_then_down(project, flags, env, b"<p>changed while the pod was replaced</p>\n")


def test_a_new_environment_runs_its_services_while_the_pod_is_confirmed_ready(
    kubesim, namespace, env, tmp_path
):
    """`docker compose up` follows the copy at once (the kubelet marks the pod Ready a probe period or more
    after dockerd answers): the services start while the pod is held unready, and up ends once it is Ready."""
    project, flags, pod = held_unready(kubesim, namespace, env, tmp_path, "early")
    ready_when_started: list[str] = []

    def release(_) -> None:
        ready_when_started.append(
            kubesim.kubectl("get", "pod", pod, "-n", namespace,
                            "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}").stdout
        )  # fmt: skip
        kubesim.hold_unready(namespace, pod, hold=False)

    result = run_until(
        ["up", *flags, "--timeout", "180s"], " Container hello-web-1  Started", project, env, release
    )
    assert result.returncode == 0, result.stderr
    assert ready_when_started == ["False"], result.stderr
    serves_then_down(project, flags, env, (project / "site" / "index.html").read_bytes())


def test_a_guess_of_new_or_existing_that_is_wrong_changes_nothing_but_the_order(
    kubesim, namespace, env, tmp_path
):
    """Whether up expects a new environment is a guess from this machine's copy records: an environment
    made from another machine (no record here) is found unchanged all the same; one removed behind this
    machine's back (its record still here) is made anew all the same."""
    project = hello_project(tmp_path / "hello")
    flags = ["--id", "guess", "-n", namespace]
    preevy("up", *flags, cwd=project, env=env, check=True)
    elsewhere = dict(env, XDG_CACHE_HOME=str(tmp_path / "another-machine-cache"))
    again = preevy("up", *flags, cwd=project, env=elsewhere, check=True)
    assert f"environment guess in namespace {namespace} is unchanged and ready" in again.stderr, again.stderr

    # removed with kubectl, not `down`: this machine still keeps its copy record of the pod
    kubesim.kubectl("delete", "statefulsets,pods,pvc,configmaps,serviceaccounts,roles,rolebindings", "-n", namespace,
                    "-l", "preevy.dev/env-id=guess", "--wait=true")  # fmt: skip
    made = preevy("up", *flags, cwd=project, env=env, check=True)
    assert f"creating environment guess in namespace {namespace}" in made.stderr, made.stderr
    serves_then_down(project, flags, env, (project / "site" / "index.html").read_bytes())
