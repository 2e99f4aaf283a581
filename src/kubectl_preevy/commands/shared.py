"""What the commands share: the project, profile, options, kubectl and environment id of one run."""

import argparse
import contextlib
import dataclasses
import os
import pathlib
import shlex
import signal
import types
from collections.abc import Iterator

from kubectl_preevy import compose, console, envid, environment, messages, profiles
from kubectl_preevy import options as options_module
from kubectl_preevy.compose import ComposeProject
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.kubectl import Kubectl


@dataclasses.dataclass
class Run:
    project: ComposeProject | None  # None: `--id` given and no compose file here
    profile: profiles.Profile
    options: options_module.Options
    kubectl: Kubectl

    def command_hint(self, command: str, env_id: str) -> str:
        """The command line that reaches this environment again, e.g. for cleaning up."""
        argv = [
            "kubectl",
            "preevy",
            command,
            "--id",
            env_id,
            *options_module.cluster_flags(self.options, namespace=self.kubectl.namespace),
        ]
        if self.profile.name != profiles.DEFAULT_PROFILE:
            argv += ["--profile", self.profile.name]
        return shlex.join(argv)


def load_run(args: argparse.Namespace, *, project: str = "required") -> Run:
    """project: "required" (up), "optional" (with --id, a compose file is read only if there is one), "none" (ls)."""
    environ = os.environ
    cwd = pathlib.Path.cwd()
    compose_project = None
    if project == "required" or (
        project == "optional"
        and (args.files or not args.env_id or compose.default_files(cwd, environ, required=False))
    ):
        compose_project = compose.load_project(
            getattr(args, "files", None), getattr(args, "project", None), cwd, environ
        )
    profile = profiles.load_profile(args, environ, save_default=not getattr(args, "dry_run", False))
    options = options_module.resolve_options(
        args,
        compose_project.x_preevy if compose_project else None,
        compose_project.files[0] if compose_project else None,
        profile,
        environ,
    )
    kubectl = Kubectl(options.kubeconfig, options.context, options.namespace, environ, options.connection)
    return Run(compose_project, profile, options, kubectl)


def env_id(args: argparse.Namespace, run: Run) -> str:
    """--id, else `<project>-<branch>`; says which and why on stderr."""
    value, why = envid.resolve_env_id(
        args.env_id, run.project.name if run.project else "", os.environ, pathlib.Path.cwd()
    )
    console.info(messages.ENV_ID_USED.format(env_id=value, why=why))
    return value


def existing_environment(run: Run, env_id: str, *, awake: bool = False) -> environment.Environment:
    """The environment to act on (the newest of duplicates, with a warning), or PreevyError: no such
    environment (awake: or it sleeps). With a kubeconfig made by `share`, the one it names (a reviewer
    may not list anything)."""
    from kubectl_preevy import lifetime, share

    named = share.shared_environment(run.kubectl, env_id)
    env = named or environment.newest(environment.find(run.kubectl, run.profile.id, env_id), env_id)
    if env is None:
        raise PreevyError(
            messages.UNKNOWN_ENVIRONMENT.format(env_id=env_id, namespace=run.kubectl.namespace),
            ExitCode.FAILURE,
        )
    if awake and lifetime.of(env.statefulset).state == lifetime.STATE_SLEEPING:
        raise PreevyError(
            messages.ENVIRONMENT_SLEEPS.format(env_id=env_id, command=run.command_hint("wake", env_id)),
            ExitCode.FAILURE,
        )
    return env


def parse_duration(text: str, flag: str) -> float:
    """A duration as kubectl takes it -> seconds (> 0): a Go duration (90s, 5m, 1h30m, 1.5m, 500ms; a
    unit on every number), or a plain number of seconds (90)."""
    total = options_module.duration_seconds(text)
    if total is None:
        raise PreevyError(messages.INVALID_DURATION.format(flag=flag, value=text), ExitCode.USAGE)
    return total


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a cancelled CI job) unwinds like Ctrl-C, so every `finally` stops what it started."""

    def interrupt(signum: int, frame: types.FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
