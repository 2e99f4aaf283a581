"""In-process checks of the API half's building blocks (no kubectl)."""
from __future__ import annotations

import pytest

from tests.kubesim import errors, patching, selectors
from tests.kubesim.store import Store


def test_label_selector_parsing():
    reqs = selectors.parse_labels("a=1,b!=2,c in (x, y),d notin (z),e,!f")
    assert selectors.match_labels(reqs, {"a": "1", "c": "x", "e": ""})
    assert not selectors.match_labels(reqs, {"a": "1", "c": "x", "e": "", "f": "1"})
    assert not selectors.match_labels(reqs, {"a": "1", "b": "2", "c": "x", "e": ""})
    with pytest.raises(errors.ApiError) as e:
        selectors.parse_labels("a=(")
    assert e.value.code == 400


def test_strategic_merge_by_keys():
    orig = {"spec": {"containers": [{"name": "a", "image": "1", "ports": [{"containerPort": 80, "name": "http"}]},
                                    {"name": "b", "image": "2"}],
                     "volumes": [{"name": "v", "emptyDir": {}}]}}
    patch = {"spec": {"containers": [{"name": "a", "image": "9", "ports": [{"containerPort": 81}]},
                                     {"name": "b", "$patch": "delete"}],
                      "$setElementOrder/containers": [{"name": "a"}],
                      "volumes": [{"name": "w", "configMap": {"name": "c"}}]}}
    out = patching.strategic_merge(orig, patch)
    assert out["spec"]["containers"] == [{"name": "a", "image": "9",
                                          "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 81}]}]
    assert [v["name"] for v in out["spec"]["volumes"]] == ["v", "w"]
    assert patching.strategic_merge({"a": {"b": 1, "c": 2}}, {"a": {"$retainKeys": ["b"], "b": 3}}) == {"a": {"b": 3}}


def test_merge_and_json_patch():
    assert patching.merge_patch({"a": 1, "b": {"c": 2}}, {"a": None, "b": {"d": 3}}) == {"b": {"c": 2, "d": 3}}
    doc = patching.json_patch({"a": [1, 2]}, [{"op": "add", "path": "/a/-", "value": 3},
                                              {"op": "replace", "path": "/a/0", "value": 0},
                                              {"op": "remove", "path": "/a/1"}])
    assert doc == {"a": [0, 3]}


def test_managed_fields_round_trip():
    obj = {"metadata": {"labels": {"x": "1"}}, "spec": {"containers": [{"name": "a", "image": "i"}], "replicas": 1}}
    paths = patching.field_set(obj)
    assert patching.from_fields_v1(patching.to_fields_v1(paths)) == paths


def test_store_history_and_gone():
    s = Store(history=3)
    s.create("namespaces", {"metadata": {"name": "n"}})
    for i in range(5):
        s.create("configmaps", {"metadata": {"name": f"c{i}", "namespace": "n"}})
    assert s.history_since(1) is None
    events = s.history_since(s.resource_version - 2)
    assert [e[1] for e in events] == ["ADDED", "ADDED"]
    gone = s.remove("configmaps", "n", "c0")
    assert int(gone["metadata"]["resourceVersion"]) == s.resource_version
