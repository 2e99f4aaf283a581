"""A pod's status as the kubesim kubelet reports it (see kubelet.py's docstring for the fields).

`PodStatus` computes it from the pod's kubelet state (sandbox up, init containers done, each
`Container`'s state) and writes it with `store.patch_status` only when it changed, at most
once per event-loop turn however many changes came in (`changed()`), and on every kubelet tick
(the unready fault is re-read then). Conditions keep their lastTransitionTime until their
status flips.
"""

from __future__ import annotations

import asyncio
import hashlib

from .store import now


def image_id(image: str) -> str:
    """A made-up but stable imageID: `docker.io/library/busybox@sha256:...` (nothing is pulled)."""
    repo = image.split("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:
        repo = repo[: len(repo) - len(last)] + last.split(":", 1)[0]
    if "/" not in repo:
        repo = "docker.io/library/" + repo
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def container_status(c) -> dict:
    """The containerStatuses / initContainerStatuses entry of a node_container.Container."""
    image = c.spec.get("image", "")
    out = {
        "name": c.name,
        "image": image,
        "imageID": image_id(image) if c.container_id else "",
        "ready": c.ready,
        "started": c.started,
        "restartCount": c.restart_count,
        "state": c.state,
        "lastState": c.last_state,
    }
    if c.container_id:
        out["containerID"] = c.container_id
    return out


class PodStatus:
    def __init__(self, pod) -> None:
        self.pod = pod
        self._transitions: dict[str, tuple[str, str]] = {}  # condition -> (status, lastTransitionTime)
        self._written: dict | None = None
        self._scheduled = False

    def changed(self) -> None:
        """Something changed: write the status soon (once for every change of this loop turn)."""
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._sync_soon)

    def _sync_soon(self) -> None:
        self._scheduled = False
        self.sync()

    def sync(self) -> None:
        pod = self.pod
        if pod.gone or pod.terminating:
            return
        status = self.compute()
        if status != self._written:
            self._written = status
            if pod.kubelet.cluster.store.patch_status("pods", pod.namespace, pod.name, status) is None:
                pod.gone = True

    def phase(self) -> str:
        pod = self.pod
        if pod.init_failed:
            return "Failed"
        if not pod.initialized or not pod.sandbox_up or not any(c.container_id for c in pod.containers):
            return "Pending"
        if pod.containers and all(c.done for c in pod.containers):
            return "Succeeded" if all(c.exit_code == 0 for c in pod.containers) else "Failed"
        return "Running"

    def compute(self) -> dict:
        pod = self.pod
        phase = self.phase()
        resources = any((c.get("resources") or {}) for c in pod.spec.get("containers") or [])
        status = {
            "phase": phase,
            "conditions": self._conditions(phase),
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "startTime": pod.start_time,
            "qosClass": "Burstable" if resources else "BestEffort",
            "containerStatuses": [container_status(c) for c in pod.containers],
        }
        if pod.sandbox_up:
            status["podIP"] = pod.pod_ip
            status["podIPs"] = [{"ip": pod.pod_ip}]
        if pod.init_containers:
            status["initContainerStatuses"] = [container_status(c) for c in pod.init_containers]
        return status

    def _conditions(self, phase: str) -> list[dict]:
        pod = self.pod
        faults = getattr(pod.kubelet.cluster, "faults", None)
        held = faults is not None and (pod.namespace, pod.name) in getattr(faults, "unready", ())
        unready = [c.name for c in pod.containers if not c.ready]
        containers_ready = not unready and phase == "Running"
        message = f"containers with unready status: [{' '.join(unready)}]" if unready else None
        pending_init = [c.name for c in pod.init_containers if not (c.done and c.exit_code == 0)]
        return [
            self._condition("PodReadyToStartContainers", pod.sandbox_up),
            self._condition(
                "Initialized",
                pod.initialized,
                "ContainersNotInitialized",
                f"containers with incomplete status: [{' '.join(pending_init)}]",
            ),
            self._condition(
                "Ready",
                containers_ready and not held,
                "ContainersNotReady" if not containers_ready else "KubesimHeldUnready",
                message if not containers_ready else "held unready by a kubesim fault",
            ),
            self._condition("ContainersReady", containers_ready, "ContainersNotReady", message),
            self._condition("PodScheduled", True),
        ]

    def _condition(
        self, kind: str, status: bool, reason: str | None = None, message: str | None = None
    ) -> dict:
        value = "True" if status else "False"
        old = self._transitions.get(kind)
        if old is None or old[0] != value:
            self._transitions[kind] = (value, now())
        out = {
            "type": kind,
            "status": value,
            "lastProbeTime": None,
            "lastTransitionTime": self._transitions[kind][1],
        }
        if not status and reason:
            out["reason"] = reason
            if message:
                out["message"] = message
        return out
