"""What an environment keeps in its pod, where Preevy keeps it, so that every command works with `--id` alone
and Preevy's own `logs --id` / `urls` work on our environments:

- `/var/lib/preevy/projects/<project>/docker-compose.yaml`: the compose model as it runs (paths rewritten
  to the pod's copies), written by `up` after `docker compose up`;
- `/var/lib/preevy/driver-metadata.json`: Preevy's EnvMetadata facts (env id, machine, last deploy time).

The project of an environment is the one whose model was written last (or the one named by `-p`).
"""

import dataclasses
import datetime
import json
from typing import Any

from kubectl_preevy import __version__, compose, messages
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.kubectl import Kubectl

MODEL_FILE = "docker-compose.yaml"
DRIVER_METADATA_FILE = "/var/lib/preevy/driver-metadata.json"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
EXEC_TIMEOUT_SECONDS = 60
NO_PROJECT_EXIT = 3
# $1 projects dir, $2 project dir name, $3 driver metadata path, $4 driver metadata; stdin: the model.
_STORE_SCRIPT = (
    'mkdir -p "$1/$2" && cat > "$1/$2/.docker-compose.yaml.tmp" && '
    'mv -f "$1/$2/.docker-compose.yaml.tmp" "$1/$2/docker-compose.yaml" && '
    'printf \'%s\\n\' "$4" > "$3.tmp" && mv -f "$3.tmp" "$3"'
)
# $1 projects dir, $2 the wanted project (or ""). Prints the project, how many there are, then its model.
_LOAD_SCRIPT = (
    'cd "$1" 2>/dev/null || exit 3; p="$2"; '
    'if [ -z "$p" ]; then p=$(ls -t -- */docker-compose.yaml 2>/dev/null | head -n 1); '
    'p="${p%/docker-compose.yaml}"; fi; '
    '[ -n "$p" ] && [ -f "$p/docker-compose.yaml" ] || exit 3; '
    'printf \'%s\\n\' "$p"; ls -- */docker-compose.yaml 2>/dev/null | wc -l; cat -- "$p/docker-compose.yaml"'
)


@dataclasses.dataclass(frozen=True)
class RemoteProject:
    """The compose project as it runs in the pod."""

    name: str
    model: dict[str, Any]  # the compose model as it runs in the pod
    others: int = 0  # how many other projects the pod holds

    @property
    def services(self) -> list[str]:
        return sorted((self.model.get("services") or {}).keys())


def exec_argv(pod: str, container: str, script: str, *args: str, stdin: bool = False) -> list[str]:
    """`kubectl exec` arguments running a POSIX sh script with positional arguments in the container."""
    return ["exec", *(["-i"] if stdin else []), pod, "-c", container, "--", "sh", "-c", script, "sh", *args]


def driver_metadata(
    env_id: str, instance: str, name: str, namespace: str, created_at: str, opts: dict[str, object]
) -> dict[str, object]:
    """Preevy's EnvMetadata (env-metadata.ts) for this environment."""
    from kubectl_preevy.template import iso_timestamp

    now = iso_timestamp(datetime.datetime.now(datetime.timezone.utc))
    return {
        "id": env_id,
        "machine": {
            "driver": "kube-pod",
            "providerId": instance,
            "opts": opts,
            "locationDescription": f"StatefulSet {name} in namespace {namespace}",
            "creationTime": created_at,
        },
        "lastDeployTime": now,
        "version": __version__,
    }


def store(
    kubectl: Kubectl,
    pod: str,
    container: str,
    project: str,
    model: dict[str, Any],
    metadata: dict[str, object],
) -> None:
    """Write the model and the driver metadata into the pod (each replaced whole, never half-written)."""
    import yaml

    text = yaml.safe_dump(model, sort_keys=False, allow_unicode=True)
    result = kubectl.run(
        *exec_argv(
            pod,
            container,
            _STORE_SCRIPT,
            compose.REMOTE_PROJECTS_DIR,
            project,
            DRIVER_METADATA_FILE,
            json.dumps(metadata, separators=(",", ":")),
            stdin=True,
        ),
        stdin=text,
        timeout=EXEC_TIMEOUT_SECONDS,
    )
    if not result.ok:
        raise PreevyError(
            messages.MODEL_NOT_STORED.format(pod=pod, error=result.last_error_line()), ExitCode.FAILURE
        )


def load(kubectl: Kubectl, pod: str, container: str, wanted: str | None, hint: str) -> RemoteProject:
    """The project the pod runs (the one `up` wrote last, else `wanted`), with its model."""
    import yaml

    result = kubectl.run(
        *exec_argv(pod, container, _LOAD_SCRIPT, compose.REMOTE_PROJECTS_DIR, wanted or ""),
        timeout=EXEC_TIMEOUT_SECONDS,
    )
    if result.returncode == NO_PROJECT_EXIT:
        message = messages.NO_REMOTE_PROJECT_NAMED if wanted else messages.NO_REMOTE_PROJECT
        raise NoRemoteProject(message.format(pod=pod, project=wanted, hint=hint), ExitCode.FAILURE)
    if not result.ok:
        raise kubectl.error(result)
    name, count, text = (result.stdout.split("\n", 2) + ["", ""])[:3]
    try:
        model = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        model = {}
    return RemoteProject(
        name=name.strip(),
        model=model if isinstance(model, dict) else {},
        others=max(0, int(count.strip() or 1) - 1),
    )


class NoRemoteProject(PreevyError):
    """The pod holds no stored compose model (of that project)."""


def from_containers(containers: list[dict[str, Any]], wanted: str | None) -> RemoteProject | None:
    """The project as its containers tell it (an environment `up`ed before the model was stored): the wanted
    one, else the only one; None when that is not one project."""
    projects: dict[str, dict[str, Any]] = {}
    for container in containers:
        labels = container.get("Labels") or {}
        name, service = labels.get(PROJECT_LABEL), labels.get(SERVICE_LABEL)
        if name and service:
            projects.setdefault(name, {})[service] = {"image": container.get("Image") or f"{name}-{service}"}
    if wanted:
        return RemoteProject(wanted, {"services": projects[wanted]}) if wanted in projects else None
    if len(projects) != 1:
        return None
    ((name, services),) = projects.items()
    return RemoteProject(name, {"services": services})


def compose_stub(project: RemoteProject) -> dict[str, Any]:
    """A model naming the project's services and nothing else: what `docker compose logs/exec/ps` need to
    find the containers by their labels, without the paths of a machine we are not on."""
    services = {
        name: {"image": (service or {}).get("image") or f"{project.name}-{name}"}
        for name, service in (project.model.get("services") or {}).items()
    }
    return {"name": project.name, "services": services}
