"""dockerd in a pod just started is waited for inside the pod (docker.answers_inside: one exec asking it with
BusyBox's wget), not through a port-forward, which a refused connection would end."""

import subprocess
import threading
import time

from kubectl_preevy import docker
from kubectl_preevy.kubectl import Kubectl
from tests.e2e import sleeping_docker_pod, stop

POD = "waits"


def test_dockerd_is_waited_for_inside_the_pod_until_it_answers(kubesim, namespace, env):
    pod = sleeping_docker_pod(kubesim, namespace, POD)
    kubectl = Kubectl(None, None, namespace, env)
    assert not docker.answers_inside(kubectl, pod, "docker", time.monotonic() + 1.5, None)  # nothing answers
    assert not docker.answers_inside(kubectl, pod, "docker", time.monotonic() + 30, lambda: True)  # given up

    answered: list[bool] = []
    waiting = threading.Thread(
        target=lambda: answered.append(
            docker.answers_inside(kubectl, pod, "docker", time.monotonic() + 60, None)
        )
    )
    waiting.start()
    # BusyBox httpd answering GET /_ping on dockerd's port stands in for dockerd starting
    kubesim.kubectl("exec", "-n", namespace, pod, "--", "sh", "-c", "mkdir -p /w && echo OK > /w/_ping")
    server = subprocess.Popen(
        [
            "kubectl",
            "exec",
            "-n",
            namespace,
            pod,
            "--",
            "httpd",
            "-f",
            "-p",
            str(docker.DOCKER_PORT),
            "-h",
            "/w",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        waiting.join(60)
        assert answered == [True]
    finally:
        stop(server)
