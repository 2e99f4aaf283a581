"""What logs, exec, shell and status share: the environment of `--id` (or of the project here), its ready
pod, a forward to its Docker server and the compose project it runs (read from the pod)."""

import argparse
import contextlib
import dataclasses
from collections.abc import Iterator

from kubectl_preevy import console, docker, environment, messages, remote
from kubectl_preevy.commands import shared
from kubectl_preevy.commands.shared import Run
from kubectl_preevy.environment import Environment
from kubectl_preevy.errors import ExitCode, PreevyError


@dataclasses.dataclass
class Target:
    """The environment a docker-host command acts on: its run, id, docker-host object and pod."""

    run: Run
    env_id: str
    env: Environment
    pod: str

    @property
    def container(self) -> str:
        return self.env.first_container

    def project(self, args: argparse.Namespace, port: int) -> remote.RemoteProject:
        """The compose project in the pod: `-p`, else the one of the compose files here, else the one `up`
        recorded on the StatefulSet, else the last one stored; without a stored model, the project its
        containers tell (Docker reached on the forwarded port)."""
        from kubectl_preevy import lifetime

        annotations = self.env.statefulset["metadata"].get("annotations") or {}
        wanted = (
            getattr(args, "project", None)
            or (self.run.project.name if self.run.project else None)
            or annotations.get(lifetime.ANNOTATION_COMPOSE_PROJECT)
            or None
        )
        try:
            return remote.load(
                self.run.kubectl, self.pod, self.container, wanted, self.run.command_hint("up", self.env_id)
            )
        except remote.NoRemoteProject:
            found = remote.from_containers(docker.containers(port), wanted)
            if found is None:
                raise
            console.warn(messages.MODEL_FROM_CONTAINERS.format(project=found.name, pod=self.pod))
            return found


def target(args: argparse.Namespace) -> Target:
    current = shared.load_run(args, project="optional")
    env_id = shared.env_id(args, current)
    env = shared.existing_environment(current, env_id)
    return Target(current, env_id, env, environment.ready_pod(current.kubectl, env))


@contextlib.contextmanager
def docker_port(where: Target) -> Iterator[int]:
    """The local port of a forward to the pod's Docker server, for the block."""
    with docker.forward(where.run.kubectl, where.pod) as docker_forward:
        yield docker_forward.local_ports[docker.DOCKER_PORT]


def check_services(project: remote.RemoteProject, services: list[str]) -> None:
    """PreevyError (usage) naming the project's services when one of these is not among them."""
    unknown = sorted(set(services) - set(project.services))
    if unknown:
        raise PreevyError(
            messages.UNKNOWN_SERVICES.format(
                services=", ".join(unknown), project=project.name, known=", ".join(project.services)
            ),
            ExitCode.USAGE,
        )
