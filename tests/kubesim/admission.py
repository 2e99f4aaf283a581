"""Admission of creates (API half), in the apiserver's plugin order: LimitRanger (defaults, then
min/max), PodSecurity, ResourceQuota. Used for API requests and for what controllers create
(a StatefulSet's pods and claims), so a refusal there becomes a FailedCreate event.

Warnings (PodSecurity `warn`, workload templates) are collected per request in `WARNINGS` and
sent by the server as `Warning:` headers."""

from __future__ import annotations

import contextvars
from fractions import Fraction

from . import errors, podsecurity
from .controllers import Controller
from .quantity import QuantityError, binary, format_quantity, parse

WARNINGS: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("kubesim_warnings", default=None)
QUOTAS = "resourcequotas"
LIMITS = "limitranges"
COUNTED = {
    "pods": "pods",
    "persistentvolumeclaims": "persistentvolumeclaims",
    "configmaps": "configmaps",
    "secrets": "secrets",
    "services": "services",
}


def warn(message: str) -> None:
    found = WARNINGS.get()
    if found is not None and message not in found:
        found.append(message)


def admit_create(cluster, key: str, obj: dict) -> None:
    """Mutates (LimitRange defaults) and validates a new object; raises the apiserver's 403."""
    meta = obj.get("metadata") or {}
    ns_name = meta.get("namespace")
    namespace = cluster.store.get("namespaces", None, ns_name) if ns_name else None
    if key == "pods":
        _limit_range_pod(cluster, obj)
        refusal, warnings = podsecurity.check_pod(namespace, obj)
        if refusal:
            raise errors.forbidden("pods", "", meta.get("name", ""), refusal)
        for w in warnings:
            warn(w)
    elif key == "persistentvolumeclaims":
        _limit_range_claim(cluster, obj)
    elif key in podsecurity.TEMPLATE_KINDS and namespace is not None:
        for w in podsecurity.check_template(namespace, key, obj):
            warn(w)
    if ns_name:
        _quota(cluster, key, obj)


def admit_update(cluster, key: str, obj: dict, old: dict | None = None) -> None:
    """Updates of workloads are warned about as creates are; a namespace whose enforce level
    changes gets warnings naming the existing pods that violate it."""
    meta = obj.get("metadata") or {}
    if key == "namespaces":
        for w in podsecurity.existing_pod_warnings(old, obj, cluster.store.list("pods", meta.get("name"))):
            warn(w)
        return
    if key in podsecurity.TEMPLATE_KINDS and meta.get("namespace"):
        namespace = cluster.store.get("namespaces", None, meta["namespace"])
        for w in podsecurity.check_template(namespace, key, obj):
            warn(w)


# ---------------------------------------------------------------- LimitRanger
def _limit_items(cluster, namespace: str, kind: str) -> list[dict]:
    out: list[dict] = []
    for lr in cluster.store.list(LIMITS, namespace):
        out.extend(i for i in (lr.get("spec") or {}).get("limits") or [] if i.get("type") == kind)
    return out


def _limit_range_pod(cluster, pod: dict) -> None:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    items = _limit_items(cluster, meta.get("namespace", ""), "Container")
    if not items:
        return
    name = meta.get("name", "")
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        res = c.setdefault("resources", {})
        for item in items:
            for src, dst in (("default", "limits"), ("defaultRequest", "requests")):
                for r, v in (item.get(src) or {}).items():
                    res.setdefault(dst, {}).setdefault(r, v)
            # requests default to limits when only limits are known (as the apiserver's defaulting does)
            for r, v in (res.get("limits") or {}).items():
                res.setdefault("requests", {}).setdefault(r, v)
        for item in items:
            for r, v in (item.get("max") or {}).items():
                limit = (res.get("limits") or {}).get(r)
                if limit is None:
                    raise errors.forbidden(
                        "pods", "", name, f"maximum {r} usage per Container is {v}.  No limit is specified"
                    )
                if parse(limit) > parse(v):
                    raise errors.forbidden(
                        "pods", "", name, f"maximum {r} usage per Container is {v}, but limit is {limit}"
                    )
            for r, v in (item.get("min") or {}).items():
                request = (res.get("requests") or {}).get(r)
                if request is None:
                    raise errors.forbidden(
                        "pods", "", name, f"minimum {r} usage per Container is {v}.  No request is specified"
                    )
                if parse(request) < parse(v):
                    raise errors.forbidden(
                        "pods", "", name, f"minimum {r} usage per Container is {v}, but request is {request}"
                    )


def _limit_range_claim(cluster, pvc: dict) -> None:
    meta, spec = pvc.get("metadata") or {}, pvc.get("spec") or {}
    req = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    if req is None:
        return
    for item in _limit_items(cluster, meta.get("namespace", ""), "PersistentVolumeClaim"):
        mx = (item.get("max") or {}).get("storage")
        if mx is not None and parse(req) > parse(mx):
            raise errors.forbidden(
                "persistentvolumeclaims",
                "",
                meta.get("name", ""),
                f"maximum storage usage per PersistentVolumeClaim is {mx}, but request is {req}",
            )
        mn = (item.get("min") or {}).get("storage")
        if mn is not None and parse(req) < parse(mn):
            raise errors.forbidden(
                "persistentvolumeclaims",
                "",
                meta.get("name", ""),
                f"minimum storage usage per PersistentVolumeClaim is {mn}, but request is {req}",
            )


# ---------------------------------------------------------------- ResourceQuota
def _pod_terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") or bool(
        pod["metadata"].get("deletionTimestamp")
    )


def _container_sum(pod: dict, kind: str, resource: str) -> Fraction:
    """Effective pod request/limit: max(sum of containers, largest init container)."""
    spec = pod.get("spec") or {}
    total = Fraction(0)
    for c in spec.get("containers") or []:
        v = ((c.get("resources") or {}).get(kind) or {}).get(resource)
        if v is not None:
            total += parse(v)
    for c in spec.get("initContainers") or []:
        v = ((c.get("resources") or {}).get(kind) or {}).get(resource)
        if v is not None:
            total = max(total, parse(v))
    return total


def usage(key: str, obj: dict) -> dict[str, Fraction]:
    """What one object counts against a quota's resource names."""
    out: dict[str, Fraction] = {}
    res = key.split(".", 1)[0]
    group = key.split(".", 1)[1] if "." in key else ""
    out[f"count/{res}.{group}" if group else f"count/{res}"] = Fraction(1)
    if key in COUNTED:
        out[COUNTED[key]] = Fraction(1)
    if key == "pods":
        if _pod_terminal(obj):
            return {}
        for r in ("cpu", "memory", "ephemeral-storage"):
            req = _container_sum(obj, "requests", r)
            out[f"requests.{r}"] = req
            out[r] = req
            out[f"limits.{r}"] = _container_sum(obj, "limits", r)
    elif key == "persistentvolumeclaims":
        storage = ((obj.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
        out["requests.storage"] = parse(storage) if storage else Fraction(0)
        sc = (obj.get("spec") or {}).get("storageClassName")
        if sc:
            out[f"{sc}.storageclass.storage.k8s.io/requests.storage"] = out["requests.storage"]
            out[f"{sc}.storageclass.storage.k8s.io/persistentvolumeclaims"] = Fraction(1)
    return out


def used(cluster, namespace: str, hard: dict) -> dict[str, Fraction]:
    """Current usage in `namespace` of the resource names in `hard`."""
    from .resources import RESOURCES

    totals = {r: Fraction(0) for r in hard}
    for res in RESOURCES:
        if not res.namespaced or not res.store:
            continue
        for obj in cluster.store.list(res.key, namespace):
            for r, v in usage(res.key, obj).items():
                if r in totals:
                    totals[r] += v
    return totals


def _fmt(value: Fraction, hard_text: str) -> str:
    return format_quantity(value, binary(hard_text))


def _quota(cluster, key: str, obj: dict) -> None:
    meta = obj["metadata"]
    namespace = meta["namespace"]
    quotas = cluster.store.list(QUOTAS, namespace)
    if not quotas:
        return
    wanted = usage(key, obj)
    res, group = key.split(".", 1)[0], (key.split(".", 1)[1] if "." in key else "")
    for q in sorted(quotas, key=lambda q: q["metadata"]["name"]):
        hard = (q.get("spec") or {}).get("hard") or {}
        if not any(r in hard for r in wanted):
            continue
        if key == "pods":
            missing = _missing_limits(obj, hard)
            if missing:
                raise errors.forbidden(
                    res, group, meta.get("name", ""), f"failed quota: {q['metadata']['name']}: {missing}"
                )
        now = used(cluster, namespace, hard)
        over = []
        for r in sorted(r for r in wanted if r in hard):
            try:
                limit = parse(hard[r])
            except QuantityError:
                continue
            if wanted[r] > 0 and now[r] + wanted[r] > limit:
                over.append(r)
        if over:
            requested = ",".join(f"{r}={_fmt(wanted[r], hard[r])}" for r in over)
            in_use = ",".join(f"{r}={_fmt(now[r], hard[r])}" for r in over)
            limited = ",".join(f"{r}={hard[r]}" for r in over)
            raise errors.forbidden(
                res,
                group,
                meta.get("name", ""),
                f"exceeded quota: {q['metadata']['name']}, requested: {requested}, used: {in_use}, limited: {limited}",
            )


def _missing_limits(pod: dict, hard: dict) -> str:
    """`must specify limits.cpu for: c1,c2; requests.memory for: c1` when the quota tracks them."""
    parts = []
    containers = ((pod.get("spec") or {}).get("initContainers") or []) + (
        (pod.get("spec") or {}).get("containers") or []
    )
    for r in sorted(hard):
        kind, _, resource = r.partition(".")
        if kind not in ("requests", "limits") or resource not in ("cpu", "memory"):
            if r in ("cpu", "memory"):
                kind, resource = "requests", r
            else:
                continue
        lacking = [
            c["name"] for c in containers if resource not in ((c.get("resources") or {}).get(kind) or {})
        ]
        if lacking:
            parts.append(f"{r} for: {','.join(lacking)}")
    return f"must specify {'; '.join(parts)}" if parts else ""


class QuotaController(Controller):
    """Keeps every ResourceQuota's status.hard and status.used current (kubectl describe quota)."""

    def reconcile(self) -> None:
        for q in self.store.list(QUOTAS):
            hard = dict((q.get("spec") or {}).get("hard") or {})
            now = used(self.cluster, q["metadata"]["namespace"], hard)
            status = {"hard": hard, "used": {r: _fmt(v, hard[r]) for r, v in now.items()}}
            if (q.get("status") or {}) != status:
                self.store.patch_status(QUOTAS, q["metadata"]["namespace"], q["metadata"]["name"], status)
