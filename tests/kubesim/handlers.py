"""Generic REST handlers over the resource table: list/get/watch/create/update/patch/delete, discovery, reviews."""
from __future__ import annotations

import asyncio
import copy
import json
import logging
import random
import uuid

import yaml
from aiohttp import web

from . import discovery, errors, objects, patching, protobuf, selectors, tables
from .resources import BY_KEY, BY_PATH, Resource
from .store import now

log = logging.getLogger("kubesim.api")

JSON = "application/json"
APPLY = "application/apply-patch+yaml"
SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSONPATCH = "application/json-patch+json"
BOOKMARK_INTERVAL = 5.0
MAX_WATCH_SECONDS = 1800


def respond(obj, code: int = 200, content_type: str = JSON, headers: dict | None = None) -> web.Response:
    h = {"Content-Type": content_type, "Cache-Control": "no-cache, private"}
    if headers:
        h.update(headers)
    return web.Response(body=json.dumps(obj, separators=(",", ":")).encode(), status=code, headers=h)


def status_response(e: errors.ApiError) -> web.Response:
    return respond(e.status, e.code, headers=e.headers)


class Route:
    """What a resource URL names."""

    def __init__(self, res: Resource, namespace: str | None, name: str | None, sub: str | None, watch_prefix: bool):
        self.res, self.namespace, self.name, self.sub, self.watch_prefix = res, namespace, name, sub, watch_prefix

    @property
    def key(self) -> str:
        return self.res.key

    def not_found(self) -> errors.ApiError:
        return errors.not_found(self.res.plural, self.res.group, self.name or "")


def parse_route(parts: list[str]) -> Route | None:
    if parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 3:
            return None
        group, version, rest = parts[1], parts[2], parts[3:]
    watch = False
    if rest and rest[0] == "watch":
        watch, rest = True, rest[1:]
    if not rest:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        inner = BY_PATH.get((group, version, rest[2]))
        if inner is not None and inner.namespaced:
            namespace, rest = rest[1], rest[2:]
    res = BY_PATH.get((group, version, rest[0]))
    if res is None or len(rest) > 3:
        return None
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if res.namespaced and name is not None and namespace is None:
        return None
    if sub is not None and res.sub(sub) is None:
        return None
    return Route(res, namespace, name, sub, watch)


def _random_suffix(n: int = 5) -> str:
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


class Api:
    def __init__(self, cluster):
        self.cluster = cluster
        self.store = cluster.store
        self._watch_queues: set[asyncio.Queue] = set()

    # ---------------------------------------------------------------- entry
    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except errors.ApiError as e:
            return status_response(e)
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as e:
            log.exception("handler failed: %s %s", request.method, request.path_qs)
            return status_response(errors.internal(f"{type(e).__name__}: {e}"))

    def close_watches(self) -> None:
        for q in list(self._watch_queues):
            q.put_nowait(("__close__", None))

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        accept = request.headers.get("Accept", "")
        method = request.method
        if not parts:
            return respond({"paths": ["/api", "/api/v1", "/apis", "/openapi/v3", "/version", "/healthz"]})
        if parts[0] in ("healthz", "readyz", "livez") and method == "GET":
            return web.Response(text="ok", content_type="text/plain")
        if parts == ["version"]:
            return respond(discovery.VERSION)
        if parts[0] == "openapi":
            return self._openapi(parts)
        if parts[0] not in ("api", "apis"):
            raise errors.no_such_route()
        # discovery documents
        if len(parts) == 1 or (parts[0] == "apis" and len(parts) == 2) or (parts[0] == "api" and len(parts) == 2) \
                or (parts[0] == "apis" and len(parts) == 3):
            if method != "GET":
                raise errors.method_not_allowed()
            return self._discovery(parts, accept, request)
        route = parse_route(parts)
        if route is None:
            raise errors.no_such_route()
        return await self._resource(request, route, accept)

    # ---------------------------------------------------------------- discovery
    def _discovery(self, parts, accept, request):
        if len(parts) == 1:
            if discovery.wants_aggregated(accept):
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

    def _openapi(self, parts):
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
    async def _resource(self, request: web.Request, route: Route, accept: str) -> web.StreamResponse:
        q = request.query
        method = request.method
        res = route.res
        watch = route.watch_prefix or q.get("watch") in ("true", "1")
        if method == "GET":
            verb = "watch" if watch else ("get" if route.name else "list")
        elif method == "POST":
            verb = "create"
        elif method == "PUT":
            verb = "update"
        elif method == "PATCH":
            verb = "patch"
        elif method == "DELETE":
            verb = "delete" if route.name else "deletecollection"
        else:
            raise errors.method_not_allowed()
        allowed = res.sub(route.sub).verbs if route.sub else res.verbs
        if verb == "watch" and route.name and "watch" in res.verbs:
            allowed = res.verbs
        if verb not in allowed or (method == "POST" and route.name and not route.sub) \
                or (method in ("PUT", "PATCH") and not route.name):
            raise errors.method_not_allowed()
        key = route.key + (f"/{route.sub}" if route.sub else "")
        failure = self.cluster.faults.take_request_failure(verb, key)
        if failure is not None:
            log.info("injected fault %s for %s %s", failure["code"], verb, key)
            return respond(failure, failure["code"])
        if not res.store:
            return await self._review(request, route)
        if route.sub in ("exec", "portforward", "log"):
            raise errors.ApiError(errors.status(400, "BadRequest", f"{route.sub} is served by the node half (not available)"))
        if verb == "list":
            return self._list(route, q, accept)
        if verb == "watch":
            return await self._watch(request, route, q, accept)
        if verb == "get":
            return self._get(route, q, accept)
        if verb == "create":
            return await self._create(request, route, q)
        if verb == "update":
            return await self._update(request, route, q)
        if verb == "patch":
            return await self._patch(request, route, q)
        if verb == "delete":
            return await self._delete(request, route, q)
        return await self._delete_collection(request, route, q)

    # ---------------------------------------------------------------- reads
    def _filters(self, route: Route, q):
        labels = selectors.parse_labels(q.get("labelSelector"))
        fields = selectors.parse_fields(q.get("fieldSelector"), route.res.fields)
        if route.name:
            fields.append(("metadata.name", "=", route.name))

        def match(obj):
            if route.namespace and obj["metadata"].get("namespace") != route.namespace:
                return False
            return selectors.match_labels(labels, obj["metadata"].get("labels")) and selectors.match_fields(fields, obj)
        return match

    def _list(self, route: Route, q, accept: str):
        match = self._filters(route, q)
        items = [o for o in self.store.list(route.key, route.namespace if route.res.namespaced else None) if match(o)]
        rv = str(self.store.resource_version)
        if tables.wants_table(accept):
            return respond(tables.table(route.key, items, q.get("includeObject", "PartialObjectMetadata"), rv))
        return respond({"kind": route.res.list_kind, "apiVersion": route.res.group_version,
                        "metadata": {"resourceVersion": rv}, "items": items})

    def _get(self, route: Route, q, accept: str):
        obj = self.store.get(route.key, route.namespace, route.name)
        if obj is None:
            raise route.not_found()
        if route.sub == "scale":
            return respond(self._scale_of(obj))
        if tables.wants_table(accept) and not route.sub:
            return respond(tables.table(route.key, [obj], q.get("includeObject", "PartialObjectMetadata")))
        return respond(obj)

    async def _watch(self, request: web.Request, route: Route, q, accept: str):
        match = self._filters(route, q)
        rv_param = q.get("resourceVersion", "")
        try:
            timeout = min(float(q.get("timeoutSeconds") or MAX_WATCH_SECONDS), MAX_WATCH_SECONDS)
            since = int(rv_param) if rv_param not in ("", "0") else None
        except ValueError:
            raise errors.bad_request(f"invalid watch parameters: resourceVersion={rv_param!r} timeoutSeconds={q.get('timeoutSeconds')!r}")
        bookmarks = q.get("allowWatchBookmarks") == "true"
        send_initial = q.get("sendInitialEvents") == "true"
        as_table = tables.wants_table(accept)
        include = q.get("includeObject", "PartialObjectMetadata")
        key = route.key
        ns = route.namespace if route.res.namespaced else None
        queue: asyncio.Queue = asyncio.Queue()

        def on_event(event_type, k, obj):
            if k == key:
                queue.put_nowait((event_type, obj))

        # subscribe and snapshot in one synchronous step: nothing between them is lost
        self.store.subscribe(on_event)
        self._watch_queues.add(queue)
        try:
            visible = {(o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in self.store.list(key, ns) if match(o)}
            expired = None
            if since is None or send_initial:
                initial = [("ADDED", o) for o in self.store.list(key, ns) if match(o)]
            else:
                hist = self.store.history_since(since)
                if hist is None:
                    initial = []
                    expired = errors.gone(f"too old resource version: {since} ({self.store.resource_version})")
                else:
                    initial = [(t, o) for (_, t, k, o) in hist if k == key]
            resp = web.StreamResponse(status=200, headers={"Content-Type": JSON, "Cache-Control": "no-cache, private"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            first = [True]

            async def send(event_type, obj):
                if as_table and event_type != "ERROR" and event_type != "BOOKMARK":
                    obj = tables.table(key, [obj], include, headers=first[0])
                    first[0] = False
                line = json.dumps({"type": event_type, "object": obj}, separators=(",", ":")) + "\n"
                await resp.write(line.encode())

            def visible_event(event_type, obj):
                ident = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                m = match(obj)
                if event_type == "DELETED":
                    was = ident in visible or m
                    visible.discard(ident)
                    return "DELETED" if was else None
                if m:
                    t = event_type if ident in visible or event_type == "ADDED" else "ADDED"
                    visible.add(ident)
                    return t
                if ident in visible:
                    visible.discard(ident)
                    return "DELETED"
                return None

            try:
                if expired is not None:
                    await send("ERROR", expired)
                    return resp
                if since is not None and not send_initial:
                    # objects whose first replayed event is ADDED did not exist at `since`; others did
                    first_seen: dict = {}
                    for t, o in initial:
                        first_seen.setdefault((o["metadata"].get("namespace", ""), o["metadata"]["name"]), (t, o))
                    for ident, (t, o) in first_seen.items():
                        if t == "ADDED":
                            visible.discard(ident)
                        else:
                            visible.add(ident)
                for t, o in initial:
                    if since is None or send_initial:
                        await send(t, o)
                    else:
                        t2 = visible_event(t, o)
                        if t2:
                            await send(t2, o)
                if send_initial and bookmarks:
                    await send("BOOKMARK", self._bookmark(route, initial_end=True))
                loop = asyncio.get_running_loop()
                deadline = loop.time() + timeout
                next_bookmark = loop.time() + BOOKMARK_INTERVAL
                while True:
                    left = deadline - loop.time()
                    if left <= 0 or request.transport is None or request.transport.is_closing():
                        break
                    try:
                        t, o = await asyncio.wait_for(queue.get(), min(left, 1.0))
                    except asyncio.TimeoutError:
                        if bookmarks and loop.time() >= next_bookmark:
                            await send("BOOKMARK", self._bookmark(route))
                            next_bookmark = loop.time() + BOOKMARK_INTERVAL
                        continue
                    if t == "__close__":
                        break
                    t2 = visible_event(t, o)
                    if t2:
                        await send(t2, o)
            except (ConnectionResetError, ConnectionError):
                pass
            try:
                await resp.write_eof()
            except Exception:
                pass
            return resp
        finally:
            self.store.unsubscribe(on_event)
            self._watch_queues.discard(queue)

    def _bookmark(self, route: Route, initial_end: bool = False) -> dict:
        meta = {"resourceVersion": str(self.store.resource_version)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": route.res.kind, "apiVersion": route.res.group_version, "metadata": meta}

    # ---------------------------------------------------------------- bodies and checks
    async def _read_object(self, request: web.Request, res: Resource) -> dict:
        raw = await request.read()
        ctype = request.content_type
        if "protobuf" in ctype:
            try:
                return protobuf.decode(raw)
            except (protobuf.DecodeError, ValueError, IndexError, KeyError) as e:
                raise errors.bad_request(f"the object provided is unrecognized (must be of type {res.kind}): {e}")
        try:
            if "yaml" in ctype:
                body = yaml.safe_load(raw.decode())
            else:
                body = json.loads(raw.decode() or "null")
        except (ValueError, yaml.YAMLError, UnicodeDecodeError) as e:
            raise errors.bad_request(f"the object provided is unrecognized (must be of type {res.kind}): "
                                     f"couldn't get version/kind; json parse error: {str(e).splitlines()[0]}")
        if not isinstance(body, dict):
            raise errors.bad_request(f"the object provided is unrecognized (must be of type {res.kind}): "
                                     f"couldn't get version/kind; json parse error: json: cannot unmarshal "
                                     f"{type(body).__name__} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }}")
        if not isinstance(body.get("metadata", {}), dict):
            raise errors.bad_request(f"{res.kind} in version \"{res.version}\" cannot be handled as a {res.kind}: "
                                     f"json: cannot unmarshal into Go struct field {res.kind}.metadata of type v1.ObjectMeta")
        return body

    def _check_type(self, res: Resource, body: dict, name: str, required: bool = False) -> None:
        causes = []
        av, kind = body.get("apiVersion"), body.get("kind")
        if av is None and required:
            causes.append(errors.field_required("apiVersion", "apiVersion must be set"))
        elif av is not None and av != res.group_version:
            causes.append(errors.field_invalid("apiVersion", av, f"must be {res.group_version}"))
        if kind is None and required:
            causes.append(errors.field_required("kind", "kind must be set"))
        elif kind is not None and kind != res.kind:
            causes.append(errors.field_invalid("kind", kind, f"must be {res.kind}"))
        if causes:
            raise errors.invalid(res.kind, res.group, name, causes)

    def _check_fields(self, res: Resource, body: dict, q, apply: bool = False) -> dict:
        """fieldValidation: Strict rejects unknown fields, Warn (the default) warns, Ignore ignores."""
        mode = (q.get("fieldValidation") or "Warn").lower()
        unknown = objects.unknown_fields(res, body) if mode in ("strict", "warn") else []
        if not unknown:
            return {}
        if mode == "strict":
            if apply:
                raise errors.bad_request(
                    f"failed to create typed patch object ({body.get('metadata', {}).get('namespace', '')}/"
                    f"{body.get('metadata', {}).get('name', '')}; {res.group_version}, Kind={res.kind}): "
                    + ", ".join(f".{u}: field not declared in schema" for u in unknown))
            raise errors.bad_request(f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: '
                                     f"strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown))
        return {"Warning": ", ".join(f'299 - "unknown field \\"{u}\\""' for u in unknown)}

    def _manager(self, request: web.Request, q) -> str:
        m = q.get("fieldManager")
        if m:
            return m
        ua = request.headers.get("User-Agent", "unknown")
        return ua.split("/", 1)[0] or "unknown"

    def _require_namespace(self, route: Route) -> None:
        if not route.res.namespaced:
            return
        phase = self.cluster.namespace_phase(route.namespace)
        if phase is None:
            raise errors.namespace_not_found(route.namespace)
        if phase == "Terminating":
            raise errors.forbidden(route.res.plural, route.res.group, "",
                                   f"unable to create new content in namespace {route.namespace} because it is being terminated")

    def _settle_namespace(self, route: Route, body: dict) -> None:
        meta = body.setdefault("metadata", {})
        if route.res.namespaced:
            if meta.get("namespace") and meta["namespace"] != route.namespace:
                raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = route.namespace
        else:
            meta.pop("namespace", None)

    # ---------------------------------------------------------------- writes
    async def _create(self, request: web.Request, route: Route, q):
        res = route.res
        if route.sub:
            raise errors.method_not_allowed()
        body = await self._read_object(request, res)
        meta = body.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + _random_suffix()
        self._check_type(res, body, meta.get("name") or "")
        warnings = self._check_fields(res, body, q)
        self._settle_namespace(route, body)
        if not meta.get("name"):
            objects.validate(res.key, res, body, None)
        self._require_namespace(route)
        obj = await self._finish_create(route, body, self._manager(request, q), q, None)
        return respond(obj, 201, headers=warnings)

    async def _finish_create(self, route: Route, body: dict, manager: str, q, managed: list | None) -> dict:
        res = route.res
        meta = body["metadata"]
        if self.store.get(res.key, route.namespace, meta.get("name", "")) is not None:
            raise errors.already_exists(res.plural, res.group, meta["name"])
        for f in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "generation", "selfLink", "managedFields"):
            meta.pop(f, None)
        body["apiVersion"], body["kind"] = res.group_version, res.kind
        if managed is None:
            managed = patching.record_update(None, body, manager, res.group_version, now())
        if res.status_sub or res.key in ("pods", "persistentvolumeclaims", "namespaces"):
            body.pop("status", None)
            objects.initial_status(res.key, body)
        objects.apply_defaults(res.key, body)
        objects.validate(res.key, res, body, None)
        self.cluster.admit(res.key, body)
        if managed:
            meta["managedFields"] = managed
        if q.get("dryRun") == "All":
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=now())
            return body
        return self.store.create(res.key, body)

    async def _update(self, request: web.Request, route: Route, q):
        res = route.res
        body = await self._read_object(request, res)
        old = self.store.get(res.key, route.namespace, route.name)
        if route.sub == "scale":
            if old is None:
                raise route.not_found()
            return respond(self._apply_scale(old, body, request, q))
        name = (body.get("metadata") or {}).get("name")
        if name and name != route.name:
            raise errors.bad_request(f"the name of the object ({name}) does not match the name on the URL ({route.name})")
        body.setdefault("metadata", {})["name"] = route.name
        self._check_type(res, body, route.name)
        warnings = self._check_fields(res, body, q)
        self._settle_namespace(route, body)
        if old is None:
            raise route.not_found()
        obj = self._commit(route, old, body, self._manager(request, q), q)
        return respond(obj, 200, headers=warnings)

    async def _patch(self, request: web.Request, route: Route, q):
        res = route.res
        ctype = request.content_type
        if ctype == APPLY:
            return await self._apply(request, route, q)
        if ctype not in (SMP, MERGE, JSONPATCH):
            raise errors.unsupported_media_type(ctype)
        raw = await request.read()
        try:
            patch = json.loads(raw.decode() or "null")
        except (ValueError, UnicodeDecodeError) as e:
            raise errors.bad_request(f"error decoding patch: {e}")
        old = self.store.get(res.key, route.namespace, route.name)
        if old is None:
            raise route.not_found()
        base = self._scale_of(old) if route.sub == "scale" else old

        if ctype == JSONPATCH:
            patched = patching.json_patch(base, patch)
        elif not isinstance(patch, dict):
            raise errors.bad_request("the body of the patch must be a JSON object")
        elif ctype == MERGE:
            patched = patching.merge_patch(base, patch)
        else:
            patched = patching.strategic_merge(base, patch)
        if not isinstance(patched, dict):
            raise errors.bad_request("the patched object is not an object")
        if route.sub == "scale":
            return respond(self._apply_scale(old, patched, request, q))
        warnings = self._check_fields(res, patched, q)
        patched.setdefault("metadata", {})["name"] = route.name
        if res.namespaced:
            patched["metadata"]["namespace"] = route.namespace
        self._check_type(res, patched, route.name)
        obj = self._commit(route, old, patched, self._manager(request, q), q)
        return respond(obj, 200, headers=warnings)

    async def _apply(self, request: web.Request, route: Route, q):
        res = route.res
        manager = q.get("fieldManager")
        if not manager:
            raise errors.bad_request("PATCH /apply requests require fieldManager")
        raw = await request.read()
        try:
            applied = yaml.safe_load(raw.decode())
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise errors.bad_request(f"error decoding YAML: {str(e).splitlines()[0]}")
        if not isinstance(applied, dict):
            raise errors.bad_request("error decoding YAML: the applied configuration must be an object")
        meta = applied.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if meta.get("name") and meta["name"] != route.name:
            raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({route.name})")
        self._check_type(res, applied, route.name, required=True)
        warnings = self._check_fields(res, applied, q, apply=True)
        meta["name"] = route.name
        self._settle_namespace(route, applied)
        force = q.get("force") == "true"
        old = self.store.get(res.key, route.namespace, route.name)
        if route.sub == "status":
            if old is None:
                raise route.not_found()
            merged = patching.strategic_merge(old, {"status": applied.get("status") or {}})
            return respond(self._commit(route, old, merged, manager, q), 200, headers=warnings)
        if route.sub:
            raise errors.method_not_allowed()
        if old is None:
            self._require_namespace(route)
            merged, managed = patching.server_side_apply(None, applied, manager, force, res.group_version, now())
            obj = await self._finish_create(route, merged, manager, q, managed)
            return respond(obj, 201, headers=warnings)
        merged, managed = patching.server_side_apply(old, applied, manager, force, res.group_version, now())
        merged.setdefault("metadata", {})["resourceVersion"] = old["metadata"]["resourceVersion"]
        obj = self._commit(route, old, merged, manager, q, managed=managed)
        return respond(obj, 200, headers=warnings)

    def _commit(self, route: Route, old: dict, new: dict, manager: str, q, managed: list | None = None) -> dict:
        """Settle metadata, status and generation of an update, validate it, and write it (unless a no-op)."""
        res = route.res
        new = copy.deepcopy(new)
        meta = new.setdefault("metadata", {})
        om = old["metadata"]
        rv = meta.get("resourceVersion")
        if rv and rv != om["resourceVersion"]:
            raise errors.stale(res.plural, res.group, route.name)
        if meta.get("uid") and meta["uid"] != om["uid"]:
            raise errors.conflict(res.plural, res.group, route.name,
                                  f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {om['uid']}")
        if route.sub == "status":
            status = new.get("status")
            new = copy.deepcopy(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
            meta = new["metadata"]
        elif res.status_sub:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        for f in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation",
                  "resourceVersion", "namespace", "name", "generateName", "selfLink"):
            if f in om:
                meta[f] = om[f]
            else:
                meta.pop(f, None)
        new["apiVersion"], new["kind"] = res.group_version, res.kind
        objects.apply_defaults(res.key, new)
        if route.sub != "status":
            objects.validate(res.key, res, new, old)
        if res.generation and _spec_part(new) != _spec_part(old):
            meta["generation"] = int(om.get("generation") or 1) + 1
        if managed is None:
            managed = patching.record_update(old, new, manager, res.group_version, now(), route.sub)
        if managed:
            meta["managedFields"] = managed
        else:
            meta.pop("managedFields", None)
        if _without_managed(new) == _without_managed(old):
            return old
        if q.get("dryRun") == "All":
            return new
        removed = self.cluster.finalize_if_done(res.key, new) if meta.get("deletionTimestamp") and not meta.get("finalizers") else None
        if removed is not None:
            return removed
        return self.store.update(res.key, new)

    # ---------------------------------------------------------------- scale subresource
    def _scale_of(self, obj: dict) -> dict:
        m = obj["metadata"]
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": m["name"], "namespace": m.get("namespace"), "uid": m["uid"],
                             "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
                "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
                "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                           "selector": selectors.label_selector_string((obj.get("spec") or {}).get("selector"))}}

    def _apply_scale(self, old: dict, scale: dict, request, q) -> dict:
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        replicas = (scale.get("spec") or {}).get("replicas")
        key = "statefulsets.apps" if old["kind"] == "StatefulSet" else "deployments.apps"
        r = Route(BY_KEY[key], old["metadata"]["namespace"], old["metadata"]["name"], None, False)
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid("Scale", "autoscaling", old["metadata"]["name"],
                                 [errors.field_invalid("spec.replicas", replicas, "must be greater than or equal to 0")])
        new = copy.deepcopy(old)
        new["spec"]["replicas"] = replicas
        if rv:
            new["metadata"]["resourceVersion"] = rv
        return self._scale_of(self._commit(r, old, new, self._manager(request, q), q))

    # ---------------------------------------------------------------- delete
    async def _delete_options(self, request: web.Request, q) -> dict:
        raw = await request.read()
        opts = {}
        if raw.strip() and "protobuf" in request.content_type:
            try:
                opts = protobuf.decode(raw)
            except (protobuf.DecodeError, ValueError, IndexError, KeyError) as e:
                raise errors.bad_request(f"error decoding DeleteOptions: {e}")
        elif raw.strip():
            try:
                opts = json.loads(raw.decode())
            except (ValueError, UnicodeDecodeError) as e:
                raise errors.bad_request(f"error decoding DeleteOptions: {e}")
            if not isinstance(opts, dict):
                raise errors.bad_request("DeleteOptions must be an object")
        for k in ("gracePeriodSeconds", "propagationPolicy", "dryRun"):
            if k in q and k not in opts:
                opts[k] = int(q[k]) if k == "gracePeriodSeconds" else q[k]
        return opts

    def _delete_one(self, route: Route, name: str, opts: dict) -> dict:
        res = route.res
        obj = self.store.get(res.key, route.namespace, name)
        if obj is None:
            raise errors.not_found(res.plural, res.group, name)
        pre = opts.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]:
            raise errors.conflict(res.plural, res.group, name,
                                  f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {obj['metadata']['uid']}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]:
            raise errors.conflict(res.plural, res.group, name,
                                  f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, ResourceVersion in object meta: {obj['metadata']['resourceVersion']}")
        if res.key == "namespaces" and name in ("default", "kube-system", "kube-public"):
            raise errors.forbidden("namespaces", "", name, "this namespace may not be deleted")
        dry = opts.get("dryRun")
        if dry == "All" or dry == ["All"]:
            return obj
        grace = opts.get("gracePeriodSeconds")
        out = self.cluster.delete_object(res.key, route.namespace, name, grace if isinstance(grace, int) else None)
        return out or obj

    async def _delete(self, request: web.Request, route: Route, q):
        if route.sub:
            raise errors.method_not_allowed()
        opts = await self._delete_options(request, q)
        return respond(self._delete_one(route, route.name, opts))

    async def _delete_collection(self, request: web.Request, route: Route, q):
        opts = await self._delete_options(request, q)
        match = self._filters(route, q)
        items = []
        for o in self.store.list(route.key, route.namespace if route.res.namespaced else None):
            if match(o):
                items.append(self._delete_one(route, o["metadata"]["name"], opts))
        return respond({"kind": route.res.list_kind, "apiVersion": route.res.group_version,
                        "metadata": {"resourceVersion": str(self.store.resource_version)}, "items": items})

    # ---------------------------------------------------------------- authorization reviews
    async def _review(self, request: web.Request, route: Route):
        raw = await request.read()
        spec = {}
        try:
            body = json.loads(raw.decode())
            if isinstance(body, dict):
                spec = body.get("spec") or {}
        except (ValueError, UnicodeDecodeError):
            pass  # kubectl sends protobuf here; the answer does not depend on it
        if route.res.kind == "SelfSubjectAccessReview":
            status = {"allowed": True, "reason": "kubesim allows everything"}
        else:
            status = {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                      "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}], "incomplete": False}
        return respond({"kind": route.res.kind, "apiVersion": route.res.group_version,
                        "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}, 201)


def _spec_part(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _without_managed(obj: dict) -> dict:
    """The object as compared for a no-op write: managedFields without their timestamps, no resourceVersion."""
    o = copy.deepcopy(obj)
    meta = o.get("metadata", {})
    meta.pop("resourceVersion", None)
    meta["managedFields"] = sorted((json.dumps({k: v for k, v in e.items() if k != "time"}, sort_keys=True)
                                    for e in meta.get("managedFields") or []))
    return o
