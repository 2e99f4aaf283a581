"""core/v1 Events written as client-go's EventRecorder writes them (API half; `cluster.record_event`).

* One Event object per series: a repeat of an event (same source, involved object and
  fieldPath, type, reason and message) increments `count` and moves `lastTimestamp` on the
  object it already wrote instead of creating a new one (client-go's EventLogger).
* Similar events (same source, object, type and reason) with 10 or more distinct messages
  within 10 minutes fold into one series whose message reads
  `(combined from similar events): <latest message>` (client-go's EventAggregator).
* Cheap: the first occurrence is written at once, repeats at most every WRITE_INTERVAL seconds
  per series (the count covers every occurrence): a probe failing every second for a minute is
  one Event with count 60, written about 30 times. Series are remembered in an LRU of
  CACHE_SIZE entries, as client-go does.
* Unlike client-go there is no spam filter (burst 25, then one every 5 minutes per object):
  counts keep growing so tests and users see them move.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time

from . import errors
from .store import now

log = logging.getLogger("kubesim.events")

WRITE_INTERVAL = 2.0  # seconds: a repeating event is written at most this often
SIMILAR_LIMIT = 10  # distinct messages of one (object, reason) before they are combined
SIMILAR_WINDOW = 600.0  # seconds
CACHE_SIZE = 4096
COMBINED = "(combined from similar events): "


@dataclasses.dataclass
class _Series:
    obj: dict  # the Event as last written
    count: int
    last: str  # lastTimestamp of the latest occurrence
    message: str
    written_at: float  # monotonic time of the last write
    timer: asyncio.TimerHandle | None = None


@dataclasses.dataclass
class _Similar:
    messages: set
    last: float


class EventRecorder:
    def __init__(self, store, node_name: str, active_namespace) -> None:
        self._store = store
        self._node = node_name
        self._active = active_namespace  # callable(namespace) -> bool
        self._series: collections.OrderedDict[tuple, _Series] = collections.OrderedDict()
        self._similar: collections.OrderedDict[tuple, _Similar] = collections.OrderedDict()
        self._last_ns = 0

    def record(
        self,
        involved: dict,
        reason: str,
        message: str,
        type_: str,
        component: str,
        field_path: str | None = None,
    ) -> None:
        event = self._event(involved, reason, message, type_, component, field_path)
        if not self._active(event["metadata"]["namespace"]):
            return
        key = self._aggregate(event)
        series = self._series.get(key)
        if series is None:
            self._create(key, event)
            return
        self._series.move_to_end(key)
        series.count += 1
        series.last = event["lastTimestamp"]
        series.message = event["message"]
        if series.timer is None:
            wait = WRITE_INTERVAL - (time.monotonic() - series.written_at)
            if wait <= 0:
                self._update(key, series)
            else:
                series.timer = asyncio.get_running_loop().call_later(wait, self._write, key)

    def flush(self) -> None:
        """Write every pending repeat now (the emulator is stopping)."""
        for key, series in list(self._series.items()):
            if series.timer is not None:
                series.timer.cancel()
                self._update(key, series)

    # ------------------------------------------------------------ internals
    def _event(
        self, involved: dict, reason: str, message: str, type_: str, component: str, field_path: str | None
    ) -> dict:
        meta = involved["metadata"]
        ref = {
            "kind": involved.get("kind"),
            "namespace": meta.get("namespace"),
            "name": meta["name"],
            "uid": meta.get("uid"),
            "apiVersion": involved.get("apiVersion"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        if not meta.get("namespace"):
            ref.pop("namespace")
        if field_path:
            ref["fieldPath"] = field_path
        host = self._node if component == "kubelet" else None
        source = {"component": component, "host": host} if host else {"component": component}
        ts = now()
        return {
            "metadata": {"name": self._name(meta["name"]), "namespace": meta.get("namespace") or "default"},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
            "type": type_,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": host or "",
        }

    def _name(self, base: str) -> str:
        """As client-go names them: <object>.<unix nanoseconds in hex> (never twice the same)."""
        self._last_ns = max(time.time_ns(), self._last_ns + 1)
        return f"{base}.{self._last_ns:x}"

    def _aggregate(self, event: dict) -> tuple:
        """The series key of the event; folds the message once a reason has too many distinct ones."""
        ref, source = event["involvedObject"], event["source"]
        similar_key = (
            source.get("component"),
            source.get("host"),
            ref.get("kind"),
            ref.get("namespace"),
            ref.get("name"),
            ref.get("uid"),
            ref.get("apiVersion"),
            event["type"],
            event["reason"],
        )
        exact_key = similar_key + (ref.get("fieldPath"), event["message"])
        mono = time.monotonic()
        similar = self._similar.get(similar_key)
        if similar is None or mono - similar.last > SIMILAR_WINDOW:
            similar = _Similar(set(), mono)
        similar.messages.add(exact_key)
        similar.last = mono
        _remember(self._similar, similar_key, similar)
        if len(similar.messages) < SIMILAR_LIMIT:
            return exact_key
        similar.messages.discard(exact_key)
        event["message"] = COMBINED + event["message"]
        return similar_key

    def _create(self, key: tuple, event: dict) -> None:
        try:
            obj = self._store.create("events", event)
        except Exception:
            log.exception("recording event failed")
            return
        series = _Series(obj, obj["count"], obj["lastTimestamp"], obj["message"], time.monotonic())
        evicted = _remember(self._series, key, series)
        if evicted is not None and evicted.timer is not None:
            evicted.timer.cancel()
            self._update(None, evicted)

    def _write(self, key: tuple) -> None:
        series = self._series.get(key)
        if series is not None:
            self._update(key, series)

    def _update(self, key: tuple | None, series: _Series) -> None:
        """Writes the series' count, lastTimestamp and message; a series whose Event was deleted
        meanwhile (its namespace went) starts again as a new Event."""
        series.timer = None
        series.written_at = time.monotonic()
        obj = dict(series.obj, count=series.count, lastTimestamp=series.last, message=series.message)
        try:
            series.obj = self._store.update("events", obj)
            return
        except errors.ApiError:
            pass
        if key is None:
            return
        del self._series[key]
        namespace = obj["metadata"]["namespace"]
        if self._active(namespace):
            self._create(
                key,
                dict(
                    obj, metadata={"name": self._name(obj["involvedObject"]["name"]), "namespace": namespace}
                ),
            )


def _remember(cache: collections.OrderedDict, key, value):
    """Put value last in an LRU cache; returns what fell out, if anything."""
    cache[key] = value
    cache.move_to_end(key)
    if len(cache) > CACHE_SIZE:
        return cache.popitem(last=False)[1]
    return None
