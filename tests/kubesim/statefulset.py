"""The StatefulSet controller: ordered pods, claims from volumeClaimTemplates, rolling updates, status."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re

from . import errors
from .controllers import Controller

log = logging.getLogger("kubesim.statefulset")

KEY = "statefulsets.apps"
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s rand.SafeEncodeString alphabet


def revision_name(sts: dict) -> str:
    tpl = (sts.get("spec") or {}).get("template") or {}
    digest = hashlib.sha256(json.dumps(tpl, sort_keys=True, separators=(",", ":")).encode()).digest()
    n = int.from_bytes(digest[:8], "big")
    s = ""
    for _ in range(10):
        s += _ALPHABET[n % len(_ALPHABET)]
        n //= len(_ALPHABET)
    return f"{sts['metadata']['name']}-{s}"


def pod_ready(pod: dict) -> bool:
    st = pod.get("status") or {}
    if st.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])


def terminating(obj: dict) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def _retention(sts: dict, when: str) -> str:
    policy = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return policy.get(when) or "Retain"


def _owner_ref(owner: dict) -> dict:
    return {
        "apiVersion": owner.get("apiVersion") or "v1",
        "kind": owner.get("kind") or "Pod",
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": owner.get("kind") == "StatefulSet",
        "blockOwnerDeletion": True,
    }


class StatefulSetController(Controller):
    def reconcile(self) -> None:
        for sts in self.store.list(KEY):
            try:
                self.sync(sts)
            except Exception:
                log.exception(
                    "sync of statefulset %s/%s failed", sts["metadata"]["namespace"], sts["metadata"]["name"]
                )

    # ------------------------------------------------------------------
    def _pods(self, sts: dict) -> dict[int, dict]:
        meta = sts["metadata"]
        pat = re.compile(rf"^{re.escape(meta['name'])}-(\d+)$")
        out = {}
        for pod in self.store.list("pods", meta["namespace"]):
            refs = pod["metadata"].get("ownerReferences") or []
            m = pat.match(pod["metadata"]["name"])
            if m and any(r.get("uid") == meta["uid"] for r in refs):
                out[int(m.group(1))] = pod
        return out

    def sync(self, sts: dict) -> None:
        if terminating(sts):
            return
        rev = revision_name(sts)
        self._act(sts, rev)
        self._status(sts, rev)

    def _act(self, sts: dict, rev: str) -> None:
        spec = sts.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        parallel = spec.get("podManagementPolicy") == "Parallel"
        pods = self._pods(sts)
        for i in range(replicas):
            pod = pods.get(i)
            if pod is None:
                if self._ensure_claims(sts, i):
                    self._create_pod(sts, i, rev)
                if not parallel:
                    return
                continue
            if (terminating(pod) or not pod_ready(pod)) and not parallel:
                return
        for i in sorted((i for i in pods if i >= replicas), reverse=True):
            pod = pods[i]
            if not terminating(pod):
                if _retention(sts, "whenScaled") == "Delete":
                    for vct in spec.get("volumeClaimTemplates") or []:
                        claim = self.store.get(
                            "persistentvolumeclaims",
                            sts["metadata"]["namespace"],
                            f"{vct['metadata']['name']}-{sts['metadata']['name']}-{i}",
                        )
                        if claim is not None:
                            self._own_claim(claim, pod)
                self._delete_pod(sts, pod)
            if not parallel:
                return
        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        for i in reversed(range(replicas)):
            if i < partition:
                break
            pod = pods.get(i)
            if pod is None:
                return
            if pod["metadata"].get("labels", {}).get("controller-revision-hash") != rev:
                if not terminating(pod):
                    self._delete_pod(sts, pod)
                return
            if terminating(pod) or not pod_ready(pod):
                return

    def _ensure_claims(self, sts: dict, ordinal: int) -> bool:
        meta, spec = sts["metadata"], sts.get("spec") or {}
        ns, name = meta["namespace"], meta["name"]
        ok = True
        for vct in spec.get("volumeClaimTemplates") or []:
            claim = vct["metadata"]["name"]
            pvc_name = f"{claim}-{name}-{ordinal}"
            existing = self.store.get("persistentvolumeclaims", ns, pvc_name)
            if existing is not None:
                if terminating(existing):
                    ok = False
                else:
                    self._own_claim(existing, sts if _retention(sts, "whenDeleted") == "Delete" else None)
                continue
            labels = dict((vct.get("metadata") or {}).get("labels") or {})
            labels.update(((spec.get("selector") or {}).get("matchLabels")) or {})
            pvc_meta = {"name": pvc_name, "namespace": ns, "labels": labels}
            if _retention(sts, "whenDeleted") == "Delete":
                pvc_meta["ownerReferences"] = [_owner_ref(sts)]
            if (vct.get("metadata") or {}).get("annotations"):
                pvc_meta["annotations"] = dict(vct["metadata"]["annotations"])
            pvc = {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": pvc_meta,
                "spec": copy.deepcopy(vct.get("spec") or {}),
            }
            try:
                self.cluster.create_object("persistentvolumeclaims", pvc)
            except errors.ApiError as e:
                self._failed_create(
                    sts, f"create Claim {pvc_name} for Pod {name}-{ordinal} in StatefulSet {name}", e
                )
                ok = False
                continue
            self.cluster.record_event(
                sts,
                "SuccessfulCreate",
                f"create Claim {pvc_name} Pod {name}-{ordinal} in StatefulSet {name} success",
                component="statefulset-controller",
            )
        return ok

    def _create_pod(self, sts: dict, ordinal: int, rev: str) -> None:
        meta, spec = sts["metadata"], sts.get("spec") or {}
        ns, name = meta["namespace"], meta["name"]
        pod_name = f"{name}-{ordinal}"
        tpl = copy.deepcopy(spec.get("template") or {})
        tmeta = tpl.get("metadata") or {}
        labels = dict(tmeta.get("labels") or {})
        labels.update(
            {
                "controller-revision-hash": rev,
                "statefulset.kubernetes.io/pod-name": pod_name,
                "apps.kubernetes.io/pod-index": str(ordinal),
            }
        )
        pod_meta = {
            "name": pod_name,
            "generateName": f"{name}-",
            "namespace": ns,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "name": name,
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        }
        if tmeta.get("annotations"):
            pod_meta["annotations"] = dict(tmeta["annotations"])
        pspec = tpl.get("spec") or {}
        pspec["hostname"] = pod_name
        if spec.get("serviceName"):
            pspec["subdomain"] = spec["serviceName"]
        volumes = list(pspec.get("volumes") or [])
        for vct in spec.get("volumeClaimTemplates") or []:
            claim = vct["metadata"]["name"]
            vol = {"name": claim, "persistentVolumeClaim": {"claimName": f"{claim}-{name}-{ordinal}"}}
            volumes = [v for v in volumes if v.get("name") != claim] + [vol]
        if volumes:
            pspec["volumes"] = volumes
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pspec}
        if self.store.get("pods", ns, pod_name) is not None:
            return  # an unowned pod of that name: wait for it to go
        try:
            self.cluster.create_object("pods", pod)
        except errors.ApiError as e:
            self._failed_create(sts, f"create Pod {pod_name} in StatefulSet {name}", e)
            return
        self.cluster.record_event(
            sts,
            "SuccessfulCreate",
            f"create Pod {pod_name} in StatefulSet {name} successful",
            component="statefulset-controller",
        )

    def _failed_create(self, sts: dict, what: str, error: errors.ApiError) -> None:
        """The API refused a pod or claim (Pod Security, quota, LimitRange): a Warning, retried later."""
        self.cluster.record_event(
            sts,
            "FailedCreate",
            f"{what} failed error: {error.status['message']}",
            type_="Warning",
            component="statefulset-controller",
        )

    def _own_claim(self, claim: dict, owner: dict | None) -> None:
        """persistentVolumeClaimRetentionPolicy: a claim to delete with its owner gets an
        ownerReference to it, either the StatefulSet or (scaled down) its condemned pod alone."""
        if owner is None:
            return
        refs = claim["metadata"].get("ownerReferences") or []
        if any(r.get("uid") == owner["metadata"]["uid"] for r in refs):
            return
        if owner.get("kind") == "Pod":
            refs = [r for r in refs if r.get("kind") != "StatefulSet"]
        claim["metadata"]["ownerReferences"] = [*refs, _owner_ref(owner)]
        self.store.update("persistentvolumeclaims", claim)

    def _delete_pod(self, sts: dict, pod: dict) -> None:
        pm = pod["metadata"]
        self.cluster.delete_object("pods", pm["namespace"], pm["name"])
        self.cluster.record_event(
            sts,
            "SuccessfulDelete",
            f"delete Pod {pm['name']} in StatefulSet {sts['metadata']['name']} successful",
            component="statefulset-controller",
        )

    def _status(self, sts: dict, rev: str) -> None:
        meta, spec = sts["metadata"], sts.get("spec") or {}
        fresh = self.store.get(KEY, meta["namespace"], meta["name"])
        if fresh is None or fresh["metadata"]["uid"] != meta["uid"]:
            return
        old = fresh.get("status") or {}
        current_rev = old.get("currentRevision") or rev
        replicas = ready = current = updated = 0
        for pod in self._pods(fresh).values():
            replicas += 1
            if pod_ready(pod):
                ready += 1
            if not terminating(pod):
                h = pod["metadata"].get("labels", {}).get("controller-revision-hash")
                current += h == current_rev
                updated += h == rev
        strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
        if strategy == "RollingUpdate" and updated == replicas and ready == replicas:
            current, current_rev = updated, rev
        status = {
            "observedGeneration": fresh["metadata"].get("generation", 1),
            "replicas": replicas,
            "availableReplicas": ready,
            "currentRevision": current_rev,
            "updateRevision": rev,
            "collisionCount": 0,
        }
        for k, v in (("readyReplicas", ready), ("currentReplicas", current), ("updatedReplicas", updated)):
            if v:
                status[k] = v
        if status != old:
            self.store.patch_status(KEY, meta["namespace"], meta["name"], status)
