"""The scheduler (API half) for the one node: a pod whose claims are all bound is bound to the
node at once (at admission, or here as soon as they are); otherwise it stays Pending with
PodScheduled=False, reason Unschedulable, the default-scheduler's message and a
FailedScheduling event (repeated with back-off, as the scheduler retries)."""

from __future__ import annotations

import time

from .cluster import NODE_NAME
from .controllers import Controller
from .store import now

NO_PREEMPTION = "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."


def unschedulable(store, pod: dict) -> str | None:
    """Why the pod cannot be scheduled now (the FailedScheduling message), "" while a claim is
    being provisioned (the volume controller binds it on its next pass), or None."""
    ns = pod["metadata"].get("namespace")
    for v in (pod.get("spec") or {}).get("volumes") or []:
        claim = ((v or {}).get("persistentVolumeClaim") or {}).get("claimName")
        if not claim:
            continue
        pvc = store.get("persistentvolumeclaims", ns, claim)
        if pvc is None:
            return f'0/1 nodes are available: persistentvolumeclaim "{claim}" not found. {NO_PREEMPTION}'
        if pvc["metadata"].get("deletionTimestamp"):
            return (
                f'0/1 nodes are available: persistentvolumeclaim "{claim}" is being deleted. {NO_PREEMPTION}'
            )
        if (pvc.get("status") or {}).get("phase") != "Bound":
            class_name = (pvc.get("spec") or {}).get("storageClassName")
            if class_name and store.get("storageclasses.storage.k8s.io", None, class_name) is not None:
                return ""
            return (
                f"0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. {NO_PREEMPTION}"
            )
    return None


class Scheduler(Controller):
    BACKOFF_MAX = 10.0

    def __init__(self, cluster):
        super().__init__(cluster)
        self._attempts: dict[str, tuple[float, float]] = {}  # uid -> (next report at, backoff)

    def reconcile(self) -> None:
        for pod in self.store.list("pods"):
            spec, meta = pod.get("spec") or {}, pod["metadata"]
            if spec.get("nodeName") or meta.get("deletionTimestamp"):
                self._attempts.pop(meta["uid"], None)
                continue
            why = unschedulable(self.store, pod)
            if why is None:
                pod["spec"]["nodeName"] = NODE_NAME
                bound = self.store.update("pods", pod)
                self._attempts.pop(meta["uid"], None)
                self.cluster.scheduled(bound)
                continue
            if why:
                self._unschedulable(pod, why)

    def _unschedulable(self, pod: dict, why: str) -> None:
        meta = pod["metadata"]
        status = dict(pod.get("status") or {})
        cond = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": why,
            "lastProbeTime": None,
        }
        old = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        if old is None or old.get("message") != why or old.get("status") != "False":
            cond["lastTransitionTime"] = now()
            status["phase"] = "Pending"
            status["conditions"] = [cond]
            self.store.patch_status("pods", meta["namespace"], meta["name"], status)
        t = time.monotonic()
        next_at, backoff = self._attempts.get(meta["uid"], (0.0, 0.5))
        if t >= next_at:
            self.cluster.record_event(
                pod, "FailedScheduling", why, type_="Warning", component="default-scheduler"
            )
            backoff = min(backoff * 2, self.BACKOFF_MAX)
            self._attempts[meta["uid"]] = (t + backoff, backoff)
