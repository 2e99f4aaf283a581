"""Faults of the cluster, injected with the emulator's /kubesim/v1/faults: transient errors retried, a failed
first apply leaves nothing, `down` deletes what it can, a stuck rollout is repaired."""

import json
import os
import pathlib
import re
import shlex
import signal

import pytest

from tests.e2e import (
    REPO_ROOT,
    environment_objects,
    error_lines,
    hello_project,
    port_forward_pids,
    preevy,
    run_until,
)

TEMPLATE = REPO_ROOT / "templates" / "default.yaml.njk"
DOCKERD = '"dockerd", "--host=tcp://0.0.0.0:2375", "--host=unix:///var/run/docker.sock"'
UP_TIMEOUT = 180


@pytest.fixture
def project(tmp_path) -> pathlib.Path:
    return hello_project(tmp_path / "hello")


def labelled(kubesim, namespace: str, env_id: str) -> list[str]:
    return environment_objects(kubesim, namespace, f"preevy.dev/env-id={env_id}")


def test_transient_errors_are_retried_with_back_off(kubesim, namespace, project, env):
    flags = ["--id", "flaky", "-n", namespace]
    # every step that is safe to repeat: server-side apply, get/list, and delete
    kubesim.fault_requests("patch", "statefulsets.apps", 500, 2, dry_run=True)
    kubesim.fault_requests("list", "statefulsets.apps", 503, 1)
    kubesim.fault_requests("list", "pods", 429, 1)
    kubesim.fault_requests(
        "patch",
        "configmaps",
        409,
        1,
        message='Operation cannot be fulfilled on configmaps "x": the object has been modified; please apply '
        "your changes to the latest version and try again",
        dry_run=False,
    )
    result = preevy("up", *flags, "--timeout", "60s", cwd=project, env=env, timeout=UP_TIMEOUT)
    assert result.returncode == 0, result.stderr
    retries = [line for line in result.stderr.splitlines() if "retrying in" in line]
    assert any("Internal error occurred" in line for line in retries), result.stderr
    assert any("unable to handle the request" in line for line in retries), result.stderr
    assert any("the object has been modified" in line for line in retries), result.stderr
    assert kubesim.clear_faults()["requests"] == []  # every injected failure was met, and survived

    kubesim.fault_requests("delete", "statefulsets.apps", 500, 1)
    kubesim.fault_requests("list", "persistentvolumeclaims", 504, 1)
    down = preevy("down", *flags, cwd=project, env=env)
    assert down.returncode == 0, down.stderr
    assert "retrying in" in down.stderr
    assert labelled(kubesim, namespace, "flaky") == []


def test_a_failed_first_apply_removes_what_it_created(kubesim, namespace, project, env):
    flags = ["--id", "half-made", "-n", namespace]
    # the dry run passes; the real apply of the StatefulSet is refused after the ConfigMap and the
    # ServiceAccount were created
    kubesim.fault_requests(
        "patch", "statefulsets.apps", 422, 1, message="admission webhook said no", dry_run=False
    )
    result = preevy("up", *flags, cwd=project, env=env)
    assert result.returncode == 1 and len(error_lines(result.stderr)) == 1, result.stderr
    assert "admission webhook said no" in error_lines(result.stderr)[0]
    assert "the first apply failed: removed what it had created of default-half-made-" in result.stderr
    assert labelled(kubesim, namespace, "half-made") == []
    assert not (pathlib.Path(env["XDG_CONFIG_HOME"]) / "kubectl-preevy").exists()  # no profile file either

    again = preevy("up", *flags, "--timeout", "60s", cwd=project, env=env, timeout=UP_TIMEOUT)
    assert again.returncode == 0, again.stderr
    preevy("down", *flags, cwd=project, env=env, check=True)
    assert labelled(kubesim, namespace, "half-made") == []


def test_down_deletes_what_it_can_and_names_the_rest(kubesim, namespace, project, env):
    flags = ["--id", "partly", "-n", namespace]
    first = json.loads(
        preevy(
            "up",
            *flags,
            "-o",
            "json",
            "--timeout",
            "60s",
            cwd=project,
            env=env,
            timeout=UP_TIMEOUT,
            check=True,
        ).stdout
    )
    statefulset = first["statefulSet"]
    # a type the cluster no longer serves (a CRD removed since), and one the user may not delete
    types = json.loads(
        kubesim.kubectl(
            "get", "statefulset", statefulset, "-n", namespace, "-o", "jsonpath={.metadata.annotations}"
        ).stdout
    )["preevy.dev/all-types"]
    widened = json.loads(types) + [{"apiVersion": "example.com/v1", "kind": "Widget"}]
    kubesim.kubectl(
        "annotate", "statefulset", statefulset, "-n", namespace, "--overwrite",
        f"preevy.dev/all-types={json.dumps(widened)}",
    )  # fmt: skip
    kubesim.fault_requests(
        "delete",
        "serviceaccounts",
        403,
        5,
        message=f'serviceaccounts "{statefulset}-sa" is forbidden: User "dev" cannot delete resource '
        f'"serviceaccounts" in API group "" in the namespace "{namespace}"',
    )
    refused = preevy("down", *flags, cwd=project, env=env)
    kubesim.clear_faults()
    assert refused.returncode == 6, refused.stderr
    assert "the cluster no longer serves Widget.v1.example.com" in refused.stderr
    assert error_lines(refused.stderr) == [
        "error: deleted what this identity may; the cluster refused: delete serviceaccounts: have an "
        f"administrator grant `kubectl preevy rbac -n {namespace}`, then run "
        f"`kubectl preevy down --id partly --namespace={namespace} --force` again"
    ]
    assert labelled(kubesim, namespace, "partly") == [f"serviceaccount/{statefulset}-sa"]

    preevy("down", *flags, cwd=project, env=env, check=True)  # the hint, followed
    assert labelled(kubesim, namespace, "partly") == []


def test_a_stuck_rollout_is_repaired(kubesim, namespace, project, env, tmp_path):
    """kubernetes/kubernetes#67250: after an up with a crashing template, the StatefulSet controller never
    replaces the crashing pod of the old revision; up deletes it, and the fixed template rolls out."""
    crashing = tmp_path / "crashing.yaml.njk"
    crashing.write_text(TEMPLATE.read_text().replace(DOCKERD, '"sh", "-c", "echo broken >&2; exit 3"'))
    flags = ["--id", "stuck", "-n", namespace]
    crashed = preevy(
        "up", *flags, "--kube-pod-template", str(crashing), "--timeout", "60s", cwd=project, env=env
    )
    assert crashed.returncode == 1 and "exited with code 3" in crashed.stderr, crashed.stderr  # at once

    fixed = preevy("up", *flags, "--timeout", "60s", cwd=project, env=env, timeout=UP_TIMEOUT)
    assert fixed.returncode == 0, fixed.stderr
    repaired = [line for line in fixed.stderr.splitlines() if "kubernetes/kubernetes#67250" in line]
    assert len(repaired) == 1 and "is not ready and runs the previous template" in repaired[0], fixed.stderr
    preevy("down", *flags, cwd=project, env=env, check=True)
    assert labelled(kubesim, namespace, "stuck") == []


# --- the true reason when a step dies under up, and one more try ----------------------------------


def slow_build(project: pathlib.Path) -> None:
    """A build step that takes a few seconds, so that `docker compose up` is still running when hit."""
    with (project / "Dockerfile").open("a") as dockerfile:
        dockerfile.write('RUN ["/bin/busybox", "sleep", "4"]\n')


def docker_host_pod(kubesim, namespace: str, env_id: str) -> str:
    statefulset = kubesim.kubectl(
        "get", "statefulsets", "-n", namespace, "-l", f"preevy.dev/env-id={env_id}",
        "-o", "jsonpath={.items[0].metadata.name}",
    ).stdout  # fmt: skip
    return f"{statefulset}-0"


def test_a_dropped_forward_during_compose_up_is_said_and_tried_again(kubesim, namespace, project, env):
    slow_build(project)
    flags = ["--id", "dropped", "-n", namespace, "--timeout", "60s"]

    def drop_forward() -> None:
        pod = docker_host_pod(kubesim, namespace, "dropped")
        pids = port_forward_pids(pod)
        assert len(pids) == 1
        os.kill(pids[0], signal.SIGKILL)  # the plugin's kubectl port-forward, by its pid

    result = run_until(["up", *flags], "> docker compose up", project, env, lambda _: drop_forward())
    assert result.returncode == 0, result.stderr
    assert re.search(
        r"warning: the port-forward to the Docker server of pod \S+ dropped during `docker compose up` "
        r"\(.*\): trying once more",
        result.stderr,
    ), result.stderr
    preevy("down", "--id", "dropped", "-n", namespace, cwd=project, env=env, check=True)


@pytest.mark.parametrize(
    "step, during",
    [
        ("> copying files", "(the copy of the files|`docker compose up`)"),
        ("> docker compose up", "`docker compose up`"),
    ],
    ids=["copy", "compose-up"],
)
def test_dockerd_killed_under_up_is_said_and_tried_again(kubesim, namespace, project, env, step, during):
    """dockerd killed while the files are copied (a big file makes the copy last) or while compose runs:
    up says so, waits for the restarted container and does the step again."""
    slow_build(project)
    (project / "site" / "big.bin").write_bytes(os.urandom(64 * 1024 * 1024))
    env_id = f"killed-{step.split()[1]}"
    flags = ["--id", env_id, "-n", namespace]

    def kill_dockerd() -> None:
        kubesim.kill_container(namespace, docker_host_pod(kubesim, namespace, env_id), "docker")

    result = run_until(["up", *flags, "--timeout", "60s"], step, project, env, lambda _: kill_dockerd())
    assert result.returncode == 0, result.stderr
    assert re.search(
        rf"warning: pod \S+ had its container docker restarted during {during}: .*: trying once more",
        result.stderr,
    ), result.stderr
    preevy("down", *flags, cwd=project, env=env, check=True)
    assert labelled(kubesim, namespace, env_id) == []


# --- the copy's small truths -------------------------------------------------------------------------


def test_a_name_with_a_newline_is_copied_and_deleted_and_links_are_no_files(kubesim, namespace, project, env):
    site = project / "site"
    odd = site / "two\nlines.txt"
    odd.write_text("odd\n")
    (site / "latest").symlink_to("index.html")
    flags = ["--id", "odd-names", "-n", namespace, "-o", "json", "--timeout", "60s"]

    def sync() -> dict:
        return json.loads(preevy("up", *flags, cwd=project, env=env, timeout=UP_TIMEOUT, check=True).stdout)[
            "sync"
        ]

    regular = [f for f in site.iterdir() if f.is_file() and not f.is_symlink()]
    assert sync()["files"] == len(regular)  # the link is not counted as a file
    assert sync() == {"files": 0, "bytes": 0, "unchanged": len(regular), "deleted": 0}  # no phantom
    odd.unlink()
    assert sync()["deleted"] == 1
    pod = docker_host_pod(kubesim, namespace, "odd-names")
    listing = kubesim.kubectl(
        "exec", "-n", namespace, pod, "--", "find", "/var/lib/preevy/projects/hello", "-name", "two*"
    ).stdout
    assert listing == ""  # gone in the pod too
    preevy("down", "--id", "odd-names", "-n", namespace, cwd=project, env=env, check=True)


# --- hints ---------------------------------------------------------------------------------------------


def test_the_cleanup_hint_addresses_exactly_this_environment_and_following_it_removes_it(
    kubesim, namespace, project, env, tmp_path
):
    """The hint after a failed `up --id X --profile P --context C --kubeconfig K -n N` carries every one of
    them: followed literally (from another directory, with another current profile), it removes that
    environment and no other."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(pathlib.Path(env["KUBECONFIG"]).read_text())
    preevy("init", "team", cwd=project, env=env, check=True)
    preevy("init", "other", cwd=project, env=env, check=True)  # now the current profile
    crashing = tmp_path / "crashing.yaml.njk"
    crashing.write_text(TEMPLATE.read_text().replace(DOCKERD, '"sh", "-c", "echo broken >&2; exit 3"'))
    flags = ["-n", namespace, "--profile", "team", "--context", "kubesim", "--kubeconfig", str(kubeconfig)]
    bystander = ["up", "--id", "hinted", "-n", namespace, "--timeout", "60s"]  # same id, profile `other`
    preevy(*bystander, cwd=project, env=env, timeout=UP_TIMEOUT, check=True)
    failed = preevy(
        "up", "--id", "hinted", *flags, "--kube-pod-template", str(crashing), "--timeout", "60s",
        cwd=project, env=env, timeout=UP_TIMEOUT,
    )  # fmt: skip
    (line,) = error_lines(failed.stderr)
    hint = re.search(r"remove it with `([^`]+)`", line).group(1)
    assert shlex.split(hint) == [
        "kubectl", "preevy", "down", "--id", "hinted", "--profile", "team",
        f"--kubeconfig={kubeconfig}", "--context=kubesim", f"--namespace={namespace}",
    ]  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    preevy(*shlex.split(hint)[2:], cwd=elsewhere, env=env, check=True)
    left = environment_objects(kubesim, namespace, "preevy.dev/env-id=hinted")
    assert left and all("default-" not in name and "team-" not in name for name in left)  # other's only
    preevy("down", "--id", "hinted", "-n", namespace, cwd=project, env=env, check=True)
