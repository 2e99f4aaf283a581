"""Where the services answer: the Service | Port | URL table and its versioned JSON."""

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from kubectl_preevy import console

if TYPE_CHECKING:
    from kubectl_preevy.docker import PublishedPort


@dataclasses.dataclass(frozen=True)
class ServiceUrl:
    """A service port's URL, or why it has none."""

    service: str
    port: int | None  # the container's port (None: a host-network service without any)
    url: str  # "" when not routable
    reason: str | None = None  # why it has no URL (UDP, network_mode: host)


def service_urls(
    ports: Iterable["PublishedPort"], local_ports: dict[int, int] | None = None
) -> list[ServiceUrl]:
    """One URL per published port (docker.PublishedPort); local_ports maps a published port to the
    local one `connect` forwards it to, when they differ."""
    local_ports = local_ports or {}
    return [
        ServiceUrl(p.service, p.port, f"http://localhost:{local_ports.get(p.published, p.published)}")
        for p in ports
    ]


def public_urls(rows: Iterable[Any]) -> list[ServiceUrl]:
    """The rows of expose.py (routed ports, and those that are not routable) as ServiceUrls."""
    return [ServiceUrl(r.service, r.port, r.url or "", r.reason) for r in rows]


def urls_table(urls: list[ServiceUrl]) -> str:
    return console.table(
        [
            [u.service, "-" if u.port is None else str(u.port), u.url or f"not routable: {u.reason}"]
            for u in urls
        ],
        ["service", "port", "url"],
    )


def services_json(urls: list[ServiceUrl]) -> list[dict[str, Any]]:
    return [{"service": u.service, "port": u.port, "url": u.url} for u in urls if u.url]


def not_routable_json(urls: list[ServiceUrl]) -> list[dict[str, Any]]:
    return [{"service": u.service, "port": u.port, "reason": u.reason} for u in urls if not u.url]


def environment_document(
    env_id: str, namespace: str, statefulset: str, urls: list[ServiceUrl], **extra: object
) -> dict[str, Any]:
    """The `-o json` result of up and connect (versioned: consumers check apiVersion and kind)."""
    return {
        "apiVersion": console.API_VERSION,
        "kind": "Environment",
        "envId": env_id,
        "namespace": namespace,
        "statefulSet": statefulset,
        "services": services_json(urls),
        **({"notRoutable": not_routable_json(urls)} if not_routable_json(urls) else {}),
        **extra,
    }
