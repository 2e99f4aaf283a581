"""`kubectl preevy shell [-- CMD...]`: a shell (or a command) in the environment's Docker host container,
through `kubectl exec` (a TTY when on a terminal); its exit code is ours."""

import argparse
import sys

from kubectl_preevy import process
from kubectl_preevy.commands import dockerhost, shared


def run(args: argparse.Namespace) -> int:
    where = dockerhost.target(args)
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    kubectl = where.run.kubectl
    argv = kubectl.argv(
        "exec", "-i", *(["-t"] if tty else []), where.pod, "-c", where.container, "--", *(args.cmd or ["sh"])
    )
    with shared.sigterm_as_interrupt():
        return process.run_attached(argv, env=kubectl.environ)
