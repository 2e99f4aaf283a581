"""`kubectl preevy sleep`: scale the environment to 0, keeping its volume."""

import argparse

from kubectl_preevy import console, lifetime, lock, messages, sleepwake
from kubectl_preevy.commands import shared


def run(args: argparse.Namespace) -> int:
    timeout = shared.parse_duration(args.timeout, "--timeout")
    current = shared.load_run(args, project="optional")
    env_id = shared.env_id(args, current)
    kubectl = current.kubectl
    with shared.sigterm_as_interrupt(), lock.held(kubectl, current.profile.id, env_id, "sleep", timeout):
        env = shared.existing_environment(current, env_id)
        if lifetime.of(env.statefulset).state == lifetime.STATE_SLEEPING:
            console.info(messages.ALREADY_SLEEPING.format(env_id=env_id))
        else:
            sleepwake.sleep(kubectl, env, timeout, current.command_hint("sleep", env_id))
    console.info(messages.SLEPT.format(env_id=env_id, command=current.command_hint("wake", env_id)))
    console.result(env_id)
    return 0
