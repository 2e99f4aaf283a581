"""Watch streaming (API half): `GET <collection>?watch=true` as the apiserver answers it.

One JSON event per line, flushed at once. With a resourceVersion, first the stored events newer
than it (410 Gone as an ERROR event when it is older than the kept history), else (or with
sendInitialEvents) ADDED for every match; then live events until timeoutSeconds, with BOOKMARKs
every few seconds when allowed. Events are seen through the watch's selectors: an object that
starts to match is ADDED, one that stops matching is DELETED.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from . import errors, tables
from .api_request import JSON, Route

BOOKMARK_INTERVAL = 5.0
MAX_WATCH_SECONDS = 1800
CLOSE = "__close__"  # queued by Api.close_watches: end the stream


def _ident(obj: dict) -> tuple[str, str]:
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


class _Visible:
    """The objects a watcher sees through its selectors; translates store events into its events."""

    def __init__(self, match, objects: list[dict]) -> None:
        self.match = match
        self.idents = {_ident(o) for o in objects if match(o)}

    def as_of(self, replay: list[tuple[str, dict]]) -> None:
        """Before replaying events: objects whose first replayed event is ADDED did not exist
        at the watch's resourceVersion; the others did."""
        first_seen: dict = {}
        for t, o in replay:
            first_seen.setdefault(_ident(o), t)
        for ident, t in first_seen.items():
            if t == "ADDED":
                self.idents.discard(ident)
            else:
                self.idents.add(ident)

    def event(self, event_type: str, obj: dict) -> str | None:
        """The event type the watcher gets for this store event (None: none)."""
        ident, matches = _ident(obj), self.match(obj)
        if event_type == "DELETED":
            was = ident in self.idents or matches
            self.idents.discard(ident)
            return "DELETED" if was else None
        if matches:
            seen = ident in self.idents or event_type == "ADDED"
            self.idents.add(ident)
            return event_type if seen else "ADDED"
        if ident in self.idents:
            self.idents.discard(ident)
            return "DELETED"
        return None


class Watch:
    def __init__(self, store, route: Route, q, accept: str, match) -> None:
        rv_param = q.get("resourceVersion", "")
        try:
            self.timeout = min(float(q.get("timeoutSeconds") or MAX_WATCH_SECONDS), MAX_WATCH_SECONDS)
            self.since = int(rv_param) if rv_param not in ("", "0") else None
        except ValueError:
            raise errors.bad_request(
                f"invalid watch parameters: resourceVersion={rv_param!r} timeoutSeconds={q.get('timeoutSeconds')!r}"
            )
        self.store, self.route, self.match = store, route, match
        self.bookmarks = q.get("allowWatchBookmarks") == "true"
        self.send_initial = q.get("sendInitialEvents") == "true"
        self.as_table = tables.wants_table(accept)
        self.include = q.get("includeObject", "PartialObjectMetadata")
        self.queue: asyncio.Queue = asyncio.Queue()
        self._headers_sent = False
        self._response: web.StreamResponse | None = None

    def _on_event(self, event_type: str, key: str, obj: dict) -> None:
        if key == self.route.key:
            self.queue.put_nowait((event_type, obj))

    async def serve(self, request: web.Request, queues: set) -> web.StreamResponse:
        # subscribe and snapshot in one synchronous step: nothing between them is lost
        self.store.subscribe(self._on_event)
        queues.add(self.queue)
        try:
            current = self.store.list(self.route.key, self.route.list_namespace)
            visible = _Visible(self.match, current)
            initial, expired = self._initial(current)
            self._response = web.StreamResponse(
                status=200, headers={"Content-Type": JSON, "Cache-Control": "no-cache, private"}
            )
            self._response.enable_chunked_encoding()
            await self._response.prepare(request)
            try:
                if expired is not None:
                    await self._send("ERROR", expired)
                    return self._response
                await self._send_initial(initial, visible)
                await self._stream(request, visible)
            except (ConnectionResetError, ConnectionError):
                pass
            try:
                await self._response.write_eof()
            except Exception:
                pass
            return self._response
        finally:
            self.store.unsubscribe(self._on_event)
            queues.discard(self.queue)

    @property
    def _replaying(self) -> bool:
        return self.since is not None and not self.send_initial

    def _initial(self, current: list[dict]) -> tuple[list, dict | None]:
        """(events to send first, an expired Status or None)."""
        if not self._replaying:
            return [("ADDED", o) for o in current if self.match(o)], None
        history = self.store.history_since(self.since)
        if history is None:
            return [], errors.gone(f"too old resource version: {self.since} ({self.store.resource_version})")
        return [(t, o) for (_, t, k, o) in history if k == self.route.key], None

    async def _send_initial(self, initial: list, visible: _Visible) -> None:
        if self._replaying:
            visible.as_of(initial)
        for t, o in initial:
            seen = visible.event(t, o) if self._replaying else t
            if seen:
                await self._send(seen, o)
        if self.send_initial and self.bookmarks:
            await self._send("BOOKMARK", self._bookmark(initial_end=True))

    async def _stream(self, request: web.Request, visible: _Visible) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        next_bookmark = loop.time() + BOOKMARK_INTERVAL
        while True:
            left = deadline - loop.time()
            if left <= 0 or request.transport is None or request.transport.is_closing():
                return
            try:
                t, o = await asyncio.wait_for(self.queue.get(), min(left, 1.0))
            except asyncio.TimeoutError:
                if self.bookmarks and loop.time() >= next_bookmark:
                    await self._send("BOOKMARK", self._bookmark())
                    next_bookmark = loop.time() + BOOKMARK_INTERVAL
                continue
            if t == CLOSE:
                return
            seen = visible.event(t, o)
            if seen:
                await self._send(seen, o)

    async def _send(self, event_type: str, obj: dict) -> None:
        if self.as_table and event_type not in ("ERROR", "BOOKMARK"):
            obj = tables.table(self.route.key, [obj], self.include, headers=not self._headers_sent)
            self._headers_sent = True
        line = json.dumps({"type": event_type, "object": obj}, separators=(",", ":")) + "\n"
        await self._response.write(line.encode())

    def _bookmark(self, initial_end: bool = False) -> dict:
        meta: dict[str, Any] = {"resourceVersion": str(self.store.resource_version)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": self.route.res.kind, "apiVersion": self.route.res.group_version, "metadata": meta}
