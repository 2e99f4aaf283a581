"""Routes of the pod streaming subresources: pods/exec, pods/portforward, pods/log.

They find the pod in the store and its PodRuntime in the kubelet, then hand over to
`exec_ws`, `portforward` and `podlogs`. Only the websocket protocols kubectl 1.32 tries first
are served; its SPDY POST fallback gets a 400 Status. Errors are raised as `errors.ApiError`,
which the server's middleware answers with the Status.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from aiohttp import hdrs, web

from tests.kubesim import errors, exec_ws, podlogs, portforward

POD_PATH = "/api/v1/namespaces/{namespace}/pods/{name}"


def add_pod_routes(app: web.Application, cluster) -> None:
    routes = PodStreamRoutes(cluster)
    app.router.add_get(POD_PATH + "/exec", routes.exec)
    app.router.add_post(POD_PATH + "/exec", routes.spdy_fallback)
    app.router.add_get(POD_PATH + "/portforward", routes.portforward)
    app.router.add_post(POD_PATH + "/portforward", routes.spdy_fallback)
    app.router.add_get(POD_PATH + "/log", routes.log)


class PodStreamRoutes:
    def __init__(self, cluster) -> None:
        self._cluster = cluster

    async def exec(self, request: web.Request) -> web.StreamResponse:
        try:
            _, runtime, container = self._exec_target(request)
        except KubeletRefusal as refusal:
            return refusal.response()
        _require_websocket(request, exec_ws.PROTOCOL)
        query = request.query
        options = exec_ws.ExecOptions(
            stdin=_flag(query, "stdin"),
            stdout=_flag(query, "stdout"),
            stderr=_flag(query, "stderr"),
            tty=_flag(query, "tty"),
        )
        ws = await _accept_websocket(request, exec_ws.PROTOCOL)
        try:
            argv = runtime.exec_argv(container, query.getall("command", []))
        except OSError as error:  # the pod's sandbox just went away
            await exec_ws.finish_with_status(ws, exec_ws.internal_error_status(str(error)))
            return ws
        await exec_ws.run_exec(ws, argv, options, self._cluster.faults)
        return ws

    async def portforward(self, request: web.Request) -> web.StreamResponse:
        pod, runtime = self._running_pod(request)
        _require_websocket(request, portforward.PROTOCOL)
        ws = await _accept_websocket(request, portforward.PROTOCOL)
        session = portforward.PortForwardSession(ws, runtime, pod["metadata"]["uid"], self._cluster.faults)
        with self._deletion_of(pod) as pod_gone:
            await session.run(pod_gone)
        return ws

    async def log(self, request: web.Request) -> web.StreamResponse:
        pod = self._pod(request)
        name, query = pod["metadata"]["name"], request.query
        container = _log_container(pod, query.get("container"))
        previous = _flag(query, "previous")
        instance = podlogs.logged_instance(pod, container, previous)  # raises the kubelet's errors
        runtime = self._cluster.kubelet.runtime(pod["metadata"]["namespace"], name)
        if runtime is None:
            raise errors.bad_request(
                f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating'
            )
        tail = query.get("tailLines")
        options = podlogs.LogOptions(
            follow=_flag(query, "follow"),
            tail_lines=int(tail) if tail and tail.lstrip("-").isdigit() else None,
        )
        path = runtime.log_path(container, previous=previous)
        with self._deletion_of(pod) as pod_gone:
            return await podlogs.serve_log(
                request,
                path,
                options,
                lambda: not pod_gone.is_set() and self._instance_running(pod, container, instance),
            )

    async def spdy_fallback(self, request: web.Request) -> web.StreamResponse:
        # The same checks as the websocket routes, so kubectl shows why its websocket was refused.
        if request.path.endswith("/exec"):
            try:
                self._exec_target(request)
            except KubeletRefusal as refusal:
                return refusal.response()
        else:
            self._running_pod(request)
        raise errors.bad_request(
            "kubesim serves pods/exec and pods/portforward over websockets only "
            "(v5.channel.k8s.io, SPDY/3.1+portforward.k8s.io), not SPDY upgrades"
        )

    def _pod(self, request: web.Request) -> dict:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        pod = self._cluster.store.get("pods", namespace, name)
        if pod is None:
            raise errors.not_found("pods", "", name)
        return pod

    def _exec_target(self, request: web.Request) -> tuple[dict, Any, str]:
        """(pod, runtime, container) of an exec, refused as the apiserver and kubelet refuse it. Returns with
        the container to exec in validated and running."""
        pod = self._pod(request)
        name = pod["metadata"]["name"]
        if not (pod.get("spec") or {}).get("nodeName"):
            raise errors.bad_request(f"pod {name} does not have a host assigned")
        container = _exec_container(pod, request.query.get("container"))
        runtime = self._cluster.kubelet.runtime(pod["metadata"]["namespace"], name)
        _require_container_running(runtime, container)
        return pod, runtime, container

    def _running_pod(self, request: web.Request):
        pod = self._pod(request)
        name = pod["metadata"]["name"]
        phase = pod.get("status", {}).get("phase", "Pending")
        runtime = self._cluster.kubelet.runtime(pod["metadata"]["namespace"], name)
        if phase != "Running" or runtime is None:
            raise errors.bad_request(f'pod "{name}" is not running (phase {phase})')
        return pod, runtime

    def _instance_running(self, pod: dict, container: str, instance: str) -> bool:
        """Whether that container instance (containerID) still runs: a follow ends with it."""
        current = self._cluster.store.get("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
        if current is None or current["metadata"].get("uid") != pod["metadata"].get("uid"):
            return False
        status = podlogs.container_status(current, container) or {}
        return "running" in status.get("state", {}) and status.get("containerID") == instance

    @contextlib.contextmanager
    def _deletion_of(self, pod: dict) -> Iterator[asyncio.Event]:
        """An event set once this pod (this uid, not a successor of the same name) is deleted."""
        gone = asyncio.Event()
        uid = pod["metadata"].get("uid")

        def on_event(event_type: str, key: str, obj: dict) -> None:
            if key == "pods" and event_type == "DELETED" and obj["metadata"].get("uid") == uid:
                gone.set()

        self._cluster.store.subscribe(on_event)
        try:
            yield gone
        finally:
            self._cluster.store.unsubscribe(on_event)


def _container_names(pod: dict, field: str = "containers") -> list[str]:
    return [c["name"] for c in pod.get("spec", {}).get(field) or []]


def _exec_container(pod: dict, container: str | None) -> str:
    """The apiserver validates the container before any upgrade; without one, the first."""
    names = _container_names(pod)
    if not container:
        return names[0]
    if container not in names:
        raise errors.bad_request(f"container {container} is not valid for pod {pod['metadata']['name']}")
    return container


def _log_container(pod: dict, container: str | None) -> str:
    names, inits, name = (
        _container_names(pod),
        _container_names(pod, "initContainers"),
        pod["metadata"]["name"],
    )
    if container is None:
        if len(names) == 1:
            return names[0]
        raise errors.bad_request(
            f"a container name must be specified for pod {name}, choose one of: "
            f"[{' '.join(names)}]" + (f" or one of the init containers: [{' '.join(inits)}]" if inits else "")
        )
    if container not in names + inits:
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    return container


class KubeletRefusal(Exception):
    """The kubelet's own answer to an upgrade, plain text (the apiserver relays it as is)."""

    def __init__(self, code: int, text: str):
        super().__init__(text)
        self.code, self.text = code, text

    def response(self) -> web.Response:
        return web.Response(status=self.code, text=self.text + "\n", content_type="text/plain")


def _require_container_running(runtime, container: str) -> None:
    """The kubelet execs only in a running container (not one waiting to start or restart, nor
    one that exited): it answers `container not found ("name")`, which kubectl shows as
    `error: unable to upgrade connection: container not found ("name")`."""
    c = runtime.by_name.get(container) if runtime is not None else None
    inst = c.instance if c is not None else None
    if inst is None or not inst.running:
        raise KubeletRefusal(404, f'container not found ("{container}")')


def _flag(query, name: str) -> bool:
    return query.get(name, "").lower() in ("true", "1")


def _require_websocket(request: web.Request, protocol: str) -> None:
    offered = [p.strip() for p in request.headers.get(hdrs.SEC_WEBSOCKET_PROTOCOL, "").split(",")]
    if request.headers.get(hdrs.UPGRADE, "").lower() != "websocket" or protocol not in offered:
        raise errors.bad_request(f"this endpoint needs a websocket upgrade with subprotocol {protocol}")


async def _accept_websocket(request: web.Request, protocol: str) -> web.WebSocketResponse:
    # kubectl pings every few seconds itself, so no heartbeat; max_msg_size=0: no size limit.
    ws = web.WebSocketResponse(protocols=[protocol], max_msg_size=0, autoping=True)
    await ws.prepare(request)
    return ws
