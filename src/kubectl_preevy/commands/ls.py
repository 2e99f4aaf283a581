"""`kubectl preevy ls`: the environments of the profile in the namespace (not those being deleted)."""

import argparse

from kubectl_preevy import console, environment, messages
from kubectl_preevy.commands import shared


def run(args: argparse.Namespace) -> int:
    current = shared.load_run(args, project="none")
    envs = environment.list_all(current.kubectl, current.profile.id)
    if args.output != "table":
        console.document(
            {
                "apiVersion": console.API_VERSION,
                "kind": "EnvironmentList",
                "items": [
                    {
                        "envId": env.env_id,
                        "instance": env.instance,
                        "namespace": env.namespace,
                        "ready": env.ready_replicas,
                        "createdAt": env.created_at,
                        "dockerHost": env.kind,
                    }
                    for env in envs
                ],
            },
            args.output,
        )
    elif envs:
        console.result(
            console.table(
                [
                    [
                        env.env_id,
                        env.instance + (" (legacy Deployment)" if env.legacy else ""),
                        env.namespace,
                        env.ready_replicas,
                        env.created_at,
                    ]
                    for env in envs
                ],
                ["env id", "instance", "namespace", "ready", "created"],
            )
        )
    else:
        console.info(
            messages.NO_ENVIRONMENTS.format(profile=current.profile.name, namespace=current.kubectl.namespace)
        )
    return 0
