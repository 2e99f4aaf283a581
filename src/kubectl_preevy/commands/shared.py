"""What the commands share: the project, profile, options, kubectl and environment id of one run."""

import argparse
import dataclasses
import os
import pathlib
import shlex
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from kubectl_preevy import console, interrupt, messages, process, profiles
from kubectl_preevy import options as options_module
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.kubectl import Kubectl

if TYPE_CHECKING:  # these are imported where used: `ls` needs none of them to start its listing
    from kubectl_preevy import environment
    from kubectl_preevy.compose import ComposeProject

MAX_TIMEOUT_SECONDS = 24 * 3600  # a --timeout beyond a day is a mistake (and 1e9s is no kubectl duration)


@dataclasses.dataclass
class Run:
    """One run's project, profile, options and kubectl."""

    project: "ComposeProject | None"  # None: `--id` given and no compose file here
    profile: profiles.Profile
    options: options_module.Options
    kubectl: Kubectl
    profile_requested: bool = True  # --profile, $PREEVY_PROFILE or a current profile named it
    profile_unsaved: bool = False  # the default profile, made up for this run, not saved yet

    def command_hint(self, command: str, env_id: str | None, *extra: str) -> str:
        """The command line that reaches this environment again (e.g. `down` to clean up): every flag that
        addresses it (--id, --profile, --kubeconfig, --context, -n) as given or derived in this run."""
        argv = ["kubectl", "preevy", command, *(["--id", env_id] if env_id is not None else [])]
        if self.profile_requested:
            argv += ["--profile", self.profile.name]
        argv += options_module.cluster_flags(self.options, namespace=self.kubectl.namespace)
        return shlex.join([*argv, *extra])

    def rerun_hint(self, *extra: str) -> str:
        """The user's own command line (every flag it had), with extra flags added: to run it again."""
        argv = ["kubectl", "preevy", *process.redact(sys.argv[1:])]
        return shlex.join([*argv, *(flag for flag in extra if flag not in argv)])

    def save_profile(self) -> None:
        """Save the default profile made up for this run, now that it is about to write to the cluster
        (a command that fails before that leaves no profile file behind)."""
        if self.profile_unsaved:
            profiles.save_default_profile(self.profile, os.environ)
            self.profile_unsaved = False


def load_run(args: argparse.Namespace, *, project: str = "required", check_namespace: bool = True) -> Run:
    """project: "required" (up), "optional" (with --id, a compose file is read only if there is one), "options"
    (with --id, read only if its files may set options: `x-preevy`, see `may_set_options`), "none" (ls).

    The namespace must exist (one error line, exit 4, whatever the command); check_namespace False: the
    command checks it itself (ls: when it lists nothing; down: the lock's creation says it)."""
    environ = os.environ
    cwd = pathlib.Path.cwd()
    compose_project = None
    if project != "none":
        from kubectl_preevy import compose

        if project == "required" or (
            (args.files or not args.env_id or compose.default_files(cwd, environ, required=False))
            and (project == "optional" or not args.env_id or may_set_options(args.files, cwd, environ))
        ):
            compose_project = compose.load_project(
                getattr(args, "files", None), getattr(args, "project", None), cwd, environ
            )
    requested = profiles.requested_name(args, environ) is not None
    profile = profiles.load_profile(args, environ, save_default=False, quiet=True)
    options = options_module.resolve_options(
        args,
        compose_project.x_preevy if compose_project else None,
        compose_project.files[0] if compose_project else None,
        profile,
        environ,
    )
    kubectl = Kubectl(options.kubeconfig, options.context, options.namespace, environ, options.connection)
    if check_namespace:
        kubectl.namespace_exists()
    unsaved = not requested and profile.location == ""
    if unsaved and getattr(args, "dry_run", False):
        console.info(messages.PROFILE_DEFAULT_NOT_SAVED.format(reason=messages.PROFILE_DEFAULT_DRY_RUN))
    return Run(compose_project, profile, options, kubectl, requested, unsaved and not args_dry_run(args))


def may_set_options(files: list[str] | None, cwd: pathlib.Path, environ: Mapping[str, str]) -> bool:
    """Whether the compose files may hold `x-preevy` options (the namespace, context...): they say so, or
    include others. Otherwise a command given --id skips `docker compose config` (it needs no model)."""
    from kubectl_preevy import compose

    paths = compose.system_files(cwd) + (
        [cwd / f for f in files] if files else compose.default_files(cwd, environ, required=False)
    )
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return True  # `docker compose config` says what is wrong
        if "x-preevy" in text or "include" in text:
            return True
    return False


def args_dry_run(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "dry_run", False))


def env_id(args: argparse.Namespace, run: Run) -> str:
    """--id, else `<project>-<branch>`; says which and why on stderr."""
    from kubectl_preevy import envid

    value, why = envid.resolve_env_id(
        args.env_id, run.project.name if run.project else "", os.environ, pathlib.Path.cwd()
    )
    say_env_id(value, why)
    return value


def say_env_id(value: str, why: str) -> None:
    console.info(messages.ENV_ID_USED.format(env_id=value, why=why))


def existing_environment(run: Run, env_id: str, *, awake: bool = False) -> "environment.Environment":
    """The environment to act on (the newest of duplicates, with a warning), or PreevyError: no such
    environment (awake: or it sleeps). With a kubeconfig made by `share`, the one it names (a reviewer
    may not list anything)."""
    from kubectl_preevy import environment, lifetime, share

    named = share.shared_environment(run.kubectl, env_id)
    env = named or environment.newest(
        environment.find(run.kubectl, run.profile.id, env_id), env_id, run.command_hint("down", env_id)
    )
    if env is None:
        raise PreevyError(
            messages.UNKNOWN_ENVIRONMENT.format(
                env_id=env_id, namespace=run.kubectl.namespace, ls=run.command_hint("ls", None)
            ),
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
    if total > MAX_TIMEOUT_SECONDS:
        raise PreevyError(
            messages.TIMEOUT_TOO_LONG.format(flag=flag, value=text, maximum="24h"), ExitCode.USAGE
        )
    return total


sigterm_as_interrupt = interrupt.as_keyboard_interrupt  # SIGTERM unwinds like Ctrl-C; both remembered
