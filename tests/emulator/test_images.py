"""Images on the kubesim node: pull failures, the docker images' BusyBox userland, exec into a
container that is not running, and a fresh /run for every container instance."""

from __future__ import annotations

import json
import os
import shutil

import yaml

from tests.emulator.waiting import until


def _pod(kubesim, ns, name):
    return json.loads(kubesim.kubectl("get", "pod", name, "-n", ns, "-o", "json").stdout)


def _waiting(kubesim, ns, name):
    statuses = _pod(kubesim, ns, name).get("status", {}).get("containerStatuses") or [{}]
    return statuses[0].get("state", {}).get("waiting") or {}


def _events(kubesim, ns, name):
    out = kubesim.kubectl(
        "get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}", "-o", "json"
    ).stdout  # fmt: skip
    return json.loads(out)["items"]


def test_an_image_that_cannot_exist_is_err_image_pull_then_back_off(kubesim, namespace):
    kubesim.kubectl("run", "nope", "-n", namespace, "--image=nope-not-an-image:1", "--", "sleep", "60")
    not_found = (
        'rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/library/nope-not-an-image:1": '
        'failed to resolve reference "docker.io/library/nope-not-an-image:1": '
        "docker.io/library/nope-not-an-image:1: not found"
    )
    waiting = until(lambda: _waiting(kubesim, namespace, "nope").get("reason") == "ImagePullBackOff"
                     and _waiting(kubesim, namespace, "nope"), "ImagePullBackOff")  # fmt: skip
    assert waiting["message"] == f'Back-off pulling image "nope-not-an-image:1": ErrImagePull: {not_found}'
    pod = _pod(kubesim, namespace, "nope")
    assert pod["status"]["phase"] == "Pending"
    seen = {(e["type"], e["reason"], e["message"]) for e in _events(kubesim, namespace, "nope")}
    assert {
        ("Normal", "Pulling", 'Pulling image "nope-not-an-image:1"'),
        ("Warning", "Failed", f'Failed to pull image "nope-not-an-image:1": {not_found}'),
        ("Warning", "Failed", "Error: ErrImagePull"),
        ("Normal", "BackOff", 'Back-off pulling image "nope-not-an-image:1"'),
        ("Warning", "Failed", "Error: ImagePullBackOff"),
    } <= seen
    table = kubesim.kubectl("get", "pod", "nope", "-n", namespace).stdout
    assert "ImagePullBackOff" in table or "ErrImagePull" in table


def test_an_image_marked_missing_fails_and_pulls_once_it_exists(kubesim, namespace):
    image = f"ghcr.io/example/{namespace}:v1"
    kubesim.mark_image(image, exists=False)
    kubesim.kubectl("run", "app", "-n", namespace, f"--image={image}", "--", "sleep", "3600")
    until(
        lambda: _waiting(kubesim, namespace, "app").get("reason") in ("ErrImagePull", "ImagePullBackOff"),
        "pull error",
    )
    kubesim.mark_image(image, exists=True)
    kubesim.kubectl("wait", "--for=condition=Ready", "pod/app", "-n", namespace, "--timeout=60s")


def test_docker_images_have_a_busybox_userland_first_in_path(kubesim, namespace):
    kubesim.kubectl(
        "run", "dind", "-n", namespace, "--image=docker:24.0.7-dind-alpine3.18", "--", "sleep", "3600"
    )
    kubesim.kubectl("run", "plain", "-n", namespace, "--image=debian:12", "--", "sleep", "3600")
    for pod in ("dind", "plain"):
        kubesim.kubectl("wait", "--for=condition=Ready", f"pod/{pod}", "-n", namespace, "--timeout=60s")
    script = 'for c in sh tar find stat; do readlink -f "$(which $c)"; done; which sh; tar --version 2>&1 | head -1'
    out = kubesim.kubectl("exec", "dind", "-n", namespace, "--", "sh", "-c", script).stdout.splitlines()
    assert out[:4] == [os.path.realpath("/bin/busybox")] * 4
    assert out[4:] == ["/usr/local/sbin/sh", "tar (busybox) " + out[5].split()[-1]]
    # what the plugin's file sync relies on, under BusyBox as in the real image
    listing = kubesim.kubectl(
        "exec", "dind", "-n", namespace, "--", "sh", "-c",
        "mkdir -p /tmp/d && echo hi > /tmp/d/f && find /tmp/d -type f | xargs stat -c '%s %n' && "
        "tar cf - -C /tmp d | tar tf -",
    ).stdout  # fmt: skip
    assert listing.splitlines() == ["3 /tmp/d/f", "d/", "d/f"]
    # compressors: what docker:dind has (BusyBox gzip, xz), not the host's zstd or lz4
    found = kubesim.kubectl(
        "exec", "dind", "-n", namespace, "--", "sh", "-c",
        "for c in gzip gunzip xz zstd unzstd lz4; do command -v $c >/dev/null && echo $c; done; true",
    ).stdout.split()  # fmt: skip
    assert [c for c in found if c not in ("xz",)] == ["gzip", "gunzip"]  # xz where the host has it
    # the host has them (scripts/setup.sh installs them), so the mask above is what hides them
    assert shutil.which("zstd") and shutil.which("lz4"), "run scripts/setup.sh: it installs zstd and lz4"
    assert kubesim.kubectl("exec", "plain", "-n", namespace, "--", "sh", "-c", "command -v zstd").stdout
    # dockerd and the docker CLI stay the host's
    assert kubesim.kubectl(
        "exec", "dind", "-n", namespace, "--", "sh", "-c", "command -v dockerd"
    ).stdout.strip()
    other = kubesim.kubectl(
        "exec", "plain", "-n", namespace, "--", "sh", "-c", "readlink -f $(command -v tar)"
    )
    assert other.stdout.strip() != "/usr/bin/busybox"  # other images keep the host's userland


def test_exec_into_a_container_that_is_not_running_fails_as_on_a_kubelet(kubesim, namespace):
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "crashy"},
        "spec": {
            "containers": [{"name": "main", "image": "busybox:1.36", "command": ["sh", "-c", "exit 3"]}]
        },
    }
    kubesim.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(pod))
    until(
        lambda: _waiting(kubesim, namespace, "crashy").get("reason") == "CrashLoopBackOff", "CrashLoopBackOff"
    )
    res = kubesim.kubectl("exec", "crashy", "-n", namespace, "--", "true", check=False)
    assert (res.returncode, res.stderr.strip()) == (
        1,
        'error: unable to upgrade connection: container not found ("main")',
    )


def test_a_restarted_container_gets_a_fresh_run(kubesim, namespace):
    kubesim.kubectl("run", "d", "-n", namespace, "--image=docker:dind", "--", "sleep", "3600")
    kubesim.kubectl("wait", "--for=condition=Ready", "pod/d", "-n", namespace, "--timeout=60s")
    kubesim.kubectl("exec", "d", "-n", namespace, "--", "sh", "-c", "echo 123 > /run/docker.pid")
    assert kubesim.kubectl("exec", "d", "-n", namespace, "--", "cat", "/run/docker.pid").stdout == "123\n"
    kubesim.kill_container(namespace, "d", "d")

    def restarted():
        statuses = _pod(kubesim, namespace, "d")["status"].get("containerStatuses") or [{}]
        return statuses[0].get("restartCount", 0) >= 1 and "running" in statuses[0].get("state", {})

    until(restarted, "the restart")
    res = kubesim.kubectl("exec", "d", "-n", namespace, "--", "ls", "-A", "/run", check=False)
    assert "docker.pid" not in res.stdout and res.returncode == 0


def test_an_oom_kill_is_recorded_as_the_kernel_s(kubesim, namespace):
    kubesim.kubectl("run", "hog", "-n", namespace, "--image=busybox:1.36", "--", "sleep", "3600")
    kubesim.kubectl("wait", "--for=condition=Ready", "pod/hog", "-n", namespace, "--timeout=60s")
    kubesim.kill_container(namespace, "hog", "hog", reason="OOMKilled")

    def last_terminated():
        statuses = _pod(kubesim, namespace, "hog")["status"].get("containerStatuses") or [{}]
        return statuses[0].get("lastState", {}).get("terminated")

    terminated = until(last_terminated, "the OOM kill recorded")
    assert (terminated["reason"], terminated["exitCode"]) == ("OOMKilled", 137)
