"""How long an environment lives: its lifetime annotations, and what they say about it now.

Everything lives in annotations of the docker-host StatefulSet, so that `ls`, `gc` (on a laptop or
in the cluster's CronJob) and Preevy read the same facts:

- `preevy.dev/expires-at`: `up --ttl` writes now + ttl; every `up` renews it; `gc` deletes after it.
- `preevy.dev/last-deploy-at`: every `up`; `preevy.dev/woken-at`: every `wake`.
- `preevy.dev/sleep-after`: `up --sleep-after`; `gc` sleeps the environment once idle that long
  (idle: since the later of last-deploy-at and woken-at).
- `preevy.dev/keep: "true"`: set by the user (`kubectl annotate`): gc leaves the environment alone.
- `preevy.dev/urls`: the URL rows of the last `up` (JSON), for `ls`.
- `preevy.dev/compose-project`: the compose project, whose model `wake` restarts.
"""

import dataclasses
import datetime
import json
from typing import Any

from kubectl_preevy import naming

ANNOTATION_EXPIRES_AT = "preevy.dev/expires-at"
ANNOTATION_LAST_DEPLOY_AT = "preevy.dev/last-deploy-at"
ANNOTATION_WOKEN_AT = "preevy.dev/woken-at"
ANNOTATION_SLEEP_AFTER = "preevy.dev/sleep-after"
ANNOTATION_KEEP = "preevy.dev/keep"
ANNOTATION_URLS = "preevy.dev/urls"
ANNOTATION_COMPOSE_PROJECT = "preevy.dev/compose-project"

STATE_RUNNING = "running"
STATE_SLEEPING = "sleeping"
STATE_DELETING = "deleting"

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def timestamp(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC, to the second (as Kubernetes writes times)."""
    return moment.astimezone(datetime.timezone.utc).strftime(_TIME_FORMAT)


def parse_timestamp(text: str | None) -> datetime.datetime | None:
    """A time we (or Preevy, with milliseconds) wrote; None when missing or garbled."""
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(datetime.timezone.utc)
    except ValueError:
        return None


def duration_text(seconds: float) -> str:
    return f"{seconds:g}s"


def up_annotations(
    moment: datetime.datetime, ttl: float | None, sleep_after: float | None, compose_project: str
) -> dict[str, str]:
    """What `up` writes on the docker-host StatefulSet (a removed option removes its annotation with it)."""
    annotations = {ANNOTATION_LAST_DEPLOY_AT: timestamp(moment), ANNOTATION_COMPOSE_PROJECT: compose_project}
    if ttl is not None:
        annotations[ANNOTATION_EXPIRES_AT] = timestamp(moment + datetime.timedelta(seconds=ttl))
    if sleep_after is not None:
        annotations[ANNOTATION_SLEEP_AFTER] = duration_text(sleep_after)
    return annotations


@dataclasses.dataclass(frozen=True)
class Lifetime:
    """The lifetime facts of one docker-host StatefulSet."""

    state: str
    created_at: datetime.datetime | None
    expires_at: datetime.datetime | None
    last_active_at: datetime.datetime | None
    sleep_after: float | None
    keep: bool
    urls: list[dict[str, Any]]

    def expired(self, at: datetime.datetime) -> bool:
        return not self.keep and self.expires_at is not None and self.expires_at <= at

    def idle(self, at: datetime.datetime) -> bool:
        """Running, allowed to sleep, and not deployed nor woken for sleep-after."""
        return (
            not self.keep
            and self.state == STATE_RUNNING
            and self.sleep_after is not None
            and self.last_active_at is not None
            and (at - self.last_active_at).total_seconds() >= self.sleep_after
        )


def of(statefulset: dict[str, Any]) -> Lifetime:
    metadata = statefulset["metadata"]
    annotations = metadata.get("annotations") or {}
    labels = metadata.get("labels") or {}
    if metadata.get("deletionTimestamp") or labels.get(naming.LABEL_DELETED) == "true":
        state = STATE_DELETING
    elif (statefulset.get("spec") or {}).get("replicas", 1) == 0:
        state = STATE_SLEEPING
    else:
        state = STATE_RUNNING
    active = [
        moment
        for moment in (
            parse_timestamp(annotations.get(ANNOTATION_LAST_DEPLOY_AT)),
            parse_timestamp(annotations.get(ANNOTATION_WOKEN_AT)),
        )
        if moment is not None
    ]
    return Lifetime(
        state=state,
        created_at=parse_timestamp(
            annotations.get(naming.ANNOTATION_CREATED_AT) or metadata.get("creationTimestamp")
        ),
        expires_at=parse_timestamp(annotations.get(ANNOTATION_EXPIRES_AT)),
        last_active_at=max(active) if active else None,
        sleep_after=_seconds(annotations.get(ANNOTATION_SLEEP_AFTER)),
        keep=annotations.get(ANNOTATION_KEEP, "").strip().lower() == "true",
        urls=_urls(annotations.get(ANNOTATION_URLS)),
    )


def _seconds(text: str | None) -> float | None:
    try:
        value = float((text or "").strip().removesuffix("s"))
    except ValueError:
        return None
    return value if value > 0 else None


def _urls(text: str | None) -> list[dict[str, Any]]:
    try:
        rows = json.loads(text or "[]")
    except json.JSONDecodeError:
        return []
    return [row for row in rows if isinstance(row, dict) and isinstance(row.get("url"), str)]


def urls_annotation(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, separators=(",", ":"))


def age(since: datetime.datetime | None, at: datetime.datetime) -> str:
    """kubectl's AGE column: 45s, 12m, 5h, 3d."""
    if since is None:
        return "<unknown>"
    return short_duration((at - since).total_seconds())


def short_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def expires(lifetime: Lifetime, at: datetime.datetime) -> str:
    """The EXPIRES column: in 3h, expired, never (keep or no ttl)."""
    if lifetime.keep or lifetime.expires_at is None:
        return "never"
    if lifetime.expires_at <= at:
        return "expired"
    return "in " + short_duration((lifetime.expires_at - at).total_seconds())
