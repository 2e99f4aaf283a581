"""In-process checks of the API half's building blocks (no kubectl)."""

from __future__ import annotations

import asyncio

import pytest

from tests.kubesim import errors, events, patching, selectors
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
    orig = {
        "spec": {
            "containers": [
                {"name": "a", "image": "1", "ports": [{"containerPort": 80, "name": "http"}]},
                {"name": "b", "image": "2"},
            ],
            "volumes": [{"name": "v", "emptyDir": {}}],
        }
    }
    patch = {
        "spec": {
            "containers": [
                {"name": "a", "image": "9", "ports": [{"containerPort": 81}]},
                {"name": "b", "$patch": "delete"},
            ],
            "$setElementOrder/containers": [{"name": "a"}],
            "volumes": [{"name": "w", "configMap": {"name": "c"}}],
        }
    }
    out = patching.strategic_merge(orig, patch)
    assert out["spec"]["containers"] == [
        {"name": "a", "image": "9", "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 81}]}
    ]
    assert [v["name"] for v in out["spec"]["volumes"]] == ["v", "w"]
    assert patching.strategic_merge({"a": {"b": 1, "c": 2}}, {"a": {"$retainKeys": ["b"], "b": 3}}) == {
        "a": {"b": 3}
    }


def test_merge_and_json_patch():
    assert patching.merge_patch({"a": 1, "b": {"c": 2}}, {"a": None, "b": {"d": 3}}) == {
        "b": {"c": 2, "d": 3}
    }
    doc = patching.json_patch(
        {"a": [1, 2]},
        [
            {"op": "add", "path": "/a/-", "value": 3},
            {"op": "replace", "path": "/a/0", "value": 0},
            {"op": "remove", "path": "/a/1"},
        ],
    )
    assert doc == {"a": [0, 3]}


def test_managed_fields_round_trip():
    obj = {
        "metadata": {"labels": {"x": "1"}},
        "spec": {"containers": [{"name": "a", "image": "i"}], "replicas": 1},
    }
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


def test_event_recorder_aggregates_repeats_and_writes_them_sparingly(monkeypatch):
    monkeypatch.setattr(events, "WRITE_INTERVAL", 0.2)
    store = Store()
    writes = []
    store.subscribe(
        lambda kind, key, obj: writes.append((kind, obj.get("count"))) if key == "events" else None
    )
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x-0", "namespace": "n", "uid": "u"}}
    recorder = events.EventRecorder(store, "node", lambda ns: True)

    async def probe_failing(times: int) -> None:
        for _ in range(times):
            recorder.record(
                pod, "Unhealthy", "Readiness probe failed: no", "Warning", "kubelet", "spec.containers{c}"
            )
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # the last repeats are written within WRITE_INTERVAL

    asyncio.run(probe_failing(60))
    [event] = store.list("events")
    assert event["count"] == 60 and event["involvedObject"]["fieldPath"] == "spec.containers{c}"
    assert writes[0] == ("ADDED", 1) and writes[-1] == ("MODIFIED", 60)
    assert len(writes) <= 6  # about 0.6 s of repeats, written every 0.2 s


def test_event_recorder_combines_similar_events():
    store = Store()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x-0", "namespace": "n", "uid": "u"}}
    recorder = events.EventRecorder(store, "node", lambda ns: True)

    async def varying(times: int) -> None:
        for i in range(times):
            recorder.record(pod, "Unhealthy", f"Readiness probe failed: {i}", "Warning", "kubelet")
        recorder.flush()

    asyncio.run(varying(12))
    found = {e["message"]: e["count"] for e in store.list("events")}
    assert len(found) == 10  # 9 distinct ones, then one combined series with the latest message
    assert found["(combined from similar events): Readiness probe failed: 11"] == 3
