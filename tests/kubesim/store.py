"""The object store: one global resourceVersion counter, a bounded event history, synchronous subscribers."""

from __future__ import annotations

import builtins
import collections
import copy
import datetime
import logging
import uuid

from . import errors
from .resources import BY_KEY

log = logging.getLogger("kubesim.store")


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s: str | None) -> datetime.datetime | None:
    if not s:
        return None
    try:
        return datetime.datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None


class Store:
    def __init__(self, history: int = 2000):
        self._objs: dict[str, dict[tuple[str, str], dict]] = collections.defaultdict(dict)
        self._rv = 0
        self._history: collections.deque = collections.deque(maxlen=history)
        self._floor = 0  # every event with rv > floor is still in the history
        self._subs: list = []
        self._uids: dict[str, tuple[str, str, str]] = {}
        self._pending: collections.deque = collections.deque()
        self._delivering = False

    # ------------------------------------------------------------ reads
    @property
    def resource_version(self) -> int:
        return self._rv

    def get(self, key: str, namespace: str | None, name: str) -> dict | None:
        obj = self._objs[key].get((namespace or "", name))
        return copy.deepcopy(obj) if obj is not None else None

    def list(self, key: str, namespace: str | None = None) -> list[dict]:
        items = self._objs[key]
        out = [copy.deepcopy(o) for (ns, _), o in items.items() if namespace is None or ns == namespace]
        out.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return out

    def exists_uid(self, uid: str) -> bool:
        return uid in self._uids

    def keys(self) -> builtins.list[str]:
        return list(self._objs)

    def history_since(self, rv: int) -> builtins.list | None:
        """Events newer than rv, oldest first; None when rv is older than the kept history."""
        if rv < self._floor:
            return None
        return [e for e in self._history if e[0] > rv]

    # ------------------------------------------------------------ writes
    def _bump(self) -> str:
        self._rv += 1
        return str(self._rv)

    def create(self, key: str, obj: dict) -> dict:
        res = BY_KEY[key]
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        ns = meta.get("namespace", "") if res.namespaced else ""
        if not res.namespaced:
            meta.pop("namespace", None)
        if (ns, meta["name"]) in self._objs[key]:
            raise errors.already_exists(res.plural, res.group, meta["name"])
        obj["apiVersion"] = res.group_version
        obj["kind"] = res.kind
        meta["uid"] = meta.get("uid") or str(
            uuid.uuid4()
        )  # clients' uids are dropped before; admission may set one
        meta["creationTimestamp"] = meta.get("creationTimestamp") or now()
        if res.generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        meta["resourceVersion"] = self._bump()
        self._objs[key][(ns, meta["name"])] = obj
        self._uids[meta["uid"]] = (key, ns, meta["name"])
        self._emit("ADDED", key, obj)
        return copy.deepcopy(obj)

    def update(self, key: str, obj: dict) -> dict:
        """Replace an existing object (the caller has settled metadata); bumps rv, MODIFIED."""
        res = BY_KEY[key]
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        ns = meta.get("namespace", "") if res.namespaced else ""
        old = self._objs[key].get((ns, meta["name"]))
        if old is None:
            raise errors.not_found(res.plural, res.group, meta["name"])
        meta["uid"] = old["metadata"]["uid"]
        meta["resourceVersion"] = self._bump()
        self._objs[key][(ns, meta["name"])] = obj
        self._emit("MODIFIED", key, obj)
        return copy.deepcopy(obj)

    def patch_status(self, key: str, namespace: str | None, name: str, status: dict) -> dict | None:
        obj = self._objs[key].get((namespace or "", name))
        if obj is None:
            return None
        new = copy.deepcopy(obj)
        new["status"] = copy.deepcopy(status)
        if new == obj:
            return copy.deepcopy(obj)
        return self.update(key, new)

    def remove(self, key: str, namespace: str | None, name: str) -> dict | None:
        obj = self._objs[key].pop((namespace or "", name), None)
        if obj is None:
            return None
        self._uids.pop(obj["metadata"].get("uid"), None)
        obj["metadata"]["resourceVersion"] = self._bump()
        self._emit("DELETED", key, obj)
        return copy.deepcopy(obj)

    # ------------------------------------------------------------ events
    def subscribe(self, callback) -> None:
        self._subs.append(callback)

    def unsubscribe(self, callback) -> None:
        if callback in self._subs:
            self._subs.remove(callback)

    def _emit(self, event_type: str, key: str, obj: dict) -> None:
        frozen = copy.deepcopy(obj)
        if len(self._history) == self._history.maxlen:
            self._floor = self._history[0][0]
        self._history.append((int(frozen["metadata"]["resourceVersion"]), event_type, key, frozen))
        # a subscriber that writes while being told of an event must not make later subscribers
        # see the newer event first: deliveries are queued and drained in resourceVersion order
        self._pending.append((event_type, key, frozen))
        if self._delivering:
            return
        self._delivering = True
        try:
            while self._pending:
                ev = self._pending.popleft()
                for cb in list(self._subs):
                    try:
                        cb(*ev)
                    except Exception:  # a subscriber must never break a write
                        log.exception("store subscriber %r failed", cb)
        finally:
            self._delivering = False
