"""Writes of the generic API (API half): create (POST), update (PUT), patch (strategic-merge,
merge, JSON patch), server-side apply, delete and deletecollection, with the apiserver's
metadata, status, generation, managedFields, precondition and dry-run semantics."""

from __future__ import annotations

import copy
import json
import uuid

import yaml
from aiohttp import web

from . import admission, errors, objects, patching, protobuf, quantities
from .api_request import (
    APPLY,
    JSONPATCH,
    MERGE,
    SMP,
    Route,
    check_fields,
    check_type,
    manager,
    random_suffix,
    read_json,
    read_object,
    require_namespace,
    respond,
    settle_namespace,
)
from .api_subresources import scale_of, scaled
from .authn import CURRENT_USER
from .rbac import CLUSTERROLEBINDINGS, CLUSTERROLES, ROLEBINDINGS, ROLES
from .store import now

PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")  # a real server refuses to delete them

SERVER_SET_ON_CREATE = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "selfLink",
    "managedFields",
)
KEPT_ON_UPDATE = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "resourceVersion",
    "namespace",
    "name",
    "generateName",
    "selfLink",
)


class Writes:
    def __init__(self, cluster) -> None:
        self.cluster = cluster
        self.store = cluster.store

    # ---------------------------------------------------------------- create
    async def create(self, request: web.Request, route: Route, q) -> web.Response:
        res = route.res
        if route.sub:
            raise errors.method_not_allowed()
        body = await read_object(request, res)
        meta = body.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + random_suffix()
        check_type(res, body, meta.get("name") or "")
        warnings = check_fields(res, body, q)
        settle_namespace(route, body)
        if not meta.get("name"):
            objects.validate(res.key, res, body, None)
        require_namespace(self.cluster, route)
        obj = self._create_object(route, body, manager(request, q), q, None)
        return respond(obj, 201, headers=warnings)

    def _create_object(self, route: Route, body: dict, field_manager: str, q, managed: list | None) -> dict:
        res = route.res
        meta = body["metadata"]
        if self.store.get(res.key, route.namespace, meta.get("name", "")) is not None:
            raise errors.already_exists(res.plural, res.group, meta["name"])
        for f in SERVER_SET_ON_CREATE:
            meta.pop(f, None)
        body["apiVersion"], body["kind"] = res.group_version, res.kind
        if managed is None:
            managed = patching.record_update(None, body, field_manager, res.group_version, now())
        if res.status_sub or res.key in ("pods", "persistentvolumeclaims", "namespaces"):
            body.pop("status", None)
            objects.initial_status(res.key, body)
        quantities.check(res.kind, res.version, body)
        objects.apply_defaults(res.key, body)
        objects.validate(res.key, res, body, None)
        self.cluster.admit(res.key, body)
        _no_escalation(self.cluster, res.key, body)
        admission.admit_create(self.cluster, res.key, body)
        if managed:
            meta["managedFields"] = managed
        if q.get("dryRun") == "All":
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=now())
            return body
        return self.store.create(res.key, body)

    # ---------------------------------------------------------------- update and patch
    async def update(self, request: web.Request, route: Route, q) -> web.Response:
        res = route.res
        body = await read_object(request, res)
        old = self.store.get(res.key, route.namespace, route.name)
        if route.sub == "scale":
            if old is None:
                raise route.not_found()
            return respond(self._scale(old, body, request, q))
        name = (body.get("metadata") or {}).get("name")
        if name and name != route.name:
            raise errors.bad_request(
                f"the name of the object ({name}) does not match the name on the URL ({route.name})"
            )
        body.setdefault("metadata", {})["name"] = route.name
        check_type(res, body, route.name)
        warnings = check_fields(res, body, q)
        settle_namespace(route, body)
        if old is None:
            raise route.not_found()
        obj = self.commit(route, old, body, manager(request, q), q)
        return respond(obj, 200, headers=warnings)

    async def patch(self, request: web.Request, route: Route, q) -> web.Response:
        res = route.res
        ctype = request.content_type
        if ctype == APPLY:
            return await self.apply(request, route, q)
        if ctype not in (SMP, MERGE, JSONPATCH):
            raise errors.unsupported_media_type(ctype)
        patch = await read_json(request, "patch")
        old = self.store.get(res.key, route.namespace, route.name)
        if old is None:
            raise route.not_found()
        patched = _patched(scale_of(old) if route.sub == "scale" else old, patch, ctype)
        if route.sub == "scale":
            return respond(self._scale(old, patched, request, q))
        warnings = check_fields(res, patched, q)
        patched.setdefault("metadata", {})["name"] = route.name
        if res.namespaced:
            patched["metadata"]["namespace"] = route.namespace
        check_type(res, patched, route.name)
        obj = self.commit(route, old, patched, manager(request, q), q)
        return respond(obj, 200, headers=warnings)

    def _scale(self, old: dict, scale: dict, request: web.Request, q) -> dict:
        route, new = scaled(old, scale)
        return scale_of(self.commit(route, old, new, manager(request, q), q))

    # ---------------------------------------------------------------- server-side apply
    async def apply(self, request: web.Request, route: Route, q) -> web.Response:
        res = route.res
        field_manager = q.get("fieldManager")
        if not field_manager:
            raise errors.bad_request("PATCH /apply requests require fieldManager")
        applied = _applied_configuration(await request.read(), route)
        check_type(res, applied, route.name, required=True)
        warnings = check_fields(res, applied, q, apply=True)
        applied["metadata"]["name"] = route.name
        settle_namespace(route, applied)
        force = q.get("force") == "true"
        old = self.store.get(res.key, route.namespace, route.name)
        if route.sub == "status":
            if old is None:
                raise route.not_found()
            merged = patching.strategic_merge(old, {"status": applied.get("status") or {}})
            return respond(self.commit(route, old, merged, field_manager, q), 200, headers=warnings)
        if route.sub:
            raise errors.method_not_allowed()
        if old is None:
            require_namespace(self.cluster, route)
        merged, managed = patching.server_side_apply(
            old, applied, field_manager, force, res.group_version, now()
        )
        if old is None:
            return respond(
                self._create_object(route, merged, field_manager, q, managed), 201, headers=warnings
            )
        merged.setdefault("metadata", {})["resourceVersion"] = old["metadata"]["resourceVersion"]
        obj = self.commit(route, old, merged, field_manager, q, managed=managed)
        return respond(obj, 200, headers=warnings)

    # ---------------------------------------------------------------- commit
    def commit(
        self, route: Route, old: dict, new: dict, field_manager: str, q, managed: list | None = None
    ) -> dict:
        """Settle metadata, status and generation of an update, validate it, and write it (unless a no-op)."""
        res = route.res
        new = _settled(route, old, new)
        meta = new["metadata"]
        if route.sub != "status":
            quantities.check(res.kind, res.version, new)
        objects.apply_defaults(res.key, new)
        if route.sub != "status":
            objects.validate(res.key, res, new, old)
            _no_escalation(self.cluster, res.key, new)
            if _spec_part(new) != _spec_part(old) or res.key == "namespaces":
                admission.admit_update(self.cluster, res.key, new, old)
        if res.generation and _spec_part(new) != _spec_part(old):
            meta["generation"] = int(old["metadata"].get("generation") or 1) + 1
        if managed is None:
            managed = patching.record_update(old, new, field_manager, res.group_version, now(), route.sub)
        if managed:
            meta["managedFields"] = managed
        else:
            meta.pop("managedFields", None)
        if _without_managed(new) == _without_managed(old):
            return old
        if q.get("dryRun") == "All":
            return new
        removed = (
            self.cluster.finalize_if_done(res.key, new)
            if meta.get("deletionTimestamp") and not meta.get("finalizers")
            else None
        )
        if removed is not None:
            return removed
        return self.store.update(res.key, new)

    # ---------------------------------------------------------------- delete
    async def delete(self, request: web.Request, route: Route, q) -> web.Response:
        if route.sub:
            raise errors.method_not_allowed()
        opts = await _delete_options(request, q)
        return respond(self._delete_one(route, route.name, opts))

    async def delete_collection(self, request: web.Request, route: Route, q, match) -> web.Response:
        opts = await _delete_options(request, q)
        items = [
            self._delete_one(route, o["metadata"]["name"], opts)
            for o in self.store.list(route.key, route.list_namespace)
            if match(o)
        ]
        return respond(
            {
                "kind": route.res.list_kind,
                "apiVersion": route.res.group_version,
                "metadata": {"resourceVersion": str(self.store.resource_version)},
                "items": items,
            }
        )

    def _delete_one(self, route: Route, name: str, opts: dict) -> dict:
        res = route.res
        obj = self.store.get(res.key, route.namespace, name)
        if obj is None:
            raise errors.not_found(res.plural, res.group, name)
        _check_delete_preconditions(route, obj, opts.get("preconditions") or {})
        if res.key == "namespaces" and name in PROTECTED_NAMESPACES:
            raise errors.forbidden("namespaces", "", name, "this namespace may not be deleted")
        dry = opts.get("dryRun")
        if dry == "All" or dry == ["All"]:
            return obj
        grace = opts.get("gracePeriodSeconds")
        policy = opts.get("propagationPolicy") or ("Orphan" if opts.get("orphanDependents") else "Background")
        if policy not in ("Foreground", "Background", "Orphan"):
            raise errors.invalid(
                "DeleteOptions",
                "",
                "",
                [
                    errors.field_unsupported(
                        "propagationPolicy", policy, ["Foreground", "Background", "Orphan"]
                    )
                ],
            )
        out = self.cluster.delete_object(
            res.key, route.namespace, name, grace if isinstance(grace, int) else None, policy
        )
        return out or obj


# ---------------------------------------------------------------- helpers
def _no_escalation(cluster, key: str, obj: dict) -> None:
    """RBAC objects: a writer cannot grant what it does not hold (unless it may escalate/bind)."""
    if key in (ROLES, CLUSTERROLES):
        cluster.authorizer.check_role_write(CURRENT_USER.get(), key, obj)
    elif key in (ROLEBINDINGS, CLUSTERROLEBINDINGS):
        cluster.authorizer.check_binding_write(CURRENT_USER.get(), key, obj)


def _patched(base: dict, patch, ctype: str) -> dict:
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
    return patched


def _applied_configuration(raw: bytes, route: Route) -> dict:
    """The body of a server-side apply: a YAML (or JSON) object whose name, if any, is the URL's."""
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
        raise errors.bad_request(
            f"the name of the object ({meta['name']}) does not match the name on the URL ({route.name})"
        )
    return applied


def _settled(route: Route, old: dict, new: dict) -> dict:
    """A copy of `new` (checked against the preconditions it carries) with the status and the
    server-set metadata of `old`; for the status subresource, `old` with new's status."""
    res = route.res
    new = copy.deepcopy(new)
    meta, om = new.setdefault("metadata", {}), old["metadata"]
    rv = meta.get("resourceVersion")
    if rv and rv != om["resourceVersion"]:
        raise errors.stale(res.plural, res.group, route.name)
    if meta.get("uid") and meta["uid"] != om["uid"]:
        raise errors.conflict(
            res.plural,
            res.group,
            route.name,
            f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {om['uid']}",
        )
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
    for f in KEPT_ON_UPDATE:
        if f in om:
            meta[f] = om[f]
        else:
            meta.pop(f, None)
    new["apiVersion"], new["kind"] = res.group_version, res.kind
    return new


async def _delete_options(request: web.Request, q) -> dict:
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


def _check_delete_preconditions(route: Route, obj: dict, pre: dict) -> None:
    res, meta = route.res, obj["metadata"]
    if pre.get("uid") and pre["uid"] != meta["uid"]:
        raise errors.conflict(
            res.plural,
            res.group,
            meta["name"],
            f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta['uid']}",
        )
    if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
        raise errors.conflict(
            res.plural,
            res.group,
            meta["name"],
            f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
            f"ResourceVersion in object meta: {meta['resourceVersion']}",
        )


def _spec_part(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _without_managed(obj: dict) -> dict:
    """The object as compared for a no-op write: managedFields without their timestamps, no resourceVersion."""
    o = copy.deepcopy(obj)
    meta = o.get("metadata", {})
    meta.pop("resourceVersion", None)
    meta["managedFields"] = sorted(
        json.dumps({k: v for k, v in e.items() if k != "time"}, sort_keys=True)
        for e in meta.get("managedFields") or []
    )
    return o
