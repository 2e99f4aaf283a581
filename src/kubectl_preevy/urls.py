"""Where the services answer: the Service | Port | URL table and its versioned JSON."""
import dataclasses
import json

API_VERSION = "kubectl-preevy/v1"


@dataclasses.dataclass(frozen=True)
class ServiceUrl:
    service: str
    port: int       # the container's port
    url: str


def service_urls(ports, local_ports: dict[int, int] | None = None) -> list[ServiceUrl]:
    """One URL per published port (docker.PublishedPort); local_ports maps a published port to the
    local one `connect` forwards it to, when they differ."""
    local_ports = local_ports or {}
    return [ServiceUrl(p.service, p.port, f"http://localhost:{local_ports.get(p.published, p.published)}")
            for p in ports]


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain, aligned text table (kubectl style: upper-case header, two spaces between columns)."""
    cells = [[h.upper() for h in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def urls_table(urls: list[ServiceUrl]) -> str:
    return table([[u.service, str(u.port), u.url] for u in urls], ["service", "port", "url"])


def environment_document(env_id: str, namespace: str, statefulset: str, urls: list[ServiceUrl], **extra) -> dict:
    """The `-o json` result of up and connect (versioned: consumers check apiVersion and kind)."""
    return {"apiVersion": API_VERSION, "kind": "Environment", "envId": env_id, "namespace": namespace,
            "statefulSet": statefulset,
            "services": [{"service": u.service, "port": u.port, "url": u.url} for u in urls], **extra}


def to_json(document: dict) -> str:
    return json.dumps(document, indent=2)
