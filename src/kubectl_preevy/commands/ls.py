"""`kubectl preevy ls`: the environments of the profile in the namespace, with their state and lifetime."""

import argparse
from typing import Any

from kubectl_preevy import console, environment, messages
from kubectl_preevy.commands import shared
from kubectl_preevy.environment import Environment


def run(args: argparse.Namespace) -> int:
    current = shared.load_run(args, project="none", check_namespace=False)
    envs = environment.list_all(
        current.kubectl, current.profile.id, include_deleted=True, legacy=True, meanwhile=_import_lifetime
    )
    if not envs:
        current.kubectl.namespace_exists()  # a missing namespace lists nothing: say it is missing
    if args.output != "table":
        console.document(
            {
                "apiVersion": console.API_VERSION,
                "kind": "EnvironmentList",
                "items": [item(env) for env in envs],
            },
            args.output,
        )
    elif envs:
        console.result(table(envs))
    else:
        console.info(
            messages.NO_ENVIRONMENTS.format(profile=current.profile.name, namespace=current.kubectl.namespace)
        )
    return 0


def _import_lifetime() -> None:
    """Imported while kubectl lists, not before: `ls` is mostly kubectl's own time (start-up)."""
    from kubectl_preevy import lifetime  # noqa: F401


def item(env: Environment) -> dict[str, Any]:
    from kubectl_preevy import lifetime

    facts = lifetime.of(env.statefulset)
    return {
        "envId": env.env_id,
        "instance": env.instance,
        "namespace": env.namespace,
        "state": facts.state,
        "ready": env.ready_replicas,
        "createdAt": env.created_at,
        "expiresAt": lifetime.timestamp(facts.expires_at) if facts.expires_at else None,
        "lastActiveAt": lifetime.timestamp(facts.last_active_at) if facts.last_active_at else None,
        "sleepAfterSeconds": facts.sleep_after,
        "keep": facts.keep,
        "urls": facts.urls,
        "dockerHost": env.kind,
    }


def table(envs: list[Environment]) -> str:
    from kubectl_preevy import lifetime

    now = lifetime.now()
    rows = []
    for env in envs:
        facts = lifetime.of(env.statefulset)
        rows.append(
            [
                env.env_id,
                env.instance + (" (legacy Deployment)" if env.legacy else ""),
                env.namespace,
                facts.state,
                env.ready_replicas,
                lifetime.age(facts.created_at, now),
                lifetime.expires(facts, now),
                ",".join(row["url"] for row in facts.urls) or "-",
            ]
        )
    return console.table(
        rows, ["env id", "instance", "namespace", "state", "ready", "age", "expires", "urls"]
    )
