"""/version, aggregated and legacy discovery, and a minimal OpenAPI v3, all driven by resources.RESOURCES."""

from __future__ import annotations

import hashlib
import json

from .resources import Resource, groups, in_group

AGGREGATED_CT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4",
    "gitCommit": "59526cd4867447956156ae3a602fcbac10a2c335",
    "gitTreeState": "clean",
    "buildDate": "2025-04-22T16:02:27Z",
    "goVersion": "go1.23.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def wants_aggregated(accept: str) -> bool:
    return "as=APIGroupDiscoveryList" in (accept or "")


def _with_names(r: Resource, d: dict) -> dict:
    """d with the resource's shortNames and categories, where it has some."""
    if r.short_names:
        d["shortNames"] = list(r.short_names)
    if r.categories:
        d["categories"] = list(r.categories)
    return d


def _agg_resource(r: Resource) -> dict:
    d = _with_names(
        r,
        {
            "resource": r.plural,
            "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
            "scope": "Namespaced" if r.namespaced else "Cluster",
            "singularResource": r.singular,
            "verbs": list(r.verbs),
        },
    )
    subs = []
    for s in r.subresources:
        g, v, k = s.kind or (r.group, r.version, r.kind)
        subs.append(
            {
                "subresource": s.name,
                "responseKind": {"group": g, "version": v, "kind": k},
                "verbs": list(s.verbs),
            }
        )
    if subs:
        d["subresources"] = subs
    return d


def aggregated(core: bool) -> dict:
    items = []
    for group, version in groups():
        if (group == "") != core:
            continue
        meta = {} if core else {"name": group}
        items.append(
            {
                "metadata": meta,
                "versions": [
                    {
                        "version": version,
                        "freshness": "Current",
                        "resources": [_agg_resource(r) for r in in_group(group, version)],
                    }
                ],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }


def api_versions(host: str) -> dict:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
    }


def api_group_list() -> dict:
    gs = []
    for group, version in groups():
        if group:
            gv = {"groupVersion": f"{group}/{version}", "version": version}
            gs.append({"name": group, "versions": [gv], "preferredVersion": gv})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": gs}


def api_group(group: str) -> dict | None:
    for g in api_group_list()["groups"]:
        if g["name"] == group:
            return dict(g, kind="APIGroup", apiVersion="v1")
    return None


def resource_list(group: str, version: str) -> dict | None:
    rs = in_group(group, version)
    if not rs:
        return None
    out = []
    for r in rs:
        out.append(
            _with_names(
                r,
                {
                    "name": r.plural,
                    "singularName": r.singular,
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": list(r.verbs),
                },
            )
        )
        for s in r.subresources:
            sd = {
                "name": f"{r.plural}/{s.name}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": (s.kind or (None, None, r.kind))[2],
                "verbs": list(s.verbs),
            }
            if s.kind and s.kind[0] != r.group:
                sd["group"], sd["version"] = s.kind[0], s.kind[1]
            out.append(sd)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": out,
    }


# ------------------------------------------------------------------ OpenAPI v3


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_doc(group: str, version: str) -> dict | None:
    rs = in_group(group, version)
    if not rs:
        return None
    params = [
        {
            "name": "fieldValidation",
            "in": "query",
            "schema": {"type": "string", "uniqueItems": True},
            "description": "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields.",
        },
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
    ]
    paths = {}
    for r in rs:
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        base = (
            "/"
            + _gv_path(group, version)
            + ("/namespaces/{namespace}" if r.namespaced else "")
            + f"/{r.plural}"
        )
        if r.store:
            ok = {"200": {"description": "OK"}, "201": {"description": "Created"}}
            paths[base + "/{name}"] = {
                "get": {
                    "x-kubernetes-action": "get",
                    "x-kubernetes-group-version-kind": gvk,
                    "responses": ok,
                },
                "put": {
                    "x-kubernetes-action": "put",
                    "x-kubernetes-group-version-kind": gvk,
                    "parameters": params,
                    "responses": ok,
                },
                "patch": {
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": gvk,
                    "parameters": params,
                    "responses": ok,
                },
                "delete": {
                    "x-kubernetes-action": "delete",
                    "x-kubernetes-group-version-kind": gvk,
                    "responses": ok,
                },
            }
            for s in r.subresources:
                if "patch" in s.verbs:
                    paths[base + "/{name}/" + s.name] = {
                        "patch": {
                            "x-kubernetes-action": "patch",
                            "x-kubernetes-group-version-kind": gvk,
                            "parameters": params,
                            "responses": ok,
                        }
                    }
        paths[base] = {
            "post": {
                "x-kubernetes-action": "post",
                "x-kubernetes-group-version-kind": gvk,
                "parameters": params,
                "responses": {"201": {"description": "Created"}},
            }
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]},
        "components": {"schemas": {}},
        "paths": paths,
    }


def _hash(doc) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:128].upper()


def openapi_index() -> dict:
    paths = {}
    for group, version in groups():
        doc = openapi_doc(group, version)
        p = _gv_path(group, version)
        paths[p] = {"serverRelativeURL": f"/openapi/v3/{p}?hash={_hash(doc)}"}
    return {"paths": paths}
