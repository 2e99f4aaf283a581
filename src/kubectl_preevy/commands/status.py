"""`kubectl preevy status`: the environment's pod, its containers (state, health, published ports, URLs)
and expiry when it has one; works with `--id` alone. The URLs answer while `kubectl preevy connect` runs."""

import argparse
import re
from typing import Any

from kubectl_preevy import console, docker, environment, messages, remote, urls
from kubectl_preevy.commands import dockerhost, shared
from kubectl_preevy.errors import PreevyError
from kubectl_preevy.kubectl import Kubectl

EXPIRES_AT_SUFFIX = "/expires-at"  # e.g. preevy.dev/expires-at, written by `up --ttl`
_HEALTH = re.compile(r"\((healthy|unhealthy|health: starting)\)")


def run(args: argparse.Namespace) -> int:
    current = shared.load_run(args, project="optional")
    env_id = shared.env_id(args, current)
    env = shared.existing_environment(current, env_id)
    document: dict[str, Any] = {
        "apiVersion": console.API_VERSION,
        "kind": "EnvironmentStatus",
        "envId": env_id,
        "namespace": env.namespace,
        "instance": env.instance,
        "statefulSet": env.name,
        "createdAt": env.created_at,
        "expiresAt": expires_at(env.statefulset),
        "pod": pod_state(current.kubectl, env),
        "project": None,
        "services": [],
    }
    try:
        pod = environment.ready_pod(current.kubectl, env)
    except PreevyError as err:
        console.warn(err.message)
    else:
        where = dockerhost.Target(current, env_id, env, pod)
        with shared.sigterm_as_interrupt(), dockerhost.docker_port(where) as port:
            project = _project(where, args, port)
            document["project"] = project.name if project else None
            document["services"] = services(
                docker.containers(port, project.name if project else None), project, recorded_urls(env)
            )
    _print(args.output, document)
    return 0


def _project(where: dockerhost.Target, args: argparse.Namespace, port: int) -> remote.RemoteProject | None:
    try:
        return where.project(args, port)
    except PreevyError as err:
        console.warn(err.message)
        return None


def recorded_urls(env: environment.Environment) -> dict[tuple[str, int], str]:
    """(service, port) -> the URL the last `up` recorded on the StatefulSet."""
    from kubectl_preevy import lifetime

    return {
        (str(row.get("service")), int(row["port"])): str(row["url"])
        for row in lifetime.of(env.statefulset).urls
        if isinstance(row.get("port"), int)
    }


def expires_at(docker_host: dict[str, Any]) -> str | None:
    annotations = (docker_host.get("metadata") or {}).get("annotations") or {}
    return next((v for k, v in sorted(annotations.items()) if k.endswith(EXPIRES_AT_SUFFIX)), None)


def pod_state(kubectl: Kubectl, env: environment.Environment) -> dict[str, Any]:
    """The docker host pod: name, phase, ready, restarts (None values when there is no pod)."""
    selector = ",".join(f"{k}={v}" for k, v in env.statefulset["spec"]["selector"]["matchLabels"].items())
    pods = kubectl.json("pods", "-l", selector)["items"]
    if not pods:
        return {"name": None, "phase": None, "ready": False, "restarts": 0}
    pod = pods[0]
    status = pod.get("status") or {}
    return {
        "name": pod["metadata"]["name"],
        "phase": "Terminating" if pod["metadata"].get("deletionTimestamp") else status.get("phase"),
        "ready": environment.pod_ready(pod),
        "restarts": sum(c.get("restartCount", 0) for c in status.get("containerStatuses") or []),
    }


def services(
    containers: list[dict[str, Any]],
    project: remote.RemoteProject | None,
    recorded: dict[tuple[str, int], str] | None = None,
) -> list[dict[str, Any]]:
    """One entry per container of the project, and one per service of its model that has none. URLs: the
    ones `up` recorded (public ones when exposed), else where `connect` serves them."""
    recorded = recorded or {}
    rows = []
    for container in sorted(containers, key=lambda c: (docker.service_of(c), c["Names"][0])):
        status = container.get("Status", "")
        health = _HEALTH.search(status)
        service = docker.service_of(container)
        published = [
            docker.PublishedPort(service, port, public)
            for port, public in sorted(
                {
                    (b["PrivatePort"], b["PublicPort"])
                    for b in container.get("Ports") or []
                    if b.get("PublicPort") and b.get("Type", "tcp") == "tcp"
                }
            )
        ]
        rows.append(
            {
                "service": service,
                "container": container["Names"][0].lstrip("/"),
                "state": container.get("State", ""),
                "health": health.group(1).replace("health: ", "") if health else None,
                "status": status,
                "ports": [
                    {"port": u.port, "published": p.published, "url": recorded.get((service, p.port), u.url)}
                    for p, u in zip(published, urls.service_urls(published), strict=True)
                ],
            }
        )
    running = {row["service"] for row in rows}
    for service in project.services if project else []:
        if service not in running:
            rows.append(
                {
                    "service": service,
                    "container": None,
                    "state": "missing",
                    "health": None,
                    "status": "",
                    "ports": [],
                }
            )
    return rows


def _print(output: str, document: dict[str, Any]) -> None:
    if output != "table":
        console.document(document, output)
        return
    pod = document["pod"]
    lines = [
        f"environment: {document['envId']}",
        f"where:       StatefulSet {document['statefulSet']} in namespace {document['namespace']}",
        f"created:     {document['createdAt']}",
        f"expires:     {document['expiresAt'] or 'never'}",
        f"pod:         {pod['name'] or '-'} {pod['phase'] or 'absent'}"
        f"{', ready' if pod['ready'] else ', not ready'}, {pod['restarts']} restarts",
        f"project:     {document['project'] or '-'}",
    ]
    rows = [
        [
            s["service"],
            s["container"] or "-",
            s["state"],
            s["health"] or "-",
            ", ".join(f"{p['port']}->{p['url']}" for p in s["ports"]) or "-",
        ]
        for s in document["services"]
    ]
    console.result("\n".join(lines))
    if rows:
        console.result(console.table(rows, ["service", "container", "state", "health", "urls"]))
    else:
        console.info(messages.STATUS_NO_CONTAINERS)
