"""True failures while waiting for the environment's pod: what will not get better by waiting.

A StatefulSet that cannot create its pod (Pod Security, quota: FailedCreate events), a claim that stays
Pending for lack of a StorageClass, an image that cannot be pulled, a container killed for memory or
crash-looping. `diagnose` is pure (pod and events in, Diagnosis out); `true_failure` reads the events.
"""

import dataclasses
import datetime
import json
import re
from collections.abc import Sequence
from typing import Any

from kubectl_preevy import messages
from kubectl_preevy.errors import ExitCode
from kubectl_preevy.kubectl import Kubectl

IMAGE_PULL_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
CLAIM_PENDING_REASONS = ("ProvisioningFailed", "FailedBinding")
CLOCK_SLACK_SECONDS = 1  # event times are whole seconds


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """Why a pod is not ready, and what to do about it."""

    reason: str  # what happened, one phrase
    fix: str  # what to do
    exit_code: ExitCode
    crash: bool = False  # a container keeps exiting: the caller adds its exit code and last log line


def event_time(event: dict[str, Any]) -> datetime.datetime | None:
    text = (
        event.get("lastTimestamp")
        or ((event.get("series") or {}).get("lastObservedTime"))
        or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp")
    )
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def _at_or_after(text: object, since: datetime.datetime) -> bool:
    """Whether a status time (e.g. a termination's finishedAt) is of this run; unknown: yes."""
    moment = event_time({"lastTimestamp": text}) if text else None
    return moment is None or moment >= since - datetime.timedelta(seconds=CLOCK_SLACK_SECONDS)


def _involves(event: dict[str, Any], kind: str, name: str) -> bool:
    involved = event.get("involvedObject") or {}
    return involved.get("kind") == kind and involved.get("name") == name


def _latest(events: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    epoch = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
    return max(events, key=lambda e: event_time(e) or epoch, default=None)


def diagnose(
    statefulset: str,
    pod: dict[str, Any] | None,
    events: Sequence[dict[str, Any]],
    since: datetime.datetime,
    namespace: str,
) -> Diagnosis | None:
    """The true failure, if any. since: when this `up` applied (older StatefulSet events are another run's)."""
    if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return _failed_create(statefulset, events, since, namespace)
    return _container_failure(pod, events, since) or _pending_claim(pod, events)


def _failed_create(
    statefulset: str, events: Sequence[dict[str, Any]], since: datetime.datetime, namespace: str
) -> Diagnosis | None:
    recent = [
        e
        for e in events
        if _involves(e, "StatefulSet", statefulset)
        and e.get("reason") == "FailedCreate"
        and (event_time(e) or since) >= since - datetime.timedelta(seconds=CLOCK_SLACK_SECONDS)
    ]
    event = _latest(recent)
    if event is None:
        return None
    message = " ".join(str(event.get("message", "")).split())
    security = re.search(r'violates PodSecurity "([^"]+)": (.*)', message)
    if security:
        return Diagnosis(
            messages.FAILED_CREATE_PSA.format(level=security.group(1), violations=security.group(2)),
            messages.PSA_FIX.format(namespace=namespace),
            ExitCode.REFUSED,
        )
    quota = re.search(r"((?:exceeded quota|failed quota): .*)", message)
    if quota:
        return Diagnosis(
            messages.FAILED_CREATE_QUOTA.format(detail=quota.group(1)),
            messages.QUOTA_FIX_ANY.format(namespace=namespace),
            ExitCode.REFUSED,
        )
    return Diagnosis(
        messages.FAILED_CREATE.format(statefulset=statefulset, detail=message),
        messages.FAILED_CREATE_FIX.format(statefulset=statefulset, namespace=namespace),
        ExitCode.REFUSED,
    )


def _statuses(pod: dict[str, Any]) -> list[dict[str, Any]]:
    status = pod.get("status") or {}
    return [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]


def _container_failure(
    pod: dict[str, Any], events: Sequence[dict[str, Any]], since: datetime.datetime
) -> Diagnosis | None:
    name = (pod.get("metadata") or {}).get("name", "")
    uid = (pod.get("metadata") or {}).get("uid")
    pod_events = [
        e
        for e in events
        if _involves(e, "Pod", name) and (e.get("involvedObject") or {}).get("uid") in (None, uid)
    ]
    for status in _statuses(pod):
        state = status.get("state") or {}
        waiting = state.get("waiting") or {}
        terminated = state.get("terminated") or (status.get("lastState") or {}).get("terminated") or {}
        container = status.get("name", "")
        if waiting.get("reason") in IMAGE_PULL_REASONS:
            pulls = [
                e
                for e in pod_events
                if e.get("reason") == "Failed" and "pull" in str(e.get("message", "")).lower()
            ]
            latest = _latest(pulls)
            detail = (latest or {}).get("message") or waiting.get("message") or waiting["reason"]
            return Diagnosis(
                messages.IMAGE_PULL_FAILED.format(
                    container=container, image=status.get("image", ""), detail=" ".join(str(detail).split())
                ),
                messages.IMAGE_PULL_FIX,
                ExitCode.REFUSED,
            )
        if terminated.get("reason") == "OOMKilled" and _at_or_after(terminated.get("finishedAt"), since):
            return Diagnosis(
                messages.OOM_KILLED.format(container=container, restarts=status.get("restartCount", 0)),
                messages.OOM_FIX,
                ExitCode.FAILURE,
            )
        if waiting.get("reason") == "CrashLoopBackOff":
            return Diagnosis(
                messages.CRASH_LOOP.format(container=container),
                messages.CRASH_FIX,
                ExitCode.FAILURE,
                crash=True,
            )
    return None


def _pending_claim(pod: dict[str, Any], events: Sequence[dict[str, Any]]) -> Diagnosis | None:
    """A claim the pod needs that no StorageClass provisions: its pod is not scheduled, and the claim's
    events say why (ProvisioningFailed: the class does not exist; FailedBinding: no class at all)."""
    status = pod.get("status") or {}
    scheduled = [c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"]
    if status.get("phase") != "Pending" or any(c.get("status") == "True" for c in scheduled):
        return None
    names = [
        str((v.get("persistentVolumeClaim") or {}).get("claimName", ""))
        for v in (pod.get("spec") or {}).get("volumes") or []
        if v.get("persistentVolumeClaim")
    ]
    for claim in names:
        stuck = [
            e
            for e in events
            if _involves(e, "PersistentVolumeClaim", claim) and e.get("reason") in CLAIM_PENDING_REASONS
        ]
        latest = _latest(stuck)
        if latest:
            return Diagnosis(
                messages.CLAIM_PENDING.format(
                    claim=claim, detail=" ".join(str(latest.get("message", "")).split())
                ),
                messages.STORAGE_CLASS_FIX,
                ExitCode.REFUSED,
            )
    return None


def true_failure(
    kubectl: Kubectl, statefulset: str, since: datetime.datetime, pod: dict[str, Any] | None
) -> Diagnosis | None:
    """Read the namespace's events, and diagnose with the pod as just read (None: there is none). A read
    that fails diagnoses nothing. When the pod alone tells (needs_events), the events are not read."""
    if not needs_events(pod):
        return diagnose(statefulset, pod, [], since, kubectl.namespace)
    events_result = kubectl.run("get", "events", "-o", "json")
    if not events_result.ok:
        return None
    try:
        events = json.loads(events_result.stdout).get("items") or []
    except json.JSONDecodeError:
        return None
    return diagnose(statefulset, pod, events, since, kubectl.namespace)


def needs_events(pod: dict[str, Any] | None) -> bool:
    """Whether diagnose needs the events to say what it says of this pod: when there is none (or it is being
    deleted: a failed create is an event), an image is not pulled (the event says why), or it is Pending and
    not scheduled (its claim's events). Else its statuses alone tell (an OOM kill, a crash loop, or nothing)."""
    if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return True
    if any(
        ((s.get("state") or {}).get("waiting") or {}).get("reason") in IMAGE_PULL_REASONS
        for s in _statuses(pod)
    ):
        return True
    status = pod.get("status") or {}
    scheduled = [c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"]
    return status.get("phase") == "Pending" and not any(c.get("status") == "True" for c in scheduled)


def apply_warnings(stderr: str) -> list[str]:
    """The `Warning: ...` lines kubectl prints for the API server's warning headers (Pod Security `warn`,
    deprecated fields...), without the prefix."""
    return [line[len("Warning: ") :].strip() for line in stderr.splitlines() if line.startswith("Warning: ")]
