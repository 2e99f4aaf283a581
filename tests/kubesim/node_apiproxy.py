"""The API server as pods see it (node half): `KUBERNETES_SERVICE_HOST`/`_PORT` inside the pod's netns.

A pod's network namespace has only loopback, so the kubelet listens there, on 127.0.0.1:443
(`KUBERNETES_SERVICE_HOST=127.0.0.1`, `KUBERNETES_SERVICE_PORT=443`: a real cluster says 10.96.0.1),
and joins each connection to the emulator's TLS port: TLS is end to end, so in-cluster clients
(kubectl with the mounted token and ca.crt) authenticate as their ServiceAccount and RBAC decides.
hostNetwork pods get the TLS port itself. A pod that publishes port 443 on its loopback (or on
0.0.0.0) itself conflicts with this listener.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import urllib.parse

log = logging.getLogger("kubesim.apiproxy")

SERVICE_HOST = "127.0.0.1"
SERVICE_PORT = 443


def tls_port(cluster) -> int:
    return urllib.parse.urlsplit(cluster.tls_url).port or 0 if cluster.tls_url else 0


def service_env(cluster, host_network: bool) -> dict[str, str]:
    """What the kubelet sets for the `kubernetes` Service in every container (before the container's own env)."""
    port = tls_port(cluster) if host_network else SERVICE_PORT
    if not port:
        return {}
    address = f"tcp://{SERVICE_HOST}:{port}"
    return {
        "KUBERNETES_SERVICE_HOST": SERVICE_HOST,
        "KUBERNETES_SERVICE_PORT": str(port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(port),
        "KUBERNETES_PORT": address,
        f"KUBERNETES_PORT_{port}_TCP": address,
        f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
        f"KUBERNETES_PORT_{port}_TCP_PORT": str(port),
        f"KUBERNETES_PORT_{port}_TCP_ADDR": SERVICE_HOST,
    }


class ApiProxy:
    """A listener in one pod's netns joined to the emulator's TLS port; close() stops it."""

    def __init__(self, server: asyncio.base_events.Server, connections: set[asyncio.Task]):
        self._server = server
        self._connections = connections

    @classmethod
    async def start(cls, netns, netns_fd: int, port: int) -> ApiProxy | None:
        if not port:
            return None
        sock = await netns.socket(netns_fd)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((SERVICE_HOST, SERVICE_PORT))
            sock.listen(64)
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            log.warning("no API listener in the pod: %s", e)
            return None
        connections: set[asyncio.Task] = set()

        async def join(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                connections.add(task)
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                writer.close()
                return
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                for w in (writer, up_writer):
                    w.close()
                if task is not None:
                    connections.discard(task)

        server = await asyncio.start_server(join, sock=sock)
        return cls(server, connections)

    def close(self) -> None:
        self._server.close()
        for task in list(self._connections):
            task.cancel()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError, asyncio.CancelledError):
        pass
