"""meta.k8s.io/v1 Table responses (what `kubectl get` without -o asks for)."""

from __future__ import annotations

import datetime
from typing import Any

from .store import parse_time


def human_duration(seconds: int) -> str:
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def age(ts: str | None) -> str:
    t = parse_time(ts)
    if t is None:
        return "<unknown>"
    return human_duration(int((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()))


def _col(name, typ="string", fmt="", priority=0, desc=""):
    return {"name": name, "type": typ, "format": fmt, "description": desc or name, "priority": priority}


NAME = _col("Name", fmt="name", desc="Name must be unique within a namespace.")
AGE = _col(
    "Age", desc="CreationTimestamp is a timestamp representing the server time when this object was created."
)


def _pod_row(o):
    st = o.get("status") or {}
    spec = o.get("spec") or {}
    cs = st.get("containerStatuses") or []
    total = len(spec.get("containers") or [])
    ready = sum(1 for c in cs if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in cs)
    reason = st.get("reason") or st.get("phase") or "Pending"
    for c in cs:
        state = c.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated") and st.get("phase") != "Succeeded":
            t = state["terminated"]
            reason = t.get("reason") or (
                f"Signal:{t['signal']}" if t.get("signal") else f"ExitCode:{t.get('exitCode')}"
            )
    if o["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return [
        o["metadata"]["name"],
        f"{ready}/{total}",
        reason,
        restarts,
        age(o["metadata"].get("creationTimestamp")),
        st.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        "<none>",
        "<none>",
    ]


def _containers(tpl):
    cs = ((tpl or {}).get("spec") or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _sts_row(o):
    spec, st = o.get("spec") or {}, o.get("status") or {}
    names, images = _containers(spec.get("template"))
    return [
        o["metadata"]["name"],
        f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        age(o["metadata"].get("creationTimestamp")),
        names,
        images,
    ]


def _deploy_row(o):
    spec, st = o.get("spec") or {}, o.get("status") or {}
    names, images = _containers(spec.get("template"))
    from .selectors import label_selector_string

    return [
        o["metadata"]["name"],
        f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        st.get("updatedReplicas", 0),
        st.get("availableReplicas", 0),
        age(o["metadata"].get("creationTimestamp")),
        names,
        images,
        label_selector_string(spec.get("selector")),
    ]


def _pvc_row(o):
    spec, st = o.get("spec") or {}, o.get("status") or {}
    phase = st.get("phase", "Pending")
    if o["metadata"].get("deletionTimestamp"):
        phase = "Terminating"
    modes = ",".join(
        {
            "ReadWriteOnce": "RWO",
            "ReadOnlyMany": "ROX",
            "ReadWriteMany": "RWX",
            "ReadWriteOncePod": "RWOP",
        }.get(m, m)
        for m in st.get("accessModes") or []
    )
    return [
        o["metadata"]["name"],
        phase,
        spec.get("volumeName", ""),
        (st.get("capacity") or {}).get("storage", ""),
        modes,
        spec.get("storageClassName") or "<unset>",
        spec.get("volumeAttributesClassName") or "<unset>",
        age(o["metadata"].get("creationTimestamp")),
        spec.get("volumeMode", "Filesystem"),
    ]


def _svc_row(o):
    spec = o.get("spec") or {}
    ports = (
        ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or []) or "<none>"
    )
    sel = ",".join(f"{k}={v}" for k, v in (spec.get("selector") or {}).items()) or "<none>"
    return [
        o["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP", "<none>"),
        ",".join(spec.get("externalIPs") or []) or "<none>",
        ports,
        age(o["metadata"].get("creationTimestamp")),
        sel,
    ]


def _condition(o, type_: str) -> str:
    for c in (o.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c.get("status", "Unknown")
    return "Unknown"


def _event_row(o):
    """As the apiserver prints an Event (wide: the priority-1 cells are always there)."""
    inv, source = o.get("involvedObject") or {}, o.get("source") or {}
    first = age(o.get("firstTimestamp") or o.get("eventTime") or o["metadata"].get("creationTimestamp"))
    last = age(o["lastTimestamp"]) if o.get("lastTimestamp") else first
    kind = (inv.get("kind") or "").lower()
    target = f"{kind}/{inv['name']}" if inv.get("name") else kind
    component = source.get("component") or o.get("reportingComponent") or ""
    host = source.get("host") or o.get("reportingInstance") or ""
    return [
        last,
        o.get("type", ""),
        o.get("reason", ""),
        target,
        inv.get("fieldPath", ""),
        f"{component}, {host}" if host else component,
        (o.get("message") or "").strip(),
        first,
        int(o.get("count") or 1),
        o["metadata"]["name"],
    ]


def _batch_row(kind: str):
    def row(o):
        from . import batch

        return batch.job_row(o) if kind == "job" else batch.cronjob_row(o)

    return row


def _binding_row(o):
    ref = o.get("roleRef") or {}
    return [
        o["metadata"]["name"],
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        age(o["metadata"].get("creationTimestamp")),
    ]


def _quota_row(o):
    """`pods: 1/2, requests.memory: 0/1Gi` (REQUEST) and the limits.* ones (LIMIT), as kubectl prints."""
    hard = (o.get("status") or {}).get("hard") or (o.get("spec") or {}).get("hard") or {}
    used = (o.get("status") or {}).get("used") or {}
    cells: dict[str, list[str]] = {"request": [], "limit": []}
    for r in sorted(hard):
        cells["limit" if r.startswith("limits.") else "request"].append(f"{r}: {used.get(r, '0')}/{hard[r]}")
    return [
        o["metadata"]["name"],
        age(o["metadata"].get("creationTimestamp")),
        ", ".join(cells["request"]),
        ", ".join(cells["limit"]),
    ]


def _role_row(o):
    return [o["metadata"]["name"], o["metadata"].get("creationTimestamp")]


TABLES = {
    "jobs.batch": (
        [NAME, _col("Status"), _col("Completions"), _col("Duration"), AGE],
        _batch_row("job"),
    ),
    "cronjobs.batch": (
        [
            NAME,
            _col("Schedule"),
            _col("Timezone"),
            _col("Suspend", "boolean"),
            _col("Active", "integer"),
            _col("Last Schedule", "date"),
            AGE,
        ],
        _batch_row("cronjob"),
    ),
    "pods": (
        [
            NAME,
            _col("Ready"),
            _col("Status"),
            _col("Restarts", "string"),
            AGE,
            _col("IP", priority=1),
            _col("Node", priority=1),
            _col("Nominated Node", priority=1),
            _col("Readiness Gates", priority=1),
        ],
        _pod_row,
    ),
    "statefulsets.apps": (
        [NAME, _col("Ready"), AGE, _col("Containers", priority=1), _col("Images", priority=1)],
        _sts_row,
    ),
    "deployments.apps": (
        [
            NAME,
            _col("Ready"),
            _col("Up-to-date", "integer"),
            _col("Available", "integer"),
            AGE,
            _col("Containers", priority=1),
            _col("Images", priority=1),
            _col("Selector", priority=1),
        ],
        _deploy_row,
    ),
    "persistentvolumeclaims": (
        [
            NAME,
            _col("Status"),
            _col("Volume"),
            _col("Capacity"),
            _col("Access Modes"),
            _col("StorageClass"),
            _col("VolumeAttributesClass"),
            AGE,
            _col("VolumeMode", priority=1),
        ],
        _pvc_row,
    ),
    "services": (
        [
            NAME,
            _col("Type"),
            _col("Cluster-IP"),
            _col("External-IP"),
            _col("Port(s)"),
            AGE,
            _col("Selector", priority=1),
        ],
        _svc_row,
    ),
    "configmaps": (
        [NAME, _col("Data", "integer"), AGE],
        lambda o: [
            o["metadata"]["name"],
            len(o.get("data") or {}) + len(o.get("binaryData") or {}),
            age(o["metadata"].get("creationTimestamp")),
        ],
    ),
    "secrets": (
        [NAME, _col("Type"), _col("Data", "integer"), AGE],
        lambda o: [
            o["metadata"]["name"],
            o.get("type", "Opaque"),
            len(o.get("data") or {}),
            age(o["metadata"].get("creationTimestamp")),
        ],
    ),
    "serviceaccounts": (
        [NAME, _col("Secrets", "integer"), AGE],
        lambda o: [
            o["metadata"]["name"],
            len(o.get("secrets") or []),
            age(o["metadata"].get("creationTimestamp")),
        ],
    ),
    "namespaces": (
        [NAME, _col("Status"), AGE],
        lambda o: [
            o["metadata"]["name"],
            (o.get("status") or {}).get("phase", "Active"),
            age(o["metadata"].get("creationTimestamp")),
        ],
    ),
    "events": (
        [
            _col("Last Seen"),
            _col("Type"),
            _col("Reason"),
            _col("Object"),
            _col("Subobject", priority=1),
            _col("Source", priority=1),
            _col("Message"),
            _col("First Seen", priority=1),
            _col("Count", priority=1),
            _col("Name", priority=1),
        ],
        _event_row,
    ),
    # networking.k8s.io (as the apiserver prints them) and the Gateway API (the CRDs' printer columns)
    "ingresses.networking.k8s.io": (
        [NAME, _col("Class"), _col("Hosts"), _col("Address"), _col("Ports"), AGE],
        lambda o: [
            o["metadata"]["name"],
            (o.get("spec") or {}).get("ingressClassName") or "<none>",
            ",".join(r.get("host") or "*" for r in (o.get("spec") or {}).get("rules") or []) or "*",
            ",".join(
                i.get("ip") or i.get("hostname") or ""
                for i in ((o.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            ),
            "80, 443" if (o.get("spec") or {}).get("tls") else "80",
            age(o["metadata"].get("creationTimestamp")),
        ],
    ),
    "ingressclasses.networking.k8s.io": (
        [NAME, _col("Controller"), _col("Parameters"), AGE],
        lambda o: [
            o["metadata"]["name"],
            (o.get("spec") or {}).get("controller", ""),
            "<none>",
            age(o["metadata"].get("creationTimestamp")),
        ],
    ),
    "gatewayclasses.gateway.networking.k8s.io": (
        [NAME, _col("Controller"), _col("Accepted"), AGE],
        lambda o: [
            o["metadata"]["name"],
            (o.get("spec") or {}).get("controllerName", ""),
            _condition(o, "Accepted"),
            age(o["metadata"].get("creationTimestamp")),
        ],
    ),
    "gateways.gateway.networking.k8s.io": (
        [NAME, _col("Class"), _col("Address"), _col("Programmed"), AGE],
        lambda o: [
            o["metadata"]["name"],
            (o.get("spec") or {}).get("gatewayClassName", ""),
            ",".join(a.get("value", "") for a in (o.get("status") or {}).get("addresses") or []),
            _condition(o, "Programmed"),
            age(o["metadata"].get("creationTimestamp")),
        ],
    ),
    "httproutes.gateway.networking.k8s.io": (
        [NAME, _col("Hostnames"), AGE],
        lambda o: [
            o["metadata"]["name"],
            str((o.get("spec") or {}).get("hostnames") or []).replace("'", '"'),
            age(o["metadata"].get("creationTimestamp")),
        ],
    ),
    "rolebindings.rbac.authorization.k8s.io": ([NAME, _col("Role"), AGE], _binding_row),
    "storageclasses.storage.k8s.io": (
        [
            NAME,
            _col("Provisioner"),
            _col("ReclaimPolicy"),
            _col("VolumeBindingMode"),
            _col("AllowVolumeExpansion", "boolean"),
            AGE,
        ],
        lambda o: [
            o["metadata"]["name"]
            + (
                " (default)"
                if (o["metadata"].get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class")
                == "true"
                else ""
            ),
            o.get("provisioner", ""),
            o.get("reclaimPolicy", "Delete"),
            o.get("volumeBindingMode", "Immediate"),
            bool(o.get("allowVolumeExpansion")),
            age(o["metadata"].get("creationTimestamp")),
        ],
    ),
    "clusterrolebindings.rbac.authorization.k8s.io": ([NAME, _col("Role"), AGE], _binding_row),
    "resourcequotas": ([NAME, AGE, _col("Request"), _col("Limit")], _quota_row),
    "clusterroles.rbac.authorization.k8s.io": ([NAME, _col("Created At", "date")], _role_row),
    "roles.rbac.authorization.k8s.io": ([NAME, _col("Created At", "date")], _role_row),
}


def table(
    key: str,
    objs: list[dict],
    include: str = "PartialObjectMetadata",
    list_rv: str | None = None,
    headers: bool = True,
) -> dict:
    cols, row = TABLES.get(
        key, ([NAME, AGE], lambda o: [o["metadata"]["name"], age(o["metadata"].get("creationTimestamp"))])
    )
    rows = []
    for o in objs:
        if include == "None":
            ref = None
        elif include == "Object":
            ref = o
        else:
            ref = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}
        r = {"cells": row(o), "object": ref}
        rows.append(r)
    t: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "rows": rows}
    if headers:
        t["columnDefinitions"] = cols
    else:
        t["columnDefinitions"] = None
    if list_rv is not None:
        t["metadata"]["resourceVersion"] = list_rv
    return t


def wants_table(accept: str) -> bool:
    for part in (accept or "").split(","):
        params = [p.strip() for p in part.split(";")]
        if "as=Table" in params and params[0] in ("application/json", "*/*"):
            return True
        if params[0] in ("application/json", "*/*", "application/yaml") and "as=Table" not in params:
            return False
    return False
