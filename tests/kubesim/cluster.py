"""The cluster: store, faults, kubelet, controllers, and object deletion semantics shared by API and controllers."""

from __future__ import annotations

import asyncio
import datetime
import logging
import pathlib
import shutil
from typing import Any

from . import objects
from .events import EventRecorder
from .faults import Faults
from .resources import BY_KEY, RESOURCES
from .store import Store

log = logging.getLogger("kubesim.cluster")

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
NODE_NAME = "kubesim-node"
PVC_PROTECTION = "kubernetes.io/pvc-protection"
FOREGROUND = "foregroundDeletion"


def _later(seconds: int) -> str:
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Cluster:
    def __init__(self, state_dir: pathlib.Path | str, watch_history: int = 2000):
        from .admission import QuotaController
        from .authn import Tokens
        from .batch import CronJobController, JobController
        from .bootstrap_policy import AggregationController, seed
        from .controllers import (
            GarbageCollector,
            NamespaceController,
            ServiceAccountController,
            VolumeController,
        )
        from .dataplane import DataPlane
        from .images import Images
        from .kubelet import Kubelet
        from .networking import NetworkingController, default_ingress_class
        from .networking import seed as seed_networking
        from .pki import Pki
        from .rbac import Authorizer
        from .scheduler import Scheduler
        from .statefulset import StatefulSetController

        self.state_dir = pathlib.Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(history=watch_history)
        self.faults = Faults()
        self.events = EventRecorder(self.store, NODE_NAME, lambda ns: self.namespace_phase(ns) == "Active")
        self.images = Images(self.state_dir)
        self.kubelet = Kubelet(self)
        self.pki = Pki(self.state_dir / "pki")
        self.tokens = Tokens(self.pki.token_key, self.store)
        self.authorizer = Authorizer(self.store)
        self.tls_url = ""  # the https:// address (set once serving)
        self.controllers: list[Any] = [
            AggregationController(self),
            QuotaController(self),
            NamespaceController(self),
            ServiceAccountController(self),
            VolumeController(self),
            StatefulSetController(self),
            JobController(self),
            CronJobController(self),
            Scheduler(self),
            GarbageCollector(self),
            NetworkingController(self),
        ]
        self.dataplane = DataPlane(self)
        self._default_ingress_class = default_ingress_class
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self.stopping = False
        for ns in SYSTEM_NAMESPACES:
            self.create_object("namespaces", {"metadata": {"name": ns}})
        seed(self.store)
        self.store.create(
            "storageclasses.storage.k8s.io",
            {
                "metadata": {
                    "name": "standard",
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                },
                "provisioner": "kubesim.io/hostpath",
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "Immediate",
            },
        )
        self.controllers[0].reconcile()
        seed_networking(self)

    # ------------------------------------------------------------ lifecycle
    def pvc_path(self, namespace: str, claim: str) -> pathlib.Path:
        return self.state_dir / "volumes" / namespace / claim

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self.store.subscribe(self._on_event)
        await self.dataplane.start()
        self._reconcile_all()
        self._task = asyncio.create_task(self._run(), name="kubesim-controllers")
        await self.kubelet.start()

    async def stop(self) -> None:
        """Controllers stand still first (no churn while pods go), then the kubelet stops every pod."""
        self.stopping = True
        self.wake()
        if self._task:
            done, _ = await asyncio.wait({self._task}, timeout=5)
            if not done:
                log.warning("controllers did not stand still within 5s; cancelling them")
                self._task.cancel()
        log.info("controllers stopped; stopping the kubelet")
        try:
            await asyncio.wait_for(self.kubelet.stop(), timeout=45)
        except asyncio.TimeoutError:
            log.error("kubelet did not stop within 45s")
        finally:
            await self.dataplane.stop()
            self.store.unsubscribe(self._on_event)
            self.events.flush()

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _on_event(self, event_type: str, key: str, obj: dict) -> None:
        if key == "persistentvolumeclaims":
            path = self.pvc_path(obj["metadata"]["namespace"], obj["metadata"]["name"])
            if event_type == "ADDED":
                path.mkdir(parents=True, exist_ok=True)
            elif event_type == "DELETED":
                shutil.rmtree(path, ignore_errors=True)
        if (
            key == "pods"
            and event_type == "ADDED"
            and not self.stopping
            and (obj.get("spec") or {}).get("nodeName")
        ):
            asyncio.get_running_loop().call_soon(self.scheduled, obj)
        for c in self.controllers:
            c.observe(event_type, key, obj)
        self.wake()

    def scheduled(self, pod: dict) -> None:
        meta = pod["metadata"]
        node = (pod.get("spec") or {}).get("nodeName") or NODE_NAME
        self.record_event(
            pod,
            "Scheduled",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {node}",
            component="default-scheduler",
        )

    async def _run(self) -> None:
        while not self.stopping:
            waiter = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({waiter}, timeout=1.0)
            finally:
                waiter.cancel()
            if self.stopping:
                break
            self._wake.clear()
            self._reconcile_all()
            await asyncio.sleep(0)

    def _reconcile_all(self) -> None:
        for c in self.controllers:
            try:
                c.reconcile()
            except Exception:
                log.exception("controller %s failed", type(c).__name__)

    # ------------------------------------------------------------ helpers used by API and controllers
    def namespace_phase(self, name: str) -> str | None:
        ns = self.store.get("namespaces", None, name)
        if ns is None:
            return None
        return "Terminating" if ns["metadata"].get("deletionTimestamp") else "Active"

    def admit(self, key: str, obj: dict) -> None:
        """Mutations that admission plugins / the scheduler apply on create."""
        spec = obj.get("spec")
        if key == "persistentvolumeclaims":
            from .controllers import default_storage_class

            fins = obj["metadata"].setdefault("finalizers", [])
            if PVC_PROTECTION not in fins:
                fins.append(PVC_PROTECTION)
            if isinstance(spec, dict) and spec.get("storageClassName") is None:
                default = default_storage_class(self.store)  # the DefaultStorageClass admission plugin
                if default is not None:
                    spec["storageClassName"] = default
        elif key == "pods" and isinstance(spec, dict):
            from .scheduler import unschedulable
            from .serviceaccounts import admit_pod

            admit_pod(self.store, obj)
            if not spec.get("nodeName") and unschedulable(self.store, obj) is None:
                spec["nodeName"] = NODE_NAME  # schedulable now; else the scheduler binds it later
        elif key == "ingresses.networking.k8s.io" and isinstance(spec, dict):
            annotations = obj["metadata"].get("annotations") or {}
            if not spec.get("ingressClassName") and "kubernetes.io/ingress.class" not in annotations:
                default = self._default_ingress_class(self.store)
                if default:
                    spec["ingressClassName"] = default  # the DefaultIngressClass admission plugin
        elif key == "jobs.batch":
            from .batch import admit_job

            admit_job(obj)

    def create_object(self, key: str, obj: dict) -> dict:
        """Create as a controller would through the API (defaults, admission, initial status; no
        validation). Pods and claims go through admission (LimitRange, Pod Security, quota): an
        errors.ApiError (403) is raised as the API would answer the controller."""
        from .admission import admit_create

        objects.initial_status(key, obj)
        objects.apply_defaults(key, obj)
        self.admit(key, obj)
        if key in ("pods", "persistentvolumeclaims"):
            admit_create(self, key, obj)
        return self.store.create(key, obj)

    def delete_object(
        self,
        key: str,
        namespace: str | None,
        name: str,
        grace: int | None = None,
        propagation: str = "Background",
    ) -> dict | None:
        """Delete with the real semantics: graceful pods, terminating namespaces, finalizers, and
        the propagation policy for dependents (objects whose ownerReferences name this one):
        Background (the garbage collector deletes them afterwards), Foreground (this object waits,
        finalizer `foregroundDeletion`, until they are gone), Orphan (they lose the reference)."""
        obj = self.store.get(key, namespace, name)
        if obj is None:
            return None
        meta = obj["metadata"]
        if propagation == "Orphan":
            self.orphan_dependents(meta["uid"])
        elif propagation == "Foreground" and key not in ("pods", "namespaces"):
            # as the apiserver: the finalizer whether or not there are dependents, the garbage collector
            # removes it once none is left (so the object is seen deleting, deletionTimestamp set, first)
            fins = meta.setdefault("finalizers", [])
            if FOREGROUND not in fins:
                fins.append(FOREGROUND)
            if meta.get("deletionTimestamp"):
                return self.store.update(key, obj)
            return self._mark_deleted(key, obj)
        if key == "pods":
            if grace is None:
                grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            if grace == 0 and not meta.get("finalizers"):
                return self.store.remove(key, namespace, name)
            return self._mark_deleted(key, obj, grace)
        if key == "namespaces":
            if not meta.get("deletionTimestamp"):
                obj.setdefault("status", {})["phase"] = "Terminating"
            return self._mark_deleted(key, obj)
        if meta.get("finalizers"):
            return self._mark_deleted(key, obj)
        return self.store.remove(key, namespace, name)

    def dependents(self, uid: str) -> list[tuple[str, dict]]:
        """(key, object) of every object with an ownerReference to `uid`."""
        out = []
        for key in self.store.keys():  # noqa: SIM118 (Store is not iterable)
            for o in self.store.list(key):
                if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or []):
                    out.append((key, o))
        return out

    def orphan_dependents(self, uid: str) -> None:
        for key, o in self.dependents(uid):
            o["metadata"]["ownerReferences"] = [
                r for r in o["metadata"]["ownerReferences"] if r.get("uid") != uid
            ]
            if not o["metadata"]["ownerReferences"]:
                del o["metadata"]["ownerReferences"]
            self.store.update(key, o)

    def _mark_deleted(self, key: str, obj: dict, grace: int = 0) -> dict:
        """Sets deletionTimestamp (now + grace) once; the object goes when its owner is done with it."""
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            return obj
        meta["deletionTimestamp"] = _later(grace)
        meta["deletionGracePeriodSeconds"] = grace
        return self.store.update(key, obj)

    def finalize_if_done(self, key: str, obj: dict) -> dict | None:
        """An object being deleted whose finalizers are all gone is removed. Returns the removed object."""
        meta = obj["metadata"]
        if key in ("pods", "namespaces") or not meta.get("deletionTimestamp") or meta.get("finalizers"):
            return None
        return self.store.remove(key, meta.get("namespace"), meta["name"])

    def record_event(
        self,
        involved: dict,
        reason: str,
        message: str,
        type_: str = "Normal",
        component: str = "kubelet",
        field_path: str | None = None,
    ) -> None:
        """A core/v1 Event about an object (what `kubectl describe` and `get events` show); repeats
        are aggregated into one Event with a count (see events.py). field_path names a part of
        the object, e.g. `spec.containers{docker}`."""
        self.events.record(involved, reason, message, type_, component, field_path)

    def namespaced_keys(self) -> list[str]:
        return [r.key for r in RESOURCES if r.namespaced and r.store]

    def resource(self, key: str):
        return BY_KEY[key]
