"""The Docker server in the pod, reached through a port-forward: its API and `docker compose`."""

import dataclasses
import http.client
import json
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from kubectl_preevy import compose, messages, process
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.kubectl import Kubectl
from kubectl_preevy.portforward import PortForward

DOCKER_PORT = 2375
PING_TIMEOUT_SECONDS = 60
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"
PREEVY_AGENT_SERVICE = "preevy_proxy"  # Preevy's tunnel agent, a service Preevy adds to the project
PREEVY_LABEL_PREFIX = "preevy."


@dataclasses.dataclass(frozen=True)
class PublishedPort:
    """A service's container port published on the Docker host (the pod)."""

    service: str
    port: int  # the container's port
    published: int  # the port on the Docker host (the pod)


def compose_environ(environ: Mapping[str, str], port: int) -> dict[str, str]:
    """The caller's environment talking to the forwarded Docker server, and only to it."""
    env = {key: value for key, value in environ.items() if not key.startswith("DOCKER_")}
    env["DOCKER_HOST"] = f"tcp://127.0.0.1:{port}"
    return env


def begin_forward(kubectl: Kubectl, pod: str) -> PortForward:
    """A forward to the pod's Docker server, begun (not waited for: forward(begun=) does)."""
    docker_forward = PortForward(kubectl, pod, [(0, DOCKER_PORT)])
    docker_forward.begin()
    return docker_forward


def forward(
    kubectl: Kubectl,
    pod: str,
    timeout: float = PING_TIMEOUT_SECONDS,
    begun: PortForward | None = None,
    given_up: Callable[[], bool] | None = None,
    container: str | None = None,
) -> PortForward:
    """A started forward to the pod's Docker server, once that answers `GET /_ping`.

    dockerd may still be starting (a custom template may have no readiness probe), and kubectl
    port-forward exits when a connection to the pod port fails: then it is started again.
    The caller stops the forward. begun: one begun_forward() started, waited for here. given_up: when it
    says so, the wait for dockerd ends (PreevyError). container: dockerd's (a pod just started): when it
    does not answer yet, it is waited for inside the pod (answers_inside) while the forward starts again,
    untouched until then; else (no such wait there) the forward is started again after a growing pause.
    """
    docker_forward = begun or PortForward(kubectl, pod, [(0, DOCKER_PORT)])
    deadline = time.monotonic() + timeout
    try:
        if begun is not None:
            begun.wait_started()
        else:
            docker_forward.start()
        delay = 0.2
        while True:
            error = ping(docker_forward.local_ports[DOCKER_PORT])
            if error is None:
                return docker_forward
            if time.monotonic() > deadline or (given_up is not None and given_up()):
                raise PreevyError(
                    messages.DOCKER_NOT_ANSWERING.format(pod=pod, timeout=f"{timeout:g}s", error=error),
                    ExitCode.TIMEOUT,
                )
            if container is not None:
                docker_forward.begin()  # (again: the refused connection ends the one running)
                answered = answers_inside(kubectl, pod, container, deadline, given_up)
                container = None  # once: should the forward still not reach it, as without
                if answered:
                    docker_forward.wait_started()
                    continue
            time.sleep(delay)
            if not docker_forward.running:
                docker_forward.start()
                delay = min(delay * 2, 1.0)  # (a kubectl each time: dockerd may take a while to start)
    except BaseException:
        docker_forward.stop()
        raise


# dockerd asked inside the pod (docker:dind has BusyBox's wget) every 50 ms until it answers (every second
# where sleep takes whole seconds only); exit 3: no wget
WAIT_INSIDE_SCRIPT = (
    "command -v wget >/dev/null || exit 3; "
    f"until wget -q -O /dev/null http://127.0.0.1:{DOCKER_PORT}/_ping 2>/dev/null; "
    "do sleep 0.05 2>/dev/null || sleep 1; done"
)


def answers_inside(
    kubectl: Kubectl, pod: str, container: str, deadline: float, given_up: Callable[[], bool] | None
) -> bool:
    """Whether dockerd answered inside the pod (one exec, no port-forward: a refused connection through one
    ends it) before the deadline, or given_up said so. False also where the pod cannot ask (no wget)."""
    proc = kubectl.popen(
        "exec", pod, "-c", container, "--", "sh", "-c", WAIT_INSIDE_SCRIPT,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline or (given_up is not None and given_up()):
                return False
            try:
                proc.wait(0.05)
            except subprocess.TimeoutExpired:
                pass
        return proc.returncode == 0
    finally:
        process.stop(proc)


def ping(port: int) -> str | None:
    """None when the Docker server answers, else what went wrong."""
    try:
        body = _request(port, "GET", "/_ping", timeout=5)
    except (OSError, http.client.HTTPException, PreevyError) as err:
        return str(err) or type(err).__name__
    return None if body.strip() == b"OK" else f"unexpected answer {body[:40]!r}"


def published_ports(port: int, project: str | None = None) -> list[PublishedPort]:
    """The TCP ports published by the running compose containers (of one project, or of all)."""
    label = f"{COMPOSE_PROJECT_LABEL}={project}" if project else COMPOSE_PROJECT_LABEL
    query = urllib.parse.urlencode({"filters": json.dumps({"label": [label]})})
    return ports_of(json.loads(_request(port, "GET", f"/containers/json?{query}")))


def ports_of(containers: list[dict[str, Any]]) -> list[PublishedPort]:
    """The published TCP ports of Docker's container list (`GET /containers/json`), by compose service
    (else container name), sorted, each once."""
    found = set()
    for container in containers:
        service = (container.get("Labels") or {}).get(
            COMPOSE_SERVICE_LABEL, container["Names"][0].lstrip("/")
        )
        for binding in container.get("Ports") or []:
            if binding.get("PublicPort") and binding.get("Type", "tcp") == "tcp":
                found.add(PublishedPort(service, binding["PrivatePort"], binding["PublicPort"]))
    return sorted(found, key=lambda p: (p.service, p.port, p.published))


def _request(port: int, method: str, path: str, timeout: float = 30) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        body = response.read()
        if response.status >= 400:
            raise PreevyError(
                messages.DOCKER_API_FAILED.format(
                    path=path.split("?")[0],
                    status=response.status,
                    error=body.decode(errors="replace").strip(),
                )
            )
        return body
    finally:
        connection.close()


def containers(port: int, project: str | None = None) -> list[dict[str, Any]]:
    """Every container (running or not) of one compose project, or of all, as the Docker API lists them."""
    label = f"{COMPOSE_PROJECT_LABEL}={project}" if project else COMPOSE_PROJECT_LABEL
    query = urllib.parse.urlencode({"all": "1", "filters": json.dumps({"label": [label]})})
    return list(json.loads(_request(port, "GET", f"/containers/json?{query}")))


def service_of(container: dict[str, Any]) -> str:
    return str(
        (container.get("Labels") or {}).get(COMPOSE_SERVICE_LABEL) or container["Names"][0].lstrip("/")
    )


def preevy_agents(project_containers: list[dict[str, Any]], services: set[str]) -> list[str]:
    """Containers of the project that `--remove-orphans` would delete although Preevy made them: its tunnel
    agent (service preevy_proxy), or any other container outside the model carrying Preevy's labels."""
    found = []
    for container in project_containers:
        service = service_of(container)
        labels = container.get("Labels") or {}
        if service in services:
            continue
        if service == PREEVY_AGENT_SERVICE or any(key.startswith(PREEVY_LABEL_PREFIX) for key in labels):
            found.append(container["Names"][0].lstrip("/"))
    return sorted(found)


def compose_up(
    project: str,
    model_file: str,
    working_dir: str,
    environ: Mapping[str, str],
    port: int,
    *,
    build: bool = True,
    remove_orphans: bool = True,
) -> None:
    """`docker compose up -d --build --remove-orphans` of the rewritten model; all its output on our stderr.

    It runs in the project directory so that relative build contexts resolve; the build context
    travels to the remote Docker server through the forward. build=False (`wake`): the images are
    already in the pod's Docker, no build context is needed. remove_orphans=False keeps containers the
    model does not have (Preevy's agent).
    """
    environ = compose_environ(environ, port)
    argv = [
        *compose.compose_command(environ),
        "-p",
        project,
        "--project-directory",
        working_dir,
        "-f",
        model_file,
        "up",
        "-d",
        "--build" if build else "--no-build",
        *(["--remove-orphans"] if remove_orphans else []),
    ]
    proc = process.popen(
        argv,
        env=environ,
        cwd=working_dir,
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr.fileno(),
        stderr=None,
    )
    try:
        returncode = proc.wait()
    finally:
        process.stop(proc)
    if returncode != 0:
        raise ComposeUpFailed(returncode)


class ComposeUpFailed(PreevyError):
    """`docker compose up` exited non-zero (its output went to stderr); up.py words the hint."""

    def __init__(self, code: int, again: str = "kubectl preevy up", down: str = "kubectl preevy down"):
        super().__init__(
            messages.COMPOSE_UP_FAILED.format(code=code, again=again, down=down), ExitCode.FAILURE
        )
        self.code = code


def compose_attached(
    project: str,
    model: dict[str, Any],
    args: list[str],
    environ: Mapping[str, str],
    port: int,
    *,
    stdin: bool = True,
) -> int:
    """`docker compose -p PROJECT -f MODEL ARGS...` against the pod's Docker server, on our terminal (logs,
    exec); its exit code. It runs in an empty directory, so no local compose or .env file is read."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kubectl-preevy-") as directory:
        model_file = f"{directory}/compose.json"
        with open(model_file, "w", encoding="utf-8") as out:
            json.dump(model, out)
        argv = ["docker", "compose", "-p", project, "--project-directory", directory, "-f", model_file, *args]
        return process.run_attached(argv, env=compose_environ(environ, port), cwd=directory, stdin=stdin)
