"""Subresources that are not the object itself (API half): `scale` of StatefulSets and
Deployments (an autoscaling/v1 Scale view of spec.replicas) and the authorization reviews
(`kubectl auth can-i`, answered by the RBAC authorizer) and ServiceAccount TokenRequests."""

from __future__ import annotations

import copy

from aiohttp import web

from . import errors, selectors
from .api_request import Route, respond
from .resources import BY_KEY


def scale_of(obj: dict) -> dict:
    m = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"],
            "namespace": m.get("namespace"),
            "uid": m["uid"],
            "resourceVersion": m["resourceVersion"],
            "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": selectors.label_selector_string((obj.get("spec") or {}).get("selector")),
        },
    }


def scaled(old: dict, scale: dict) -> tuple[Route, dict]:
    """The object's route and the object with the Scale's replicas (and resourceVersion
    precondition) applied, to commit as an update of the object."""
    rv = (scale.get("metadata") or {}).get("resourceVersion")
    replicas = (scale.get("spec") or {}).get("replicas")
    key = "statefulsets.apps" if old["kind"] == "StatefulSet" else "deployments.apps"
    route = Route(BY_KEY[key], old["metadata"]["namespace"], old["metadata"]["name"], None, False)
    if not isinstance(replicas, int) or replicas < 0:
        raise errors.invalid(
            "Scale",
            "autoscaling",
            old["metadata"]["name"],
            [errors.field_invalid("spec.replicas", replicas, "must be greater than or equal to 0")],
        )
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = replicas
    if rv:
        new["metadata"]["resourceVersion"] = rv
    return route, new


async def _body(request: web.Request, route: Route) -> dict:
    from .api_request import read_object

    return await read_object(request, route.res)


async def review(request: web.Request, route: Route, cluster) -> web.Response:
    """SelfSubjectAccessReview, SelfSubjectRulesReview and SelfSubjectReview, answered for the
    request's user by the RBAC authorizer."""
    from .authn import ADMIN, MASTERS
    from .rbac import Attributes

    body = await _body(request, route)
    spec = body.get("spec") or {}
    user = request.get("user", ADMIN)
    kind = route.res.kind
    if kind == "SelfSubjectReview":
        status: dict = {"userInfo": user.user_info()}
        spec = None
    elif kind == "SelfSubjectAccessReview":
        ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if bool(ra) == bool(nra):
            raise errors.invalid(
                kind,
                "authorization.k8s.io",
                "",
                [
                    errors.field_invalid(
                        "spec.resourceAttributes",
                        str(ra),
                        "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                    )
                ],
            )
        if ra:
            a = Attributes(
                user,
                ra.get("verb", ""),
                True,
                "",
                ra.get("namespace", ""),
                ra.get("group", ""),
                ra.get("version", ""),
                ra.get("resource", ""),
                ra.get("subresource", ""),
                ra.get("name", ""),
            )
        else:
            a = Attributes(user, nra.get("verb", ""), False, nra.get("path", ""))
        allowed, reason = cluster.authorizer.authorize(a)
        status = {"allowed": allowed}
        if reason:
            status["reason"] = reason
    else:
        rules, problems = cluster.authorizer.rules_for(user, spec.get("namespace", ""))
        if MASTERS in user.groups:
            rules = [
                {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                {"verbs": ["*"], "nonResourceURLs": ["*"]},
                *rules,
            ]
        status = {
            "resourceRules": [
                {k: r[k] for k in ("verbs", "apiGroups", "resources", "resourceNames") if r.get(k)}
                for r in rules
                if r.get("resources")
            ],
            "nonResourceRules": [
                {"verbs": r.get("verbs") or [], "nonResourceURLs": r["nonResourceURLs"]}
                for r in rules
                if r.get("nonResourceURLs")
            ],
            "incomplete": False,
        }
        if problems:
            status["evaluationError"] = "[" + ", ".join(problems) + "]" if len(problems) > 1 else problems[0]
    out = {
        "kind": kind,
        "apiVersion": route.res.group_version,
        "metadata": {"creationTimestamp": None},
        "status": status,
    }
    if spec is not None:
        out["spec"] = spec
    return respond(out, 201)


async def token_request(request: web.Request, route: Route, cluster) -> web.Response:
    """POST serviceaccounts/NAME/token (`kubectl create token`): a bound, expiring token."""
    from .authn import DEFAULT_TOKEN_SECONDS, MIN_TOKEN_SECONDS

    body = await _body(request, route)
    sa = cluster.store.get("serviceaccounts", route.namespace, route.name)
    if sa is None:
        raise route.not_found()
    spec = dict(body.get("spec") or {})
    seconds = spec.get("expirationSeconds")
    if seconds is None:
        seconds = DEFAULT_TOKEN_SECONDS
    spec["expirationSeconds"] = seconds
    if not isinstance(seconds, int) or seconds < MIN_TOKEN_SECONDS:
        raise errors.invalid(
            "TokenRequest",
            "authentication.k8s.io",
            route.name,
            [
                errors.field_invalid(
                    "spec.expirationSeconds", seconds, "may not specify a duration less than 10 minutes"
                )
            ],
        )
    if seconds > 1 << 32:
        raise errors.invalid(
            "TokenRequest",
            "authentication.k8s.io",
            route.name,
            [
                errors.field_invalid(
                    "spec.expirationSeconds", seconds, "may not specify a duration larger than 2^32 seconds"
                )
            ],
        )
    bound = None
    ref = spec.get("boundObjectRef")
    if ref:
        kind = ref.get("kind")
        if kind not in ("Pod", "Secret"):
            raise errors.bad_request(f"cannot bind token to object of type {kind}")
        key = "pods" if kind == "Pod" else "secrets"
        bound = cluster.store.get(key, route.namespace, ref.get("name", ""))
        if bound is None:
            raise errors.not_found(key, "", ref.get("name", ""))
        if ref.get("uid") and ref["uid"] != bound["metadata"]["uid"]:
            raise errors.conflict(
                key,
                "",
                ref.get("name", ""),
                f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record. "
                "The object might have been deleted and then recreated",
            )
        spec["boundObjectRef"] = {**ref, "uid": bound["metadata"]["uid"]}
    token, expiry = cluster.tokens.issue(sa, seconds, spec.get("audiences") or None, bound)
    if not spec.get("audiences"):
        from .authn import API_AUDIENCES

        spec["audiences"] = list(API_AUDIENCES)
    return respond(
        {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": route.name, "namespace": route.namespace, "creationTimestamp": None},
            "spec": spec,
            "status": {"token": token, "expirationTimestamp": expiry},
        },
        201,
    )
