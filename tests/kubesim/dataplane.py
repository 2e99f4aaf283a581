"""The data plane of kubesim's ingress and Gateway implementation: listening sockets on 127.0.0.1
(ephemeral ports: one for Ingress HTTP, one for Ingress HTTPS, one per Gateway listener port),
routing each connection by its Host header (and, for TLS, terminating with the certificate its SNI
name selects) to a ready pod of the Service, inside the pod's network namespace.

One request decides the backend of its whole connection (keep-alive requests follow the first one);
a real proxy routes each request. The routes come from networking.RoutingTable."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import logging
import socket
import ssl

from .networking import Backend, Route, RoutingTable, hostname_matches

log = logging.getLogger("kubesim.dataplane")

HEAD_LIMIT = 64 * 1024
HEAD_TIMEOUT = 30.0
CHUNK = 64 * 1024

INGRESS = ("", "ingress", 0)  # the table key of the ingress listeners
INGRESS_HTTP = ("", "ingress", 0, False)
INGRESS_HTTPS = ("", "ingress", 0, True)


class DataPlane:
    def __init__(self, cluster) -> None:
        self.cluster = cluster
        self.table = RoutingTable()
        self.servers: dict[tuple[str, str, int, bool], tuple[int, asyncio.Future]] = {}
        self.cert_dir = cluster.state_dir / "dataplane"
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._turn = itertools.count()

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self._listen(INGRESS_HTTP)
        self._listen(INGRESS_HTTPS)

    async def stop(self) -> None:
        for key in list(self.servers):
            self._close(key)

    def update(self, table: RoutingTable) -> None:
        """The controller's new table: listeners opened for new Gateway ports, closed for gone ones."""
        self.table = table
        wanted = {(ns, name, port, listener.tls) for (ns, name, port), listener in table.gateways.items()}
        wanted |= {INGRESS_HTTP, INGRESS_HTTPS}
        for key in list(self.servers):
            if key not in wanted:
                self._close(key)
        for key in wanted:
            if key not in self.servers:
                self._listen(key)

    def ports(self) -> dict:
        """What GET /kubesim/v1/dataplane answers."""
        gateways: dict[str, dict[str, int]] = {}
        for (ns, name, port, _tls), (local, _) in sorted(self.servers.items()):
            if (ns, name, port) != INGRESS:
                gateways.setdefault(f"{ns}/{name}", {})[str(port)] = local
        return {
            "ingress": {
                "http": self.servers[INGRESS_HTTP][0],
                "https": self.servers[INGRESS_HTTPS][0],
            },
            "gateways": gateways,
        }

    def _listen(self, key: tuple[str, str, int, bool]) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.setblocking(False)
        table_key = key[:3]
        context = self._server_context(table_key) if key[3] else None

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._connection(table_key, key[3], reader, writer)

        server = asyncio.ensure_future(asyncio.start_server(handle, sock=sock, ssl=context))
        self.servers[key] = (sock.getsockname()[1], server)
        log.info("data plane: %s listening on 127.0.0.1:%s", _describe(key), sock.getsockname()[1])

    def _close(self, key) -> None:
        port, future = self.servers.pop(key)
        log.info("data plane: %s on port %s closed", _describe(key), port)

        def close(f: asyncio.Future) -> None:
            if not f.cancelled() and f.exception() is None:
                f.result().close()

        if future.done():
            close(future)
        else:
            future.add_done_callback(close)

    # ---------------------------------------------------------------- TLS
    def _server_context(self, table_key: tuple[str, str, int]) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)

        def pick(ssl_object: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext):
            chosen = self._certificate_context(table_key, server_name)
            if chosen is None:
                log.info("data plane: no certificate for SNI %r on %s", server_name, _describe(table_key))
                return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
            ssl_object.context = chosen
            return None

        context.sni_callback = pick
        return context

    def _certificate_context(self, table_key, server_name: str | None) -> ssl.SSLContext | None:
        if table_key == INGRESS:
            certificates = self.table.ingress_certificates
        else:
            listener = self.table.gateways.get(table_key)
            certificates = listener.certificates if listener else {}
        ref = _best_host_match(certificates, server_name)
        if ref is None:
            return None
        secret = self.cluster.store.get("secrets", ref[0], ref[1])
        data = (secret or {}).get("data") or {}
        if "tls.crt" not in data or "tls.key" not in data:
            return None
        crt, key = base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"])
        digest = hashlib.sha256(crt + b"\0" + key).hexdigest()[:32]
        context = self._contexts.get(digest)
        if context is None:
            self.cert_dir.mkdir(parents=True, exist_ok=True)
            path = self.cert_dir / f"{digest}.pem"
            path.write_bytes(key + b"\n" + crt)
            path.chmod(0o600)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            try:
                context.load_cert_chain(path)
            except ssl.SSLError as e:
                log.warning("data plane: Secret %s/%s does not hold a usable certificate: %s", *ref, e)
                return None
            self._contexts[digest] = context
        return context

    # ---------------------------------------------------------------- proxying
    async def _connection(self, table_key, tls: bool, reader, writer) -> None:
        upstream = None
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
            host, path = _host_and_path(head)
            routes = self._routes(table_key)
            route = _choose(routes, host, path)
            if route is None:
                await _answer(writer, 404, f"no route for host {host!r} and path {path!r}")
                return
            if route.backend is None:
                await _answer(writer, 500, "the route's backend did not resolve")
                return
            target = self._endpoint(route.backend)
            if isinstance(target, str):
                await _answer(writer, 503, target)
                return
            pod, port = target
            runtime = self.cluster.kubelet.runtime(route.backend.namespace, pod)
            try:
                if runtime is None:
                    raise ConnectionRefusedError(f"pod {pod} is not running")
                upstream = await runtime.open_connection(port)
            except OSError as e:
                await _answer(writer, 502, f"pod {route.backend.namespace}/{pod} port {port}: {e}")
                return
            up_reader, up_writer = upstream
            up_writer.write(_forwarded(head, tls))
            await up_writer.drain()
            # The backend's end decides: once it has closed, nothing more can come for the client.
            to_backend = asyncio.ensure_future(_pipe(reader, up_writer))
            try:
                await _pipe(up_reader, writer)
            finally:
                to_backend.cancel()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError):
            pass
        except (ConnectionError, ssl.SSLError, OSError) as e:
            log.debug("data plane connection ended: %s", e)
        finally:
            if upstream is not None:
                upstream[1].close()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _routes(self, table_key) -> list[Route]:
        if table_key == INGRESS:
            return self.table.ingress_http
        listener = self.table.gateways.get(table_key)
        return listener.routes if listener else []

    def _endpoint(self, backend: Backend) -> tuple[str, int] | str:
        """(ready pod, target port) of the Service's port, or why there is none."""
        store = self.cluster.store
        svc = store.get("services", backend.namespace, backend.service)
        if svc is None:
            return f"Service {backend.namespace}/{backend.service} not found"
        spec = svc.get("spec") or {}
        port = next(
            (p for p in spec.get("ports") or [] if backend.port in (p.get("port"), p.get("name"))),
            None,
        )
        if port is None:
            return f"Service {backend.service} has no port {backend.port}"
        selector = spec.get("selector") or {}
        pods = [
            p
            for p in store.list("pods", backend.namespace)
            if selector
            and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
            and not p["metadata"].get("deletionTimestamp")
            and _ready(p)
        ]
        if not pods:
            return f"Service {backend.namespace}/{backend.service} has no ready endpoints"
        pod = pods[next(self._turn) % len(pods)]
        target = port.get("targetPort", port.get("port"))
        if isinstance(target, str):
            named = [
                cp.get("containerPort")
                for c in (pod.get("spec") or {}).get("containers") or []
                for cp in c.get("ports") or []
                if cp.get("name") == target
            ]
            if not named:
                return f"pod {pod['metadata']['name']} has no port named {target}"
            target = named[0]
        return pod["metadata"]["name"], int(target)


def _describe(key) -> str:
    if tuple(key[:3]) == INGRESS:
        return "ingress " + ("https" if len(key) > 3 and key[3] else "http")
    return f"gateway {key[0]}/{key[1]} port {key[2]}"


def _ready(pod: dict) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _best_host_match(by_host: dict, name: str | None):
    """The entry for the most specific hostname matching name (exact, then the longest wildcard, then any)."""
    if name is not None:
        name = name.lower().rstrip(".")
        if name in by_host:
            return by_host[name]
        wildcards = [h for h in by_host if h and h.startswith("*.") and hostname_matches(h, name)]
        if wildcards:
            return by_host[max(wildcards, key=len)]
    return by_host.get(None)


def _host_and_path(head: bytes) -> tuple[str, str]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    path = parts[1] if len(parts) > 1 else "/"
    host = ""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "host":
            host = value.strip()
            break
    host = host.split("]")[0] + "]" if host.startswith("[") else host.split(":")[0]
    return host.lower().rstrip("."), path.split("?")[0] or "/"


def _path_matches(route: Route, path: str) -> bool:
    if route.exact:
        return path == route.path
    prefix = route.path.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


def _choose(routes: list[Route], host: str, path: str) -> Route | None:
    """The most specific host (exact, longest wildcard, any), then exact path, then longest prefix."""

    def host_rank(route: Route) -> int:
        if route.host is None:
            return 0
        if route.host == host:
            return 100000
        return len(route.host) if hostname_matches(route.host, host) and route.host.startswith("*.") else -1

    candidates = [r for r in routes if host_rank(r) >= 0 and _path_matches(r, path)]
    if not candidates:
        return None
    return max(candidates, key=lambda r: (host_rank(r), r.exact, len(r.path)))


def _forwarded(head: bytes, tls: bool) -> bytes:
    first, _, rest = head.partition(b"\r\n")
    proto = b"https" if tls else b"http"
    return first + b"\r\nX-Forwarded-Proto: " + proto + b"\r\n" + rest


async def _answer(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    reasons = {404: "Not Found", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
    body = (message + "\n").encode()
    writer.write(
        f"HTTP/1.1 {status} {reasons[status]}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()
