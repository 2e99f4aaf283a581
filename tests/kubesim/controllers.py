"""Small controllers: namespace lifecycle, default ServiceAccount, PVC binding/protection, garbage collection."""

from __future__ import annotations

import logging

from .cluster import PVC_PROTECTION

log = logging.getLogger("kubesim.controllers")

ROOT_CA = (
    "-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIBADAKBggqhkjOPQQDAjAjMSEwHwYDVQQDDBhrdWJlc2lt\n"
    "-----END CERTIFICATE-----\n"
)


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
                        "data": {"ca.crt": ROOT_CA},
                    },
                )


class VolumeController(Controller):
    """Binds pending claims at once (a default provisioner) and releases pvc-protection when unused."""

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
                spec = pvc.setdefault("spec", {})
                spec.setdefault("volumeName", f"pvc-{meta['uid']}")
                ann = meta.setdefault("annotations", {})
                ann.setdefault("pv.kubernetes.io/bind-completed", "yes")
                ann.setdefault("pv.kubernetes.io/bound-by-controller", "yes")
                ann.setdefault("volume.kubernetes.io/storage-provisioner", "kubesim.io/hostpath")
                storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
                pvc["status"] = {
                    "phase": "Bound",
                    "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
                    "capacity": {"storage": storage},
                }
                self.cluster.pvc_path(ns, name).mkdir(parents=True, exist_ok=True)
                self.store.update("persistentvolumeclaims", pvc)

    def _in_use(self, namespace: str, claim: str) -> bool:
        for pod in self.store.list("pods", namespace):
            for v in (pod.get("spec") or {}).get("volumes") or []:
                if ((v or {}).get("persistentVolumeClaim") or {}).get("claimName") == claim:
                    return True
        return False


class GarbageCollector(Controller):
    """Deletes (background) every object all of whose ownerReferences point at uids that no longer exist."""

    def __init__(self, cluster):
        super().__init__(cluster)
        self._dirty = True

    def observe(self, event_type, key, obj):
        if event_type == "DELETED" or (event_type == "ADDED" and obj["metadata"].get("ownerReferences")):
            self._dirty = True

    def reconcile(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        for key in self.store.keys():  # noqa: SIM118 (Store is not iterable)
            for obj in self.store.list(key):
                meta = obj["metadata"]
                refs = meta.get("ownerReferences") or []
                if not refs or meta.get("deletionTimestamp"):
                    continue
                if all(not self.store.exists_uid(r.get("uid", "")) for r in refs):
                    log.info("garbage collecting %s %s/%s", key, meta.get("namespace", ""), meta["name"])
                    self.cluster.delete_object(key, meta.get("namespace"), meta["name"])
