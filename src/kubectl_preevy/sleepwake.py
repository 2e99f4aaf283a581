"""Sleep and wake an environment: scale its docker-host StatefulSet to 0 and back, volume kept.

Sleeping keeps the claim (images, build cache, named volumes, the synced files); waking waits for
the Docker server, then restarts the services with `docker compose up --no-build` of the compose
model `up` stored in the pod, so no compose file is needed and the published ports (the URLs) stay.
"""

import os
import tempfile

from kubectl_preevy import compose, console, docker, environment, lifetime, messages, remote
from kubectl_preevy.environment import Environment
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.kubectl import Kubectl

MODEL_FILE = remote.MODEL_FILE  # written by `up` (remote.store), where Preevy keeps it


def model_path(project: str) -> str:
    return f"{compose.REMOTE_PROJECTS_DIR}/{project}/{MODEL_FILE}"


def sleep(kubectl: Kubectl, env: Environment, timeout_seconds: float, retry_hint: str) -> None:
    """Scale to 0 and wait until the pod (and its Docker server) is gone."""
    console.step(messages.SLEEPING.format(env_id=env.env_id, name=env.name))
    kubectl.check("scale", f"statefulset/{env.name}", "--replicas=0")
    pod = f"{env.name}-0"
    result = kubectl.run(
        "wait", "--for=delete", f"pod/{pod}", f"--timeout={timeout_seconds:g}s", timeout=timeout_seconds + 30
    )
    if result.ok or "NotFound" in result.stderr or "not found" in result.stderr:
        return
    if "timed out" in result.stderr:
        raise PreevyError(
            messages.SLEEP_TIMEOUT.format(
                pod=pod, timeout=f"{timeout_seconds:g}s", namespace=kubectl.namespace, command=retry_hint
            ),
            ExitCode.TIMEOUT,
        )
    raise kubectl.error(result)


def scale_up(kubectl: Kubectl, env: Environment) -> None:
    """Back to one replica, noting when (activity that postpones the next sleep)."""
    console.step(messages.WAKING.format(env_id=env.env_id, name=env.name))
    kubectl.check("scale", f"statefulset/{env.name}", "--replicas=1")
    kubectl.check(
        "annotate",
        f"statefulset/{env.name}",
        f"{lifetime.ANNOTATION_WOKEN_AT}={lifetime.timestamp(lifetime.now())}",
        "--overwrite",
    )


def wake(
    kubectl: Kubectl, env: Environment, timeout_seconds: float, cleanup_hint: str
) -> list[docker.PublishedPort]:
    """Scale back, wait until Docker is ready, restart the services: their published ports."""
    scale_up(kubectl, env)
    environment.wait_ready(kubectl, env.env_id, env.name, timeout_seconds, cleanup_hint)
    pod = environment.ready_pod(kubectl, env)
    project = _project(kubectl, env, pod)
    result = kubectl.run("exec", pod, "-c", env.first_container, "--", "cat", model_path(project))
    if not result.ok:
        raise PreevyError(
            messages.NO_STORED_MODEL.format(env_id=env.env_id, path=model_path(project)), ExitCode.FAILURE
        )
    with docker.forward(kubectl, pod) as docker_forward, tempfile.TemporaryDirectory() as directory:
        port = docker_forward.local_ports[docker.DOCKER_PORT]
        model_file = os.path.join(directory, MODEL_FILE)
        with open(model_file, "w") as file:
            file.write(result.stdout)
        console.step(messages.RESTARTING_SERVICES.format(project=project))
        docker.compose_up(project, model_file, directory, os.environ, port, build=False)
        return docker.published_ports(port, project)


def _project(kubectl: Kubectl, env: Environment, pod: str) -> str:
    """The compose project `up` deployed (its annotation; else the one project directory in the pod)."""
    annotations = env.statefulset["metadata"].get("annotations") or {}
    if annotations.get(lifetime.ANNOTATION_COMPOSE_PROJECT):
        return str(annotations[lifetime.ANNOTATION_COMPOSE_PROJECT])
    listing = kubectl.run(
        "exec", pod, "-c", env.first_container, "--", "sh", "-c",
        f'cd {compose.REMOTE_PROJECTS_DIR} && ls -1 */{MODEL_FILE}',
    )  # fmt: skip
    projects = [line.split("/")[0] for line in listing.stdout.splitlines() if line.strip()]
    if len(projects) != 1:
        raise PreevyError(
            messages.NO_STORED_MODEL.format(env_id=env.env_id, path=model_path("<project>")), ExitCode.FAILURE
        )
    return projects[0]
