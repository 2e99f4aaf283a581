"""`kubectl preevy exec SERVICE [-i] [-t] -- CMD...`: a command in a service's container (`docker compose
exec` through a forward to the pod's Docker server); its exit code is ours. A TTY when asked (-t) or
when stdin and stdout are terminals."""

import argparse
import os
import sys

from kubectl_preevy import docker, remote
from kubectl_preevy.commands import dockerhost, shared

DEFAULT_COMMAND = ["sh"]


def run(args: argparse.Namespace) -> int:
    where = dockerhost.target(args)
    tty = args.tty or (sys.stdin.isatty() and sys.stdout.isatty())
    compose_args = ["exec", *([] if tty else ["-T"]), args.service, *(args.cmd or DEFAULT_COMMAND)]
    with shared.sigterm_as_interrupt(), dockerhost.docker_port(where) as port:
        project = where.project(args, port)
        dockerhost.check_services(project, [args.service])
        return docker.compose_attached(
            project.name,
            remote.compose_stub(project),
            compose_args,
            os.environ,
            port,
            stdin=args.interactive or tty,
        )
