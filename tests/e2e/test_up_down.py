"""up, up again, dry run, refused and forced recreation, down: the life of one environment, as a user sees it."""

import json
import pathlib
import signal
import threading
import time

import pytest
import yaml

from tests.e2e import (
    REPO_ROOT,
    UP_TIMEOUT,
    alive,
    connect,
    environment_objects,
    error_lines,
    hello_project,
    http_get,
    port_forward_pids,
    preevy,
    remote,
    start,
    stop,
    up_json,
)

REMOTE_SITE = "/var/lib/preevy/projects/hello/relative/site"


def uid(kubesim, namespace: str, kind: str, name: str) -> str:
    return kubesim.kubectl("get", kind, name, "-n", namespace, "-o", "jsonpath={.metadata.uid}").stdout


def test_up_serves_the_project_updates_it_in_place_and_down_removes_every_trace(
    kubesim, namespace, env, tmp_path
):
    project = hello_project(tmp_path / "hello")
    site = project / "site"
    (site / "about.html").write_text("<p>about</p>\n")
    (site / "keep.txt").write_text("unchanged\n")
    flags = ["-n", namespace, "--id", "hello-e2e"]

    first = up_json(*flags, cwd=project, env=env)
    assert (first["apiVersion"], first["kind"], first["envId"], first["namespace"]) == (
        "kubectl-preevy/v1",
        "Environment",
        "hello-e2e",
        namespace,
    )
    assert sorted((s["service"], s["port"]) for s in first["services"]) == [("counter", 8081), ("web", 8080)]
    assert first["sync"] == {
        "files": 3,
        "bytes": sum(f.stat().st_size for f in site.iterdir()),
        "unchanged": 0,
        "deleted": 0,
    }
    statefulset = first["statefulSet"]
    pod, claim = f"{statefulset}-0", f"data-{statefulset}-0"
    pod_uid, claim_uid = uid(kubesim, namespace, "pod", pod), uid(kubesim, namespace, "pvc", claim)
    keep_mtime = remote(kubesim, namespace, pod, "stat", "-c", "%Y", f"{REMOTE_SITE}/keep.txt").stdout

    served = connect(flags, project, env, services=2)
    try:
        assert http_get(served.urls["web"]) == (site / "index.html").read_bytes()
        assert http_get(served.urls["web"] + "/keep.txt") == b"unchanged\n"
        assert http_get(served.urls["counter"]).strip() == b"1"
    finally:
        assert stop(served.proc, signal.SIGINT) == 0  # Ctrl-C
    assert port_forward_pids(pod) == []

    listed = json.loads(preevy("ls", "-n", namespace, "-o", "json", cwd=tmp_path, env=env, check=True).stdout)
    assert [(e["envId"], e["instance"], e["ready"]) for e in listed["items"]] == [
        ("hello-e2e", statefulset, "1/1")
    ]
    kubesim.kubectl("label", "sts", statefulset, "-n", namespace, "preevy.dev/deleted=true")
    being_deleted = preevy("ls", "-n", namespace, cwd=tmp_path, env=env, check=True).stdout
    assert being_deleted.splitlines()[1].split()[3] == "deleting"
    kubesim.kubectl("label", "sts", statefulset, "-n", namespace, "preevy.dev/deleted-")

    # A second up: only the edited file travels, the deleted one goes, the pod and its volume stay.
    (site / "index.html").write_text("<h1>changed</h1>\n")
    (site / "about.html").unlink()
    second = up_json(*flags, cwd=project, env=env)
    assert second["statefulSet"] == statefulset
    assert second["sync"] == {"files": 1, "bytes": len("<h1>changed</h1>\n"), "unchanged": 1, "deleted": 1}
    assert (uid(kubesim, namespace, "pod", pod), uid(kubesim, namespace, "pvc", claim)) == (
        pod_uid,
        claim_uid,
    )
    assert remote(kubesim, namespace, pod, "stat", "-c", "%Y", f"{REMOTE_SITE}/keep.txt").stdout == keep_mtime
    assert (
        remote(kubesim, namespace, pod, "test", "-e", f"{REMOTE_SITE}/about.html", check=False).returncode
        == 1
    )
    served = connect(flags, project, env, services=2)
    try:
        assert http_get(served.urls["web"]) == b"<h1>changed</h1>\n"
        assert http_get(served.urls["counter"]).strip() == b"1"  # its volume and container were kept
    finally:
        assert stop(served.proc) == 0

    # --dry-run prints what up would apply (the same instance) and changes nothing.
    version = kubesim.kubectl(
        "get", "sts", statefulset, "-n", namespace, "-o", "jsonpath={.metadata.resourceVersion}"
    ).stdout
    dry = preevy("up", "--dry-run", *flags, cwd=project, env=env, check=True)
    objects = list(yaml.safe_load_all(dry.stdout))
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "StatefulSet"] == [statefulset]
    assert all(o["metadata"]["labels"]["preevy.dev/env-id"] == "hello-e2e" for o in objects)
    assert (
        kubesim.kubectl(
            "get", "sts", statefulset, "-n", namespace, "-o", "jsonpath={.metadata.resourceVersion}"
        ).stdout
        == version
    )
    preevy("up", "--dry-run", "-n", namespace, "--id", "never-applied", cwd=project, env=env, check=True)
    assert environment_objects(kubesim, namespace, "preevy.dev/env-id=never-applied") == []

    # A change Kubernetes cannot make in place is refused, and the volume is kept...
    refused = preevy("up", *flags, "--kube-pod-storage-size", "6", cwd=project, env=env)
    assert refused.returncode == 1, refused.stderr
    assert len(error_lines(refused.stderr)) == 1 and "--recreate" in refused.stderr
    assert uid(kubesim, namespace, "pvc", claim) == claim_uid

    # ... unless --recreate: a new instance with the new volume, the old one gone.
    recreated = up_json(*flags, "--kube-pod-storage-size", "6", "--recreate", cwd=project, env=env)
    assert recreated["statefulSet"] != statefulset
    assert environment_objects(kubesim, namespace, f"preevy.dev/instance={statefulset}") == []
    new_claim = f"data-{recreated['statefulSet']}-0"
    assert (
        kubesim.kubectl(
            "get", "pvc", new_claim, "-n", namespace, "-o", "jsonpath={.spec.resources.requests.storage}"
        ).stdout
        == "6Gi"
    )
    assert recreated["sync"]["files"] == 2

    new_pod = f"{recreated['statefulSet']}-0"
    pids = kubesim.pod_pids(namespace, new_pod)
    assert pids
    down = preevy("down", *flags, cwd=project, env=env, check=True)
    assert down.stdout.strip() == "hello-e2e"
    assert environment_objects(kubesim, namespace, "preevy.dev/env-id=hello-e2e") == []
    assert environment_objects(kubesim, namespace, f"preevy.dev/instance={recreated['statefulSet']}") == []
    assert not [pid for pid in pids if alive(pid)]
    kept = pathlib.Path(env["XDG_CACHE_HOME"]) / "kubectl-preevy" / "sync"
    assert list(kept.iterdir()) == []  # what this machine kept of the pods' copies went with them

    again = preevy("down", *flags, cwd=project, env=env)
    assert again.returncode == 1 and error_lines(again.stderr) == [
        f"error: no environment hello-e2e in namespace {namespace}: see `kubectl preevy ls --namespace={namespace}`, or pass --force to ignore"
    ]
    forced = preevy("down", *flags, "--force", cwd=project, env=env)
    assert (forced.returncode, forced.stdout) == (0, "")


def test_interrupted_up_leaves_no_forward_and_the_next_up_completes(kubesim, namespace, env, tmp_path):
    """Also the client-side apply path: `kubectl create` of a new environment, `kubectl apply` of an existing one."""
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "interrupted", "--no-kube-pod-server-side-apply"]
    proc = start(["up", *flags, "--timeout", "60s"], project, env)
    try:
        _wait_for_line(proc, "docker compose up", timeout=UP_TIMEOUT)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130
    finally:
        stop(proc)
    (statefulset,) = kubesim.kubectl(
        "get",
        "sts",
        "-n",
        namespace,
        "-l",
        "preevy.dev/env-id=interrupted",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ).stdout.split()
    assert port_forward_pids(f"{statefulset}-0") == []
    assert (
        kubesim.kubectl(
            "get",
            "configmap",
            "preevy-lock-default-interrupted",
            "-n",
            namespace,
            "--ignore-not-found",
            "-o",
            "name",
        ).stdout
        == ""
    )  # released on the way out

    completed = up_json(*flags, cwd=project, env=env)
    assert completed["statefulSet"] == statefulset
    assert port_forward_pids(f"{statefulset}-0") == []
    preevy("down", *flags, cwd=project, env=env, check=True)


def _wait_for_line(proc, text: str, timeout: float) -> None:
    """Read proc's stderr until a line holds text; the rest is drained so that proc never blocks on it."""
    deadline = time.monotonic() + timeout
    for line in proc.stderr:
        if text in line:
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return
        assert time.monotonic() < deadline, f"no {text!r} on stderr within {timeout}s"
    raise AssertionError(f"up exited {proc.wait()} before printing {text!r}")


def test_down_removes_what_an_interrupted_down_left(kubesim, namespace, env, tmp_path):
    """The StatefulSet is gone but its claim, ConfigMap... remain: down finds them by their labels."""
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "half-deleted"]
    manifest = preevy("up", "--dry-run", *flags, cwd=project, env=env, check=True).stdout
    kubesim.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    (statefulset,) = [
        o["metadata"]["name"] for o in yaml.safe_load_all(manifest) if o["kind"] == "StatefulSet"
    ]
    kubesim.kubectl(
        "wait",
        "-n",
        namespace,
        "--for=jsonpath={.status.phase}=Bound",
        f"pvc/data-{statefulset}-0",
        "--timeout=60s",
        timeout=90,
    )
    kubesim.kubectl("delete", "-n", namespace, "sts", statefulset)
    assert environment_objects(kubesim, namespace, f"preevy.dev/instance={statefulset}")

    down = preevy("down", *flags, cwd=project, env=env, check=True)
    assert down.stdout.strip() == "half-deleted"
    assert environment_objects(kubesim, namespace, f"preevy.dev/instance={statefulset}") == []


@pytest.mark.parametrize("command", [["down"], ["purge", "--yes", "--wait"]], ids=["down", "purge"])
def test_down_removes_a_first_apply_interrupted_beside_the_environment(
    kubesim, namespace, env, tmp_path, command
):
    """A first apply killed before it made its StatefulSet leaves objects of its instance name; the next `up`
    makes the environment under another name (test_lock.py). `down` (and `purge`) removes both: every
    instance the environment's objects carry."""
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "beside"]
    preevy("up", *flags, cwd=project, env=env, check=True)
    orphan = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": "default-beside-zzzzz-sa",
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "kubectl-preevy",
                "preevy.dev/instance": "default-beside-zzzzz",
                "preevy.dev/profile-id": "default",
                "preevy.dev/env-id": "beside",
            },
        },
    }
    kubesim.kubectl("create", "-f", "-", input=json.dumps(orphan))

    deleted = preevy(
        *command, *(flags if command == ["down"] else flags[:2]), cwd=project, env=env, check=True
    )
    assert "default-beside-zzzzz" in deleted.stderr  # named as it goes
    assert environment_objects(kubesim, namespace, "preevy.dev/env-id=beside") == []


def test_a_changed_template_is_applied_in_place_and_images_and_volumes_survive(
    kubesim, namespace, env, tmp_path
):
    """Also Preevy's default files: compose.preevy.yaml is read first, compose.override.yaml is not read next to
    a compose.yaml."""
    project = hello_project(tmp_path / "hello")
    (project / "compose.preevy.yaml").write_text(
        "services:\n  web:\n    ports: ['8090:8080']\n    secrets: [token]\n    volumes: ['./motd.txt:/etc/motd:ro']\n"
        "secrets:\n  token:\n    file: ./token.txt\n"
    )
    (project / "token.txt").write_text("s3cret\n")
    (project / "motd.txt").write_text("welcome\n")
    (project / "compose.override.yaml").write_text("services:\n  counter:\n    ports: ['9999:8081']\n")
    template = tmp_path / "preview.yaml.njk"
    text = (REPO_ROOT / "templates" / "default.yaml.njk").read_text()
    template.write_text(text)
    flags = ["-n", namespace, "--id", "in-place", "--kube-pod-template", str(template)]

    first = up_json(*flags, cwd=project, env=env)
    assert sorted(s["url"] for s in first["services"]) == [
        "http://localhost:8080",
        "http://localhost:8081",
        "http://localhost:8090",
    ]
    statefulset = first["statefulSet"]
    pod, claim = f"{statefulset}-0", f"data-{statefulset}-0"
    pod_uid, claim_uid = uid(kubesim, namespace, "pod", pod), uid(kubesim, namespace, "pvc", claim)
    image = remote(
        kubesim, namespace, pod, "docker", "image", "inspect", "hello-web", "--format", "{{.Id}}"
    ).stdout
    assert (
        remote(
            kubesim, namespace, pod, "docker", "exec", "hello-web-1", "cat", "/run/secrets/token", "/etc/motd"
        ).stdout
        == "s3cret\nwelcome\n"
    )  # a secret file and a single-file bind mount travel
    assert (
        remote(kubesim, namespace, pod, "docker", "exec", "hello-counter-1", "cat", "/data/count").stdout
        == "1\n"
    )

    # a new label and a bigger memory request: the StatefulSet is changed, its pod replaced, its volume kept
    component = "    app.kubernetes.io/component: docker-host\n"
    assert "memory: 256Mi" in text and component in text
    template.write_text(
        text.replace("memory: 256Mi", "memory: 300Mi").replace(component, component + "    tier: preview\n")
    )
    second = up_json(*flags, cwd=project, env=env)
    assert second["statefulSet"] == statefulset
    assert (
        kubesim.kubectl(
            "get", "sts", statefulset, "-n", namespace, "-o", "jsonpath={.metadata.labels.tier}"
        ).stdout
        == "preview"
    )
    assert (
        kubesim.kubectl(
            "get",
            "pod",
            pod,
            "-n",
            namespace,
            "-o",
            "jsonpath={.spec.containers[0].resources.requests.memory}",
        ).stdout
        == "300Mi"
    )
    assert uid(kubesim, namespace, "pod", pod) != pod_uid
    assert uid(kubesim, namespace, "pvc", claim) == claim_uid
    assert (
        remote(
            kubesim, namespace, pod, "docker", "image", "inspect", "hello-web", "--format", "{{.Id}}"
        ).stdout
        == image
    )  # not built again: the image survived
    assert (
        remote(kubesim, namespace, pod, "docker", "exec", "hello-counter-1", "cat", "/data/count").stdout
        == "2\n"
    )

    # down with a timeout: an object that does not go (a finalizer here) is named, and a later down finishes
    kubesim.kubectl(
        "patch",
        "configmap",
        f"{statefulset}-dc",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"metadata": {"finalizers": ["example.com/keep"]}}',
    )
    stuck = preevy("down", *flags, "--timeout", "3s", cwd=project, env=env)
    assert stuck.returncode == 5 and error_lines(stuck.stderr) == [
        f"error: objects of {statefulset} still exist after 3s: see `kubectl get all,pvc -n {namespace} -l "
        f"preevy.dev/instance={statefulset}`, and run `kubectl preevy down --id in-place "
        f"--namespace={namespace} --force` again"
    ]
    assert environment_objects(kubesim, namespace, f"preevy.dev/instance={statefulset}") == [
        f"configmap/{statefulset}-dc"
    ]
    assert preevy("down", *flags, "--no-wait", cwd=project, env=env, check=True).stdout == "in-place\n"
    kubesim.kubectl(
        "patch",
        "configmap",
        f"{statefulset}-dc",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"metadata": {"finalizers": null}}',
    )
    assert environment_objects(kubesim, namespace, f"preevy.dev/instance={statefulset}") == []


def test_without_id_up_takes_project_and_branch_and_so_does_the_next_up_and_down(
    kubesim, namespace, env, tmp_path
):
    """The CI default: no --id. With a project name the files tell plainly, `up` takes its lock while
    `docker compose config` reads the model; with one to interpolate it reads the model first. Both reach
    the same environment as the model says, and the next `up` and `down` find it."""
    ci = {**env, "GITHUB_ACTIONS": "true", "GITHUB_HEAD_REF": "Feature/X"}
    plain = hello_project(tmp_path / "Shop App")
    first = preevy("up", "-n", namespace, "-o", "json", cwd=plain, env=ci, timeout=UP_TIMEOUT, check=True)
    assert json.loads(first.stdout)["envId"] == "shopapp-feature-x"
    assert first.stderr.count("environment id: shopapp-feature-x (") == 1, first.stderr
    again = preevy("up", "-n", namespace, "-o", "json", cwd=plain, env=ci, timeout=UP_TIMEOUT, check=True)
    assert json.loads(again.stdout)["statefulSet"] == json.loads(first.stdout)["statefulSet"]

    interpolated = hello_project(tmp_path / "other")
    compose_file = interpolated / "compose.yaml"
    compose_file.write_text("name: ${SHOP_NAME}\n" + compose_file.read_text())
    named = {**ci, "SHOP_NAME": "shop"}
    other = preevy("up", "-n", namespace, "-o", "json", cwd=interpolated, env=named, timeout=UP_TIMEOUT)
    assert other.returncode == 0, other.stderr
    assert json.loads(other.stdout)["envId"] == "shop-feature-x"

    preevy("down", "-n", namespace, cwd=plain, env=ci, check=True)
    preevy("down", "-n", namespace, cwd=interpolated, env=named, check=True)
    assert environment_objects(kubesim, namespace, "preevy.dev/env-id=shopapp-feature-x") == []
    assert environment_objects(kubesim, namespace, "preevy.dev/env-id=shop-feature-x") == []
