"""The generic API entry (API half): every `/api`, `/apis`, `/openapi`, `/version` request.

`Api.handle` finds what a URL names (discovery and OpenAPI documents, or a resource `Route`),
maps the method to a verb, checks it is allowed and not hit by an injected fault, and hands
over: reads (list/get) here, watches to `api_watch`, writes to `api_writes`, scale and reviews
to `api_subresources`. Request parsing and checks live in `api_request`.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from . import discovery, errors, selectors, tables
from .api_request import Route, parse_route, respond
from .api_subresources import review, scale_of, token_request
from .api_watch import CLOSE, Watch
from .api_writes import Writes
from .resources import GATEWAY_GROUP

log = logging.getLogger("kubesim.api")

VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}
NODE_SUBRESOURCES = ("exec", "portforward", "log")


class Api:
    def __init__(self, cluster):
        self.cluster = cluster
        self.store = cluster.store
        self.writes = Writes(cluster)
        self._watch_queues: set[asyncio.Queue] = set()

    # ---------------------------------------------------------------- entry
    def close_watches(self) -> None:
        for q in list(self._watch_queues):
            q.put_nowait((CLOSE, None))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Errors (ApiError, or anything unexpected) are answered as Statuses by the server's middleware."""
        parts = [p for p in request.path.split("/") if p]
        if not parts:
            return respond({"paths": ["/api", "/api/v1", "/apis", "/openapi/v3", "/version", "/healthz"]})
        if parts[0] in ("healthz", "readyz", "livez") and request.method == "GET":
            return web.Response(text="ok", content_type="text/plain")
        if parts == ["version"]:
            return respond(discovery.VERSION)
        if parts[0] == "openapi":
            return self._openapi(parts)
        if parts[0] not in ("api", "apis"):
            raise errors.no_such_route()
        if len(parts) == 1 or len(parts) == 2 or (parts[0] == "apis" and len(parts) == 3):
            if request.method != "GET":
                raise errors.method_not_allowed()
            return self._discovery(parts, request)
        route = parse_route(parts)
        if route is None:
            raise errors.no_such_route()
        return await self._resource(request, route)

    # ---------------------------------------------------------------- discovery
    def _discovery(self, parts: list[str], request: web.Request) -> web.Response:
        if len(parts) == 1:
            if discovery.wants_aggregated(request.headers.get("Accept", "")):
                return respond(discovery.aggregated(parts[0] == "api"), content_type=discovery.AGGREGATED_CT)
            if parts[0] == "api":
                return respond(discovery.api_versions(request.host))
            return respond(discovery.api_group_list())
        if parts[0] == "api":
            doc = discovery.resource_list("", parts[1])
        elif len(parts) == 2:
            doc = discovery.api_group(parts[1])
        else:
            doc = discovery.resource_list(parts[1], parts[2])
        if doc is None:
            raise errors.no_such_route()
        return respond(doc)

    def _openapi(self, parts: list[str]) -> web.Response:
        if parts == ["openapi", "v3"]:
            return respond(discovery.openapi_index())
        if len(parts) >= 4 and parts[1] == "v3":
            rest = parts[2:]
            doc = None
            if rest[0] == "api" and len(rest) == 2:
                doc = discovery.openapi_doc("", rest[1])
            elif rest[0] == "apis" and len(rest) == 3:
                doc = discovery.openapi_doc(rest[1], rest[2])
            if doc is not None:
                return respond(doc)
        raise errors.no_such_route()

    # ---------------------------------------------------------------- resources
    async def _resource(self, request: web.Request, route: Route) -> web.StreamResponse:
        q = request.query
        verb = _verb(request.method, route, q)
        key = route.key + (f"/{route.sub}" if route.sub else "")
        failure = self.cluster.faults.take_request_failure(verb, key, q.get("dryRun") == "All")
        if failure is not None:
            log.info("injected fault %s for %s %s", failure["code"], verb, key)
            return respond(failure, failure["code"])
        if not route.res.store:
            return await review(request, route, self.cluster)
        if route.sub == "token":
            return await token_request(request, route, self.cluster)
        if route.sub in NODE_SUBRESOURCES:
            raise errors.ApiError(
                errors.status(400, "BadRequest", f"{route.sub} is served by the node half (not available)")
            )
        accept = request.headers.get("Accept", "")
        if verb == "list":
            return self._list(route, q, accept)
        if verb == "watch":
            return await Watch(self.store, route, q, accept, self._filters(route, q)).serve(
                request, self._watch_queues
            )
        if verb == "get":
            return self._get(route, q, accept)
        if verb == "deletecollection":
            return await self.writes.delete_collection(request, route, q, self._filters(route, q))
        return await getattr(self.writes, verb)(request, route, q)

    # ---------------------------------------------------------------- reads
    def _filters(self, route: Route, q):
        labels = selectors.parse_labels(q.get("labelSelector"))
        fields = selectors.parse_fields(q.get("fieldSelector"), route.res.fields)
        if route.name:
            fields.append(("metadata.name", "=", route.name))

        def match(obj):
            if route.namespace and obj["metadata"].get("namespace") != route.namespace:
                return False
            return selectors.match_labels(labels, obj["metadata"].get("labels")) and selectors.match_fields(
                fields, obj
            )

        return match

    def _list(self, route: Route, q, accept: str) -> web.Response:
        match = self._filters(route, q)
        items = [o for o in self.store.list(route.key, route.list_namespace) if match(o)]
        rv = str(self.store.resource_version)
        if tables.wants_table(accept):
            return respond(
                tables.table(route.key, items, q.get("includeObject", "PartialObjectMetadata"), rv)
            )
        return respond(
            {
                "kind": route.res.list_kind,
                "apiVersion": route.res.group_version,
                "metadata": {"resourceVersion": rv},
                "items": [_list_item(route.res, o) for o in items],
            }
        )

    def _get(self, route: Route, q, accept: str) -> web.Response:
        obj = self.store.get(route.key, route.namespace, route.name)
        if obj is None:
            raise route.not_found()
        if route.sub == "scale":
            return respond(scale_of(obj))
        if tables.wants_table(accept) and not route.sub:
            return respond(tables.table(route.key, [obj], q.get("includeObject", "PartialObjectMetadata")))
        return respond(obj)


def _list_item(res, obj: dict) -> dict:
    """An item of a JSON list as the API server writes it: a built-in type's items carry no kind nor
    apiVersion (the typed list's items are encoded without their TypeMeta; `kubectl get -o json` sets them
    again). A custom resource's items keep theirs (the Gateway API is served from its CRDs)."""
    if res.group == GATEWAY_GROUP:
        return obj
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


def _verb(method: str, route: Route, q) -> str:
    """The API verb of a request on a resource route; 405 when the resource does not allow it."""
    res = route.res
    watch = route.watch_prefix or q.get("watch") in ("true", "1")
    if method == "GET":
        verb = "watch" if watch else ("get" if route.name else "list")
    elif method == "DELETE":
        verb = "delete" if route.name else "deletecollection"
    elif method in VERBS:
        verb = VERBS[method]
    else:
        raise errors.method_not_allowed()
    allowed = res.sub(route.sub).verbs if route.sub else res.verbs
    if verb == "watch" and route.name and "watch" in res.verbs:
        allowed = res.verbs
    if (
        verb not in allowed
        or (method == "POST" and route.name and not route.sub)
        or (method in ("PUT", "PATCH") and not route.name)
    ):
        raise errors.method_not_allowed()
    return verb
