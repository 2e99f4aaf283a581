"""Small controllers: namespace lifecycle, default ServiceAccount, PVC binding/protection, garbage collection."""

from __future__ import annotations

import logging

from .cluster import FOREGROUND, PVC_PROTECTION

log = logging.getLogger("kubesim.controllers")
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
NO_CLASS = "no persistent volumes available for this claim and no storage class is set"


class Controller:
    def __init__(self, cluster):
        self.cluster = cluster
        self.store = cluster.store

    def observe(self, event_type: str, key: str, obj: dict) -> None:
        pass

    def reconcile(self) -> None:
        raise NotImplementedError


class NamespaceController(Controller):
    """Terminating namespaces: delete everything in them, then the namespace itself."""

    def reconcile(self) -> None:
        for ns in self.store.list("namespaces"):
            if not ns["metadata"].get("deletionTimestamp"):
                continue
            name = ns["metadata"]["name"]
            remaining = 0
            for key in self.cluster.namespaced_keys():
                for obj in self.store.list(key, name):
                    remaining += 1
                    if not obj["metadata"].get("deletionTimestamp"):
                        self.cluster.delete_object(key, name, obj["metadata"]["name"])
                    elif (
                        key != "pods"
                        and obj["metadata"].get("finalizers")
                        and key == "persistentvolumeclaims"
                    ):
                        pass  # the volume controller releases it once no pod uses it
            if remaining == 0:
                self.store.remove("namespaces", None, name)


class ServiceAccountController(Controller):
    """Every active namespace has a `default` ServiceAccount and the kube-root-ca.crt ConfigMap."""

    def reconcile(self) -> None:
        for ns in self.store.list("namespaces"):
            if ns["metadata"].get("deletionTimestamp"):
                continue
            name = ns["metadata"]["name"]
            if self.store.get("serviceaccounts", name, "default") is None:
                self.cluster.create_object(
                    "serviceaccounts", {"metadata": {"name": "default", "namespace": name}}
                )
            if self.store.get("configmaps", name, "kube-root-ca.crt") is None:
                self.cluster.create_object(
                    "configmaps",
                    {
                        "metadata": {
                            "name": "kube-root-ca.crt",
                            "namespace": name,
                            "annotations": {
                                "kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."
                            },
                        },
                        "data": {"ca.crt": self.cluster.pki.ca_pem.decode()},
                    },
                )


class VolumeController(Controller):
    """The persistent-volume controller with one dynamic provisioner for every StorageClass: a
    claim of an existing class is bound at once; a claim with no class (and no default class)
    or of a class that does not exist stays Pending with the real events (repeated every 15 s,
    as the controller's resync). A default class created later is given to claims that have
    none (retroactive default StorageClass, GA in 1.28). pvc-protection is released when unused."""

    RESYNC = 15.0

    def __init__(self, cluster):
        super().__init__(cluster)
        self._reported: dict[str, tuple[str, float]] = {}

    def reconcile(self) -> None:
        for pvc in self.store.list("persistentvolumeclaims"):
            meta = pvc["metadata"]
            ns, name = meta["namespace"], meta["name"]
            if meta.get("deletionTimestamp"):
                if not self._in_use(ns, name):
                    fins = [f for f in meta.get("finalizers") or [] if f != PVC_PROTECTION]
                    if fins != (meta.get("finalizers") or []):
                        meta["finalizers"] = fins
                        pvc = self.store.update("persistentvolumeclaims", pvc)
                    self.cluster.finalize_if_done("persistentvolumeclaims", pvc)
                continue
            if (pvc.get("status") or {}).get("phase") != "Bound":
                self._provision(pvc)

    def _provision(self, pvc: dict) -> None:
        meta, spec = pvc["metadata"], pvc.setdefault("spec", {})
        ns, name = meta["namespace"], meta["name"]
        if spec.get("storageClassName") is None:
            default = default_storage_class(self.store)
            if default is not None:  # a default class appeared since: given to the claim
                spec["storageClassName"] = default
                pvc = self.store.update("persistentvolumeclaims", pvc)
                meta, spec = pvc["metadata"], pvc["spec"]
        class_name = spec.get("storageClassName")
        if not class_name:  # no class and no default, or "" (static binding only): no PV ever comes
            self._report(pvc, "FailedBinding", NO_CLASS, "Normal")
            return
        sc = self.store.get("storageclasses.storage.k8s.io", None, class_name)
        if sc is None:
            self._report(
                pvc, "ProvisioningFailed", f'storageclass.storage.k8s.io "{class_name}" not found', "Warning"
            )
            return
        self._reported.pop(meta["uid"], None)
        volume = f"pvc-{meta['uid']}"
        spec.setdefault("volumeName", volume)
        ann = meta.setdefault("annotations", {})
        ann.setdefault("pv.kubernetes.io/bind-completed", "yes")
        ann.setdefault("pv.kubernetes.io/bound-by-controller", "yes")
        ann.setdefault("volume.beta.kubernetes.io/storage-provisioner", sc.get("provisioner", ""))
        ann.setdefault("volume.kubernetes.io/storage-provisioner", sc.get("provisioner", ""))
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        pvc["status"] = {
            "phase": "Bound",
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "capacity": {"storage": storage},
        }
        self.cluster.pvc_path(ns, name).mkdir(parents=True, exist_ok=True)
        self.store.update("persistentvolumeclaims", pvc)
        self.cluster.record_event(
            pvc,
            "ProvisioningSucceeded",
            f"Successfully provisioned volume {volume} using {sc.get('provisioner', '')}",
            component="persistentvolume-controller",
        )

    def _report(self, pvc: dict, reason: str, message: str, type_: str) -> None:
        import time

        uid = pvc["metadata"]["uid"]
        last = self._reported.get(uid)
        now = time.monotonic()
        if last is not None and last[0] == message and now - last[1] < self.RESYNC:
            return
        self._reported[uid] = (message, now)
        self.cluster.record_event(pvc, reason, message, type_=type_, component="persistentvolume-controller")

    def _in_use(self, namespace: str, claim: str) -> bool:
        for pod in self.store.list("pods", namespace):
            for v in (pod.get("spec") or {}).get("volumes") or []:
                if ((v or {}).get("persistentVolumeClaim") or {}).get("claimName") == claim:
                    return True
        return False


def default_storage_class(store) -> str | None:
    """The default StorageClass (annotation is-default-class "true"; the newest when several)."""
    defaults = [
        sc
        for sc in store.list("storageclasses.storage.k8s.io")
        if (sc["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"
    ]
    if not defaults:
        return None
    defaults.sort(key=lambda sc: (sc["metadata"]["creationTimestamp"], sc["metadata"]["name"]))
    return defaults[-1]["metadata"]["name"]


class GarbageCollector(Controller):
    """Deletes (background) every object all of whose ownerReferences point at uids that no longer
    exist, and finishes foreground deletions: an owner held by `foregroundDeletion` has its
    dependents deleted, and goes once none is left."""

    def __init__(self, cluster):
        super().__init__(cluster)
        self._dirty = True

    def observe(self, event_type, key, obj):
        meta = obj["metadata"]
        if (
            event_type == "DELETED"
            or (event_type == "ADDED" and meta.get("ownerReferences"))
            or FOREGROUND in (meta.get("finalizers") or [])
        ):
            self._dirty = True

    def reconcile(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        for key in self.store.keys():  # noqa: SIM118 (Store is not iterable)
            for obj in self.store.list(key):
                meta = obj["metadata"]
                if meta.get("deletionTimestamp") and FOREGROUND in (meta.get("finalizers") or []):
                    self._finish_foreground(key, obj)
                    continue
                refs = meta.get("ownerReferences") or []
                if not refs or meta.get("deletionTimestamp"):
                    continue
                if all(not self.store.exists_uid(r.get("uid", "")) for r in refs):
                    log.info("garbage collecting %s %s/%s", key, meta.get("namespace", ""), meta["name"])
                    self.cluster.delete_object(key, meta.get("namespace"), meta["name"])

    def _finish_foreground(self, key: str, owner: dict) -> None:
        deps = self.cluster.dependents(owner["metadata"]["uid"])
        for dkey, dep in deps:
            if not dep["metadata"].get("deletionTimestamp"):
                self.cluster.delete_object(
                    dkey, dep["metadata"].get("namespace"), dep["metadata"]["name"], propagation="Foreground"
                )
        if deps:
            self._dirty = True  # look again once they are gone
            return
        owner["metadata"]["finalizers"] = [f for f in owner["metadata"]["finalizers"] if f != FOREGROUND]
        owner = self.store.update(key, owner)
        self.cluster.finalize_if_done(key, owner)
