"""Every API request is authenticated (`authn`), impersonation applied, and authorized (`rbac`)
before any handler runs (API half). The request's user is `request["user"]` for handlers that
need it (reviews, token requests, escalation checks)."""

from __future__ import annotations

import dataclasses
import urllib.parse

from aiohttp import web

from . import errors
from .admission import WARNINGS
from .authn import (
    ANONYMOUS,
    AUTHENTICATED,
    CURRENT_USER,
    UNAUTHENTICATED,
    User,
    authenticate,
    split_service_account,
)
from .rbac import Attributes, forbidden

NAMESPACE_SUBRESOURCES = ("status", "finalize")
METHOD_VERBS = {
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "GET": "get",
    "HEAD": "get",
    "DELETE": "delete",
}


def attributes(request: web.Request, user: User) -> Attributes:
    """The apiserver's RequestInfo of a request, as authorizer attributes."""
    path = request.path
    parts = [p for p in path.split("/") if p]
    method = request.method
    if not parts or parts[0] not in ("api", "apis"):
        return Attributes(user, method.lower(), False, path)
    if parts[0] == "api":
        group, rest = "", parts[1:]
    else:
        group, rest = (parts[1] if len(parts) > 1 else ""), parts[2:]
    if len(rest) < 2:  # /api, /api/v1, /apis/g, /apis/g/v: discovery
        return Attributes(user, method.lower(), False, path)
    version, rest = rest[0], rest[1:]
    verb = METHOD_VERBS.get(method, method.lower())
    watch = False
    if rest[0] == "watch":
        watch, rest = True, rest[1:]
    namespace = ""
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    q = request.query
    if watch or (verb == "get" and not name and q.get("watch") in ("true", "1")):
        verb = "watch"
    elif verb == "get" and not name:
        verb = "list"
    elif verb == "delete" and not name:
        verb = "deletecollection"
    if verb in ("list", "watch") and not name:
        for term in (q.get("fieldSelector") or "").split(","):  # an exact metadata.name names the object
            k, _, v = term.partition("=")
            if k.strip() == "metadata.name" and v.lstrip("="):
                name = v.lstrip("=")
    return Attributes(user, verb, True, path, namespace, group, version, resource, sub, name)


def _websocket_stream(request: web.Request, a: Attributes) -> bool:
    return (
        a.resource == "pods"
        and a.subresource in ("exec", "portforward", "attach")
        and a.verb == "get"
        and request.headers.get("Upgrade", "").lower() == "websocket"
    )


def _impersonated(request: web.Request, user: User, authorizer) -> User:
    """Applies Impersonate-* headers (kubectl --as/--as-group/--as-uid) after checking `impersonate`."""
    h = request.headers
    name = h.get("Impersonate-User")
    groups = h.getall("Impersonate-Group", [])
    uid = h.get("Impersonate-Uid", "")
    extras = [(k, v) for k, v in h.items() if k.lower().startswith("impersonate-extra-")]
    if not name:
        if groups or uid or extras:
            raise errors.ApiError(
                errors.status(
                    500,
                    "InternalError",
                    "Internal error occurred: requested [{Kind: Group}] without impersonating a user",
                )
            )
        return user

    def check(group: str, resource: str, obj_name: str, namespace: str = "", sub: str = "") -> None:
        a = Attributes(user, "impersonate", True, request.path, namespace, group, "", resource, sub, obj_name)
        ok, reason = authorizer.authorize(a)
        if not ok:
            raise forbidden(a, reason)

    sa = split_service_account(name)
    if sa:
        check("", "serviceaccounts", sa[1], sa[0])
    else:
        check("", "users", name)
    for g in groups:
        check("", "groups", g)
    if uid:
        check("authentication.k8s.io", "uids", uid)
    extra: dict[str, list[str]] = {}
    for k, v in extras:
        key = urllib.parse.unquote(k[len("impersonate-extra-") :]).lower()
        check("authentication.k8s.io", "userextras", v, sub=key)
        extra.setdefault(key, []).append(v)
    if sa and not groups:
        groups = ["system:serviceaccounts", f"system:serviceaccounts:{sa[0]}"]
    groups = list(groups)
    if name == ANONYMOUS.name:
        if UNAUTHENTICATED not in groups:
            groups.append(UNAUTHENTICATED)
    elif AUTHENTICATED not in groups:
        groups.append(AUTHENTICATED)
    return User(name, tuple(groups), uid, tuple((k, tuple(v)) for k, v in sorted(extra.items())))


def middleware(cluster):
    @web.middleware
    async def _authorize(request: web.Request, handler):
        if request.path.startswith("/kubesim/"):
            if request.secure:
                raise errors.no_such_route()  # the control endpoint lives on the plain-http port only
            return await handler(request)
        user = authenticate(request, cluster.tokens)
        user = _impersonated(request, user, cluster.authorizer)
        a = attributes(request, user)
        ok, reason = cluster.authorizer.authorize(a)
        if not ok and _websocket_stream(request, a):
            # kubectl 1.32 falls back to SPDY (a POST: `create`) when its websocket GET is refused;
            # kubesim serves no SPDY, so it lets the GET through when that POST would be allowed
            ok = cluster.authorizer.authorize(dataclasses.replace(a, verb="create"))[0]
        if not ok:
            raise forbidden(a, reason)
        request["user"] = user
        token = CURRENT_USER.set(user)
        warnings: list[str] = []
        warnings_token = WARNINGS.set(warnings)
        try:
            response = await handler(request)
        finally:
            CURRENT_USER.reset(token)
            WARNINGS.reset(warnings_token)
        if warnings and isinstance(response, web.Response) and not response.prepared:
            ours = ", ".join('299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in warnings)
            prior = response.headers.get("Warning")
            response.headers["Warning"] = f"{prior}, {ours}" if prior else ours
        return response

    return _authorize
