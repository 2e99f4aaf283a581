"""What an API request names and carries (API half): the Route of a resource URL, body decoding,
the checks every write makes (apiVersion/kind, fieldValidation, namespace), and JSON answers."""

from __future__ import annotations

import json
import random

import yaml
from aiohttp import web

from . import errors, objects, protobuf
from .resources import BY_PATH, Resource

JSON = "application/json"
APPLY = "application/apply-patch+yaml"
SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSONPATCH = "application/json-patch+json"


def respond(obj, code: int = 200, content_type: str = JSON, headers: dict | None = None) -> web.Response:
    h = {"Content-Type": content_type, "Cache-Control": "no-cache, private"}
    if headers:
        h.update(headers)
    return web.Response(body=json.dumps(obj, separators=(",", ":")).encode(), status=code, headers=h)


def status_response(e: errors.ApiError) -> web.Response:
    return respond(e.status, e.code, headers=e.headers)


class Route:
    """What a resource URL names."""

    def __init__(
        self, res: Resource, namespace: str | None, name: str | None, sub: str | None, watch_prefix: bool
    ):
        self.res, self.namespace, self.name, self.sub, self.watch_prefix = (
            res,
            namespace,
            name,
            sub,
            watch_prefix,
        )

    @property
    def key(self) -> str:
        return self.res.key

    @property
    def list_namespace(self) -> str | None:
        """The namespace to list in (None: every namespace, or a cluster-scoped resource)."""
        return self.namespace if self.res.namespaced else None

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


def random_suffix(n: int = 5) -> str:
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


# ---------------------------------------------------------------- bodies
async def read_object(request: web.Request, res: Resource) -> dict:
    raw = await request.read()
    if "protobuf" in request.content_type:
        try:
            return protobuf.decode(raw)
        except (protobuf.DecodeError, ValueError, IndexError, KeyError) as e:
            raise errors.bad_request(f"the object provided is unrecognized (must be of type {res.kind}): {e}")
    body = _decode_text(raw, request.content_type, res)
    if not isinstance(body, dict):
        raise errors.bad_request(
            f"the object provided is unrecognized (must be of type {res.kind}): "
            f"couldn't get version/kind; json parse error: json: cannot unmarshal "
            f'{type(body).__name__} into Go value of type struct {{ APIVersion string "json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }}'
        )
    if not isinstance(body.get("metadata", {}), dict):
        raise errors.bad_request(
            f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: '
            f"json: cannot unmarshal into Go struct field {res.kind}.metadata of type v1.ObjectMeta"
        )
    return body


def _decode_text(raw: bytes, content_type: str, res: Resource):
    try:
        if "yaml" in content_type:
            return yaml.safe_load(raw.decode())
        return json.loads(raw.decode() or "null")
    except (ValueError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise errors.bad_request(
            f"the object provided is unrecognized (must be of type {res.kind}): "
            f"couldn't get version/kind; json parse error: {str(e).splitlines()[0]}"
        )


async def read_json(request: web.Request, what: str):
    """A JSON body (a patch, DeleteOptions); raises 400 `error decoding <what>: ...`."""
    raw = await request.read()
    try:
        return json.loads(raw.decode() or "null")
    except (ValueError, UnicodeDecodeError) as e:
        raise errors.bad_request(f"error decoding {what}: {e}")


# ---------------------------------------------------------------- checks
def check_type(res: Resource, body: dict, name: str, required: bool = False) -> None:
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


def check_fields(res: Resource, body: dict, q, apply: bool = False) -> dict:
    """fieldValidation: Strict rejects unknown fields, Warn (the default) warns, Ignore ignores.
    Returns the Warning headers to answer with."""
    mode = (q.get("fieldValidation") or "Warn").lower()
    unknown = objects.unknown_fields(res, body) if mode in ("strict", "warn") else []
    if not unknown:
        return {}
    if mode == "strict":
        if apply:
            raise errors.bad_request(
                f"failed to create typed patch object ({body.get('metadata', {}).get('namespace', '')}/"
                f"{body.get('metadata', {}).get('name', '')}; {res.group_version}, Kind={res.kind}): "
                + ", ".join(f".{u}: field not declared in schema" for u in unknown)
            )
        raise errors.bad_request(
            f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: '
            f"strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown)
        )
    return {"Warning": ", ".join(f'299 - "unknown field \\"{u}\\""' for u in unknown)}


def manager(request: web.Request, q) -> str:
    """The field manager of a write: fieldManager, else the client's name from its User-Agent."""
    m = q.get("fieldManager")
    if m:
        return m
    ua = request.headers.get("User-Agent", "unknown")
    return ua.split("/", 1)[0] or "unknown"


def require_namespace(cluster, route: Route) -> None:
    """Creating in a namespace needs it to exist and not be terminating."""
    if not route.res.namespaced:
        return
    phase = cluster.namespace_phase(route.namespace)
    if phase is None:
        raise errors.namespace_not_found(route.namespace)
    if phase == "Terminating":
        raise errors.forbidden(
            route.res.plural,
            route.res.group,
            "",
            f"unable to create new content in namespace {route.namespace} because it is being terminated",
        )


def settle_namespace(route: Route, body: dict) -> None:
    meta = body.setdefault("metadata", {})
    if route.res.namespaced:
        if meta.get("namespace") and meta["namespace"] != route.namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = route.namespace
    else:
        meta.pop("namespace", None)
