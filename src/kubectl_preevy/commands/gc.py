"""`kubectl preevy gc`: delete expired environments, sleep idle ones, each under its lock; say what it did.

It looks at every profile's environments (a CronJob in the cluster has no profile), in the namespace
or in all of them (-A). Each decision is taken again under the environment's lock, so an `up` that
renewed the environment meanwhile wins.
"""

import argparse
import dataclasses
import datetime
import os
import shlex

from kubectl_preevy import console, environment, lifetime, lock, messages, naming, profiles, sleepwake
from kubectl_preevy import options as options_module
from kubectl_preevy.commands import shared
from kubectl_preevy.environment import Environment
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.kubectl import Kubectl

LOCK_WAIT_SECONDS = 10.0  # an environment an `up` is working on is left for the next run
DELETE = "delete"
SLEEP = "sleep"


@dataclasses.dataclass
class Action:
    """What gc did, or would do, to one environment, and why."""

    env_id: str
    namespace: str
    instance: str
    action: str  # deleted, slept, would-delete, would-sleep, skipped, failed
    reason: str

    def as_json(self) -> dict[str, str]:
        return {
            "envId": self.env_id,
            "namespace": self.namespace,
            "instance": self.instance,
            "action": self.action,
            "reason": self.reason,
        }


def run(args: argparse.Namespace) -> int:
    timeout = shared.parse_duration(args.timeout, "--timeout")
    environ = os.environ
    profile = profiles.load_profile(args, environ, save_default=False) if args.profile else None
    options = options_module.resolve_options(args, None, None, profile, environ)
    kubectl = Kubectl(options.kubeconfig, options.context, options.namespace, environ, options.connection)
    envs = environment.list_all(kubectl, None, include_deleted=True, all_namespaces=args.all_namespaces)
    actions: list[Action] = []
    with shared.sigterm_as_interrupt():
        for env in envs:
            decision = decide(env, lifetime.now())
            if decision is None:
                continue
            what, reason = decision
            if args.dry_run:
                actions.append(Action(env.env_id, env.namespace, env.instance, f"would-{what}", reason))
                continue
            env_kubectl = Kubectl(
                options.kubeconfig, options.context, env.namespace, environ, options.connection
            )
            actions.append(_collect(env_kubectl, env, options, timeout))
    _report(args, kubectl, actions)
    return int(ExitCode.FAILURE) if any(a.action == "failed" for a in actions) else 0


def decide(env: Environment, now: datetime.datetime) -> tuple[str, str] | None:
    """(delete | sleep, why), or None: leave it."""
    facts = lifetime.of(env.statefulset)
    if facts.state == lifetime.STATE_DELETING:  # an interrupted `down` or gc: finish it
        return DELETE, messages.GC_REASON_UNFINISHED
    if facts.expired(now) and facts.expires_at is not None:
        return DELETE, messages.GC_REASON_EXPIRED.format(expires_at=lifetime.timestamp(facts.expires_at))
    if facts.idle(now) and facts.last_active_at is not None and facts.sleep_after is not None:
        return SLEEP, messages.GC_REASON_IDLE.format(
            since=lifetime.timestamp(facts.last_active_at),
            sleep_after=lifetime.short_duration(facts.sleep_after),
        )
    return None


def _collect(kubectl: Kubectl, env: Environment, options: options_module.Options, timeout: float) -> Action:
    labels = env.statefulset["metadata"].get("labels") or {}
    annotations = env.statefulset["metadata"].get("annotations") or {}
    profile_id = annotations.get(naming.ANNOTATION_PROFILE_ID) or labels.get(naming.LABEL_PROFILE_ID, "")
    action = Action(env.env_id, env.namespace, env.instance, "skipped", "")
    try:
        with lock.held(kubectl, profile_id, env.env_id, "gc", LOCK_WAIT_SECONDS):
            fresh = [
                e
                for e in environment.find(kubectl, profile_id, env.env_id, include_deleted=True)
                if e.instance == env.instance
            ]
            decision = decide(fresh[0], lifetime.now()) if fresh else None
            if decision is None:
                action.reason = messages.GC_CHANGED
                return action
            what, action.reason = decision
            if what == DELETE:
                console.step(messages.DELETING.format(instance=env.instance, namespace=env.namespace))
                environment.delete(kubectl, env.instance, fresh[0].types, wait=True, timeout_seconds=timeout)
                action.action = "deleted"
            else:
                sleepwake.sleep(kubectl, fresh[0], timeout, _command_hint("sleep", env, options))
                action.action = "slept"
    except PreevyError as err:
        if err.exit_code == ExitCode.TIMEOUT and action.action == "skipped" and not action.reason:
            action.reason = messages.GC_LOCKED
        else:
            action.action, action.reason = "failed", err.message
            console.warn(messages.GC_FAILED.format(env_id=env.env_id, error=err.message))
    return action


def _command_hint(command: str, env: Environment, options: options_module.Options) -> str:
    flags = options_module.cluster_flags(options, namespace=env.namespace)
    return shlex.join(["kubectl", "preevy", command, "--id", env.env_id, *flags])


def _report(args: argparse.Namespace, kubectl: Kubectl, actions: list[Action]) -> None:
    if args.output != "table":
        document = {
            "apiVersion": console.API_VERSION,
            "kind": "GarbageCollection",
            "dryRun": bool(args.dry_run),
            "items": [a.as_json() for a in actions],
        }
        console.document(document, args.output)
    elif actions:
        console.result(
            console.table(
                [[a.action, a.env_id, a.namespace, a.reason] for a in actions],
                ["action", "env id", "namespace", "reason"],
            )
        )
    else:
        scope = (
            messages.GC_SCOPE_ALL
            if args.all_namespaces
            else messages.GC_SCOPE_NAMESPACE.format(namespace=kubectl.namespace)
        )
        console.info(messages.GC_NOTHING.format(scope=scope))
