"""`up`'s pure decisions: which environments are live, whether stale routing may exist, whether the URL rows
need writing again."""

import json

from kubectl_preevy.commands import up
from kubectl_preevy.environment import Environment


def statefulset(name: str, *, labels=None, annotations=None, kind: str = "StatefulSet") -> Environment:
    return Environment(
        {
            "kind": kind,
            "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}},
            "spec": {"template": {"spec": {"containers": [{"name": "docker"}]}}},
        }
    )


def types(*declared: tuple[str, str]) -> dict[str, str]:
    return {"preevy.dev/all-types": json.dumps([{"apiVersion": a, "kind": k} for a, k in declared])}


def test_an_environment_being_deleted_is_not_live():
    live, deleting = statefulset("a"), statefulset("b")
    deleting.statefulset["metadata"]["deletionTimestamp"] = "2026-11-29T03:00:00Z"
    marked = statefulset("c", labels={"preevy.dev/deleted": "true"})  # by the `down` of an earlier version
    assert up._live([live, deleting, marked]) == [live]


def test_stale_routing_is_looked_for_only_where_routing_types_were_declared():
    assert not up._may_have_routing(None)  # a new environment holds none
    assert not up._may_have_routing(statefulset("a", annotations=types(("apps/v1", "StatefulSet"))))
    routed = types(("apps/v1", "StatefulSet"), ("gateway.networking.k8s.io/v1", "HTTPRoute"))
    assert up._may_have_routing(statefulset("a", annotations=routed))
    assert up._may_have_routing(statefulset("a", annotations=types(("v1", "Service"))))
    assert up._may_have_routing(statefulset("a", kind="Deployment"))  # legacy: every type, services too


def test_the_url_rows_are_compared_with_those_of_the_same_statefulset_only():
    rows = '[{"service":"web","port":80,"url":"http://localhost:80"}]'
    seen = statefulset("a", annotations={"preevy.dev/urls": rows})
    assert up._recorded_urls(seen, seen) == rows
    assert up._recorded_urls(seen, statefulset("b")) is None  # recreated under another name
    assert up._recorded_urls(None, seen) is None
