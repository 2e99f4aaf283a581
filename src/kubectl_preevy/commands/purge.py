"""`kubectl preevy purge`: delete every environment of the profile (or of every profile) in the namespace,
each under its lock. Asks on a terminal unless --yes; refuses without --yes when stdin is not a terminal."""

import argparse
import shlex
import sys

from kubectl_preevy import console, environment, lock, messages
from kubectl_preevy import options as options_module
from kubectl_preevy.commands import shared
from kubectl_preevy.errors import ExitCode, PreevyError


def run(args: argparse.Namespace) -> int:
    timeout = shared.parse_duration(args.timeout, "--timeout")
    current = shared.load_run(args, project="none")
    kubectl = current.kubectl
    envs = environment.list_all(kubectl, None if args.all_profiles else current.profile.id, legacy=True)
    whose = messages.PURGE_ALL_PROFILES if args.all_profiles else f"profile {current.profile.name!r}"
    if not envs:
        console.info(messages.PURGE_NOTHING.format(whose=whose, namespace=kubectl.namespace))
    targets = sorted({(env.profile_id, env.env_id) for env in envs})  # duplicates of an id: once
    listing = ", ".join(env_id for _, env_id in targets)
    if targets and not args.yes:
        _confirm(args, current, len(targets), listing, whose)
    deleted = []
    with shared.sigterm_as_interrupt():
        for profile_id, env_id in targets:
            with lock.held(kubectl, profile_id, env_id, "purge", timeout):
                deleting = environment.deletion_targets(kubectl, profile_id, env_id)
                for instance, (types, _) in deleting.items():
                    console.step(messages.DELETING.format(instance=instance, namespace=kubectl.namespace))
                    environment.delete(kubectl, instance, types, wait=args.wait, timeout_seconds=timeout)
            deleted.append(env_id)
    if args.output != "table":
        console.document(
            {
                "apiVersion": console.API_VERSION,
                "kind": "PurgedEnvironments",
                "namespace": kubectl.namespace,
                "envIds": sorted(deleted),
            },
            args.output,
        )
    elif deleted:
        console.result("\n".join(sorted(deleted)))
    return 0


def _confirm(args: argparse.Namespace, current: shared.Run, count: int, listing: str, whose: str) -> None:
    if not sys.stdin.isatty():
        argv = ["kubectl", "preevy", "purge", "--yes"]
        argv += options_module.cluster_flags(current.options, namespace=current.kubectl.namespace)
        if args.all_profiles:
            argv.append("--all-profiles")
        elif current.profile.name != "default":
            argv += ["--profile", current.profile.name]
        raise PreevyError(
            messages.PURGE_NEEDS_YES.format(count=count, command=shlex.join(argv)), ExitCode.USAGE
        )
    sys.stderr.write(
        messages.PURGE_CONFIRM.format(
            count=count, envs=listing, whose=whose, namespace=current.kubectl.namespace
        )
    )
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    if not sys.stderr.isatty():  # the answer was echoed elsewhere: end the prompt's line
        sys.stderr.write("\n")
    if answer not in ("y", "yes"):
        raise PreevyError(messages.PURGE_DECLINED, ExitCode.FAILURE)
