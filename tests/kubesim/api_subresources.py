"""Subresources that are not the object itself (API half): `scale` of StatefulSets and
Deployments (an autoscaling/v1 Scale view of spec.replicas) and the authorization reviews
(`kubectl auth can-i`: everything is allowed)."""

from __future__ import annotations

import copy
import json

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


async def review(request: web.Request, route: Route) -> web.Response:
    """SelfSubjectAccessReview / SelfSubjectRulesReview: allowed, whatever was asked."""
    raw = await request.read()
    spec: dict = {}
    try:
        body = json.loads(raw.decode())
        if isinstance(body, dict):
            spec = body.get("spec") or {}
    except (ValueError, UnicodeDecodeError):
        pass  # kubectl sends protobuf here; the answer does not depend on it
    if route.res.kind == "SelfSubjectAccessReview":
        status = {"allowed": True, "reason": "kubesim allows everything"}
    else:
        status = {
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": False,
        }
    return respond(
        {
            "kind": route.res.kind,
            "apiVersion": route.res.group_version,
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        },
        201,
    )
