"""The fault-injection control endpoint (/kubesim/v1/...), never used by kubectl."""

from __future__ import annotations

import datetime
import json
import logging

from aiohttp import web

from . import errors
from .api_request import respond

log = logging.getLogger("kubesim.control")


def _bad(msg: str) -> web.Response:
    return respond(errors.status(400, "BadRequest", msg), 400)


async def _body(request: web.Request) -> dict | None:
    try:
        body = json.loads((await request.read()).decode() or "{}")
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def add_control_routes(app: web.Application, cluster) -> None:
    control = Control(cluster)
    app.router.add_get("/kubesim/v1/faults", control.get_faults)
    app.router.add_delete("/kubesim/v1/faults", control.clear)
    app.router.add_post("/kubesim/v1/faults/requests", control.requests)
    app.router.add_post("/kubesim/v1/faults/portforward", control.portforward)
    app.router.add_post("/kubesim/v1/faults/link", control.link)
    app.router.add_post("/kubesim/v1/faults/unready", control.unready)
    app.router.add_post("/kubesim/v1/faults/kill", control.kill)
    app.router.add_post("/kubesim/v1/faults/clock", control.clock)
    app.router.add_get("/kubesim/v1/pods/{namespace}/{name}/pids", control.pids)
    app.router.add_get("/kubesim/v1/dataplane", control.dataplane)
    app.router.add_get("/kubesim/v1/tls", control.tls)
    app.router.add_post("/kubesim/v1/certificates", control.certificate)
    app.router.add_post("/kubesim/v1/tokens", control.token)
    app.router.add_post("/kubesim/v1/images", control.image)


class Control:
    def __init__(self, cluster) -> None:
        self.cluster = cluster
        self.faults = cluster.faults

    async def get_faults(self, request: web.Request) -> web.Response:
        return respond(self.faults.describe())

    async def clear(self, request: web.Request) -> web.Response:
        self.faults.clear()
        log.info("faults cleared")
        return respond(self.faults.describe())

    async def requests(self, request: web.Request) -> web.Response:
        b = await _body(request)
        if b is None or not b.get("verb") or not b.get("resource") or not isinstance(b.get("code"), int):
            return _bad('want {"verb": ..., "resource": ..., "code": int, "count": int}')
        dry_run = b.get("dryRun")
        self.faults.add_request_failure(
            b["verb"],
            b["resource"],
            b["code"],
            int(b.get("count", 1)),
            b.get("message"),
            dry_run if isinstance(dry_run, bool) else None,
        )
        log.info("fault: fail %s %s with %s x%s", b["verb"], b["resource"], b["code"], b.get("count", 1))
        return respond(self.faults.describe())

    async def portforward(self, request: web.Request) -> web.Response:
        b = await _body(request)
        if (
            b is None
            or "cutAfterBytes" not in b
            or not (b["cutAfterBytes"] is None or isinstance(b["cutAfterBytes"], int))
        ):
            return _bad('want {"cutAfterBytes": int|null}')
        self.faults.portforward_cut_after = b["cutAfterBytes"]
        log.info("fault: port-forward cut after %s bytes", b["cutAfterBytes"])
        return respond(self.faults.describe())

    async def link(self, request: web.Request) -> web.Response:
        b = await _body(request)
        rate = None if b is None else b.get("bytesPerSecond", "missing")
        if not (rate is None or (isinstance(rate, int) and not isinstance(rate, bool) and rate > 0)):
            return _bad('want {"bytesPerSecond": int > 0|null}')
        self.faults.link_bytes_per_second = rate
        log.info("fault: exec and port-forward streams paced at %s bytes/s", rate)
        return respond(self.faults.describe())

    async def unready(self, request: web.Request) -> web.Response:
        b = await _body(request)
        if b is None or not b.get("namespace") or not b.get("pod"):
            return _bad('want {"namespace": ..., "pod": ..., "hold": bool}')
        ident = (b["namespace"], b["pod"])
        if b.get("hold", True):
            self.faults.unready.add(ident)
        else:
            self.faults.unready.discard(ident)
        log.info("fault: unready %s/%s hold=%s", *ident, b.get("hold", True))
        self.cluster.wake()
        return respond(self.faults.describe())

    async def kill(self, request: web.Request) -> web.Response:
        b = await _body(request)
        if b is None or not b.get("namespace") or not b.get("pod") or not b.get("container"):
            return _bad('want {"namespace": ..., "pod": ..., "container": ...}')
        reason = b.get("reason")
        if reason not in (None, "OOMKilled"):
            return _bad('reason: "OOMKilled" or absent')
        ok = await self.cluster.kubelet.kill_container(b["namespace"], b["pod"], b["container"], reason)
        log.info("fault: kill %s/%s/%s -> %s", b["namespace"], b["pod"], b["container"], ok)
        if not ok:
            return respond(
                errors.status(
                    404, "NotFound", f'container "{b["container"]}" of pod "{b["pod"]}" is not running'
                ),
                404,
            )
        return respond({"killed": True})

    async def clock(self, request: web.Request) -> web.Response:
        """{"cronNow": "2026-11-29T10:00:30Z"}: the CronJob controller's clock stands still there (each
        call may move it, either way); null: the wall clock again."""
        b = await _body(request)
        value = None if b is None else b.get("cronNow", "missing")
        at = None
        if isinstance(value, str):
            try:
                at = datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
            except ValueError:
                pass
        if value is not None and at is None:
            return _bad('want {"cronNow": "YYYY-MM-DDTHH:MM:SSZ"|null}')
        self.faults.cron_clock = at.replace(tzinfo=datetime.timezone.utc) if at else None
        log.info("fault: the CronJob controller's clock at %s", value or "the wall clock")
        self.cluster.wake()
        return respond(self.faults.describe())

    async def pids(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        runtime = self.cluster.kubelet.runtime(ns, name)
        if runtime is None or not hasattr(runtime, "host_pids"):
            return respond(errors.status(404, "NotFound", f'pod "{name}" has no runtime'), 404)
        return respond({"pids": list(runtime.host_pids())})

    async def dataplane(self, request: web.Request) -> web.Response:
        """The local ports of the ingress and Gateway data plane (tests reach URLs through them)."""
        return respond(self.cluster.dataplane.ports())

    # ------------------------------------------------------------ identities (authentication)
    async def tls(self, request: web.Request) -> web.Response:
        """The https address and the CA a kubeconfig needs to reach it."""
        return respond(
            {"server": self.cluster.tls_url, "certificateAuthority": self.cluster.pki.ca_pem.decode()}
        )

    async def certificate(self, request: web.Request) -> web.Response:
        """A client certificate for {"user": NAME, "groups": [...]}, signed by the cluster CA."""
        body = await _body(request)
        if not body or not isinstance(body.get("user"), str) or not body["user"]:
            return _bad('want {"user": NAME, "groups": [GROUP...]}')
        groups = body.get("groups") or []
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            return _bad("groups must be a list of strings")
        cert, key = self.cluster.pki.client_certificate(body["user"], tuple(groups))
        return respond({"certificate": cert.decode(), "key": key.decode()})

    async def token(self, request: web.Request) -> web.Response:
        """A ServiceAccount token of any lifetime (a test hook: the API refuses under 10 minutes):
        {"namespace": NS, "name": SA, "expirationSeconds": N}."""
        body = await _body(request)
        if not body:
            return _bad('want {"namespace": NS, "name": SA, "expirationSeconds": N}')
        sa = self.cluster.store.get("serviceaccounts", body.get("namespace"), body.get("name", ""))
        if sa is None:
            return respond(errors.not_found("serviceaccounts", "", str(body.get("name"))).status, 404)
        seconds = body.get("expirationSeconds", 3600)
        if not isinstance(seconds, int) or seconds < 1:
            return _bad("expirationSeconds must be a positive integer")
        token, expiry = self.cluster.tokens.issue(sa, seconds)
        return respond({"token": token, "expirationTimestamp": expiry})

    async def image(self, request: web.Request) -> web.StreamResponse:
        """{"image": REF, "exists": false}: pulls of REF fail (ErrImagePull); true: they succeed.
        {"image": REF, "path": [DIR...]}: REF holds the programs of those host directories (first on the
        PATH of its containers), and can be pulled."""
        body = await _body(request)
        path = (body or {}).get("path")
        if body and isinstance(body.get("image"), str) and isinstance(path, list):
            if not all(isinstance(d, str) and d.startswith("/") for d in path):
                return _bad("path must be a list of absolute host directories")
            self.cluster.images.provide(body["image"], path)
            log.info("image %s: PATH %s", body["image"], path)
            return respond({"image": body["image"], "path": path})
        if not body or not isinstance(body.get("image"), str) or not isinstance(body.get("exists"), bool):
            return _bad('want {"image": REF, "exists": true|false} or {"image": REF, "path": [DIR...]}')
        self.cluster.images.mark(body["image"], body["exists"])
        return respond({"image": body["image"], "exists": body["exists"]})
