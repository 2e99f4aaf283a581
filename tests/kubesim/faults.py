"""Fault injection state, set through the control endpoint (control.py), read by both halves."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime

from . import errors


@dataclasses.dataclass
class RequestFailure:
    verb: str  # get, list, watch, create, update, patch, delete, deletecollection, or *
    resource: str  # store key ("statefulsets.apps"), key/subresource ("pods/status"), or *
    code: int
    count: int
    message: str | None = None
    dry_run: bool | None = None  # only requests with (True) or without (False) dryRun=All; None: both

    def matches(self, verb: str, key: str, dry_run: bool = False) -> bool:
        if self.verb not in ("*", verb):
            return False
        if self.dry_run is not None and self.dry_run != dry_run:
            return False
        base = key.split("/", 1)[0]
        return self.resource in ("*", key) or (
            self.resource == base and "/" not in self.resource and "/" not in key
        )


class Faults:
    def __init__(self):
        self.requests: list[RequestFailure] = []
        self.portforward_cut_after: int | None = None
        self.link_bytes_per_second: int | None = None  # node half: paces exec and port-forward streams
        self.unready: set[tuple[str, str]] = set()
        # API half: the CronJob controller's clock, frozen at this instant (None: the wall clock)
        self.cron_clock: datetime.datetime | None = None

    def add_request_failure(
        self,
        verb: str,
        resource: str,
        code: int,
        count: int = 1,
        message: str | None = None,
        dry_run: bool | None = None,
    ):
        self.requests.append(RequestFailure(verb.lower(), resource, int(code), int(count), message, dry_run))

    def take_request_failure(self, verb: str, key: str, dry_run: bool = False) -> dict | None:
        for f in self.requests:
            if f.count > 0 and f.matches(verb, key, dry_run):
                f.count -= 1
                if f.count <= 0:
                    self.requests.remove(f)
                return errors.for_code(f.code, f.message)
        return None

    def clear(self) -> None:
        self.requests.clear()
        self.portforward_cut_after = None
        self.link_bytes_per_second = None
        self.unready.clear()
        self.cron_clock = None

    def describe(self) -> dict:
        return {
            "requests": [dataclasses.asdict(f) for f in self.requests],
            "portforwardCutAfterBytes": self.portforward_cut_after,
            "linkBytesPerSecond": self.link_bytes_per_second,
            "unready": [{"namespace": ns, "pod": p} for ns, p in sorted(self.unready)],
            "cronClock": self.cron_clock.strftime("%Y-%m-%dT%H:%M:%SZ") if self.cron_clock else None,
        }


class Pace:
    """One direction of one exec or port-forward stream, held to `faults.link_bytes_per_second` (a slow
    link: the bytes wait before they go on; re-read on every chunk, None is unlimited)."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.rate: int | None = None
        self.started = 0.0
        self.moved = 0

    async def __call__(self, size: int) -> None:
        rate = self.faults.link_bytes_per_second
        if not rate:
            self.rate = None
            return
        now = asyncio.get_running_loop().time()
        if rate != self.rate:
            self.rate, self.started, self.moved = rate, now, 0
        self.moved += size
        due = self.started + self.moved / rate
        if due > now:
            await asyncio.sleep(due - now)
