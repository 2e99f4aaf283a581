"""`kubectl preevy down`: delete every object of the environment, its volume included."""

import argparse
import os

from kubectl_preevy import console, environment, interrupt, lock, messages, parallel, prcomment
from kubectl_preevy.commands import shared
from kubectl_preevy.errors import ExitCode, PreevyError


def run(args: argparse.Namespace) -> int:
    timeout = shared.parse_duration(args.timeout, "--timeout")
    # the namespace is checked by the lock's creation (a missing one: exit 4, as everywhere)
    current = shared.load_run(args, project="options", check_namespace=False)
    env_id = shared.env_id(args, current)
    kubectl = current.kubectl
    comment_template = prcomment.checked_template(
        args.pr_comment, args.pr_comment_template, env_id, os.environ
    )
    # --force: the cluster may finish a deletion this run left (interrupted, timed out): the rerun then
    # finds nothing, which is success
    again = current.command_hint("down", env_id, "--force")
    try:
        with shared.sigterm_as_interrupt():
            held = lock.EnvironmentLock(kubectl, current.profile.id, env_id, lock.holder_description("down"))
            try:
                # the find (a read) runs while the lock is taken, and again once it is held if another run
                # held it (an `up` may have made the environment meanwhile). When the lock was free at once,
                # a run that made objects after the find would have released the lock within those
                # milliseconds too, which no `up` does (it waits for the rollout after its apply).
                _, targets = parallel.together(
                    lambda: held.acquire(timeout),
                    lambda: environment.deletion_targets(kubectl, current.profile.id, env_id),
                )
                if held.contended:
                    targets = environment.deletion_targets(kubectl, current.profile.id, env_id)
                if not targets:
                    if args.force:
                        _mark_comment_deleted(args, env_id, kubectl.namespace, comment_template)
                        return 0
                    raise PreevyError(
                        messages.UNKNOWN_ENVIRONMENT_DOWN.format(
                            env_id=env_id, namespace=kubectl.namespace, ls=current.command_hint("ls", None)
                        ),
                        ExitCode.FAILURE,
                    )
                last = list(targets)[-1]
                for instance, (types, docker_host) in targets.items():
                    console.step(messages.DELETING.format(instance=instance, namespace=kubectl.namespace))
                    environment.delete(
                        kubectl,
                        instance,
                        types,
                        wait=args.wait,
                        timeout_seconds=timeout,
                        again=again,
                        # once the docker host is being deleted the lock has done its work (see delete)
                        marked=held.release if instance == last else None,
                        docker_host=docker_host,
                    )
            finally:
                held.release()
    except KeyboardInterrupt:
        raise PreevyError(messages.INTERRUPTED_DOWN.format(again=again), ExitCode.INTERRUPTED) from None
    except PreevyError as err:
        if interrupt.received() and err.exit_code != ExitCode.INTERRUPTED:
            raise PreevyError(messages.INTERRUPTED_DOWN.format(again=again), ExitCode.INTERRUPTED) from None
        raise
    if args.output != "table":
        console.document(
            {
                "apiVersion": console.API_VERSION,
                "kind": "DeletedEnvironment",
                "envId": env_id,
                "namespace": kubectl.namespace,
                "instances": sorted(targets),
            },
            args.output,
        )
    else:
        console.result(env_id)
    _mark_comment_deleted(args, env_id, kubectl.namespace, comment_template)
    return 0


def _mark_comment_deleted(args: argparse.Namespace, env_id: str, namespace: str, template: str) -> None:
    prcomment.comment(
        args.pr_comment,
        os.environ,
        env_id=env_id,
        namespace=namespace,
        urls=[],
        deleted=True,
        template=template,
    )
