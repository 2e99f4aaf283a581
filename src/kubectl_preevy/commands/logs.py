"""`kubectl preevy logs [SERVICE...]`: the services' logs, prefixed like `docker compose logs` (it is), read
through a forward to the pod's Docker server; works with `--id` alone."""

import argparse
import os

from kubectl_preevy import console, docker, messages, remote
from kubectl_preevy.commands import dockerhost, shared


def run(args: argparse.Namespace) -> int:
    where = dockerhost.target(args)
    compose_args = ["logs"]
    if args.follow:
        compose_args.append("--follow")
    if args.tail is not None:
        compose_args += ["--tail", args.tail]
    if args.since:
        compose_args += ["--since", args.since]
    if args.timestamps:
        compose_args.append("--timestamps")
    with shared.sigterm_as_interrupt(), dockerhost.docker_port(where) as port:
        project = where.project(args, port)
        dockerhost.check_services(project, args.services)
        try:
            return docker.compose_attached(
                project.name, remote.compose_stub(project), [*compose_args, *args.services], os.environ, port
            )
        except KeyboardInterrupt:
            if not args.follow:
                raise
            console.info(messages.LOGS_STOPPED)
            return 0
