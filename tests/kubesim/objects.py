"""Per-kind defaults, initial status and validation, as a real API server applies them."""

from __future__ import annotations

import base64
import copy
import ipaddress
import itertools
import re

from . import errors
from .resources import Resource

SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

MSG_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
MSG_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
MSG_1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
MSG_LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
    "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


_cluster_ips = (str(ipaddress.IPv4Address("10.96.0.10") + i) for i in itertools.count(1))

# ------------------------------------------------------------------ strict field validation

_OPAQUE = {
    "meta.Time",
    "meta.MicroTime",
    "resource.Quantity",
    "intstr.IntOrString",
    "runtime.RawExtension",
    "meta.FieldsV1",
    "meta.Duration",
}


def _fields_of(msg: str) -> dict[str, str]:
    """JSON field name -> type of a message, with inline (embedded) structs flattened."""
    from .gateway_schema import MESSAGES as JSON_ONLY
    from .protobuf import INLINE
    from .protobuf_schema import MESSAGES

    out = {}
    for name, typ in (MESSAGES.get(msg) or JSON_ONLY.get(msg, {})).values():
        if name in INLINE and typ in MESSAGES:
            out.update(_fields_of(typ))
        else:
            out[name] = typ
    if "metadata" in out:
        out.setdefault("apiVersion", "s")
        out.setdefault("kind", "s")
    return out


def _walk_unknown(msg: str, value, path: str, out: list[str]) -> None:
    if msg in _OPAQUE or not isinstance(value, dict):
        return
    fields = _fields_of(msg)
    if not fields:
        return
    for k, v in value.items():
        p = f"{path}.{k}" if path else k
        typ = fields.get(k)
        if typ is None:
            out.append(p)
            continue
        if typ.startswith("map:"):
            if isinstance(v, dict) and "." in typ:
                for mk, mv in v.items():
                    _walk_unknown(typ[4:], mv, f"{p}[{mk}]", out)
        elif typ.endswith("*"):
            if isinstance(v, list) and "." in typ:
                for i, item in enumerate(v):
                    _walk_unknown(typ[:-1], item, f"{p}[{i}]", out)
        elif "." in typ:
            _walk_unknown(typ, v, p, out)


def unknown_fields(res: Resource, obj: dict) -> list[str]:
    """Field paths a strict decoder would reject (checked against the API's own field tables)."""
    if res.proto is None:
        return []
    out: list[str] = []
    _walk_unknown(res.proto, obj, "", out)
    return out


# ------------------------------------------------------------------ defaults


def _image_pull_policy(image: str) -> str:
    last = (image or "").rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def default_pod_spec(spec: dict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for field in ("containers", "initContainers"):
        for c in spec.get(field) or []:
            if not isinstance(c, dict):
                continue
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("imagePullPolicy", _image_pull_policy(c.get("image", "")))
            c.setdefault("resources", {})
            for p in c.get("ports") or []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")
    for v in spec.get("volumes") or []:
        if not isinstance(v, dict):
            continue
        for src in ("configMap", "secret"):
            if isinstance(v.get(src), dict):
                v[src].setdefault("defaultMode", 420)
        if isinstance(v.get("projected"), dict):
            v["projected"].setdefault("defaultMode", 420)


def default_pvc_spec(spec: dict) -> None:
    spec.setdefault("volumeMode", "Filesystem")


def apply_defaults(key: str, obj: dict) -> None:
    """The apiserver's defaulting of an object about to be written."""
    spec = obj.get("spec")
    if key in _SPEC_DEFAULTS and isinstance(spec, dict):
        _SPEC_DEFAULTS[key](spec)
    elif key in _OBJECT_DEFAULTS:
        _OBJECT_DEFAULTS[key](obj)


def _default_pod(spec: dict) -> None:
    default_pod_spec(spec)
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)


def _default_workload(spec: dict) -> None:
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    tpl = spec.get("template")
    if isinstance(tpl, dict) and isinstance(tpl.get("spec"), dict):
        default_pod_spec(tpl["spec"])


def _default_statefulset(spec: dict) -> None:
    _default_workload(spec)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    us = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
    if isinstance(us, dict):
        us.setdefault("type", "RollingUpdate")
        if us["type"] == "RollingUpdate":
            ru = us.setdefault("rollingUpdate", {})
            if isinstance(ru, dict):
                ru.setdefault("partition", 0)
    pol = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
    if isinstance(pol, dict):
        pol.setdefault("whenDeleted", "Retain")
        pol.setdefault("whenScaled", "Retain")
    for vct in spec.get("volumeClaimTemplates") or []:
        if isinstance(vct, dict):
            vct.setdefault("apiVersion", "v1")
            vct.setdefault("kind", "PersistentVolumeClaim")
            if isinstance(vct.get("spec"), dict):
                default_pvc_spec(vct["spec"])
            vct.setdefault("status", {"phase": "Pending"})


def _default_deployment(spec: dict) -> None:
    _default_workload(spec)
    spec.setdefault("progressDeadlineSeconds", 600)
    st = spec.setdefault("strategy", {"type": "RollingUpdate"})
    if isinstance(st, dict) and st.get("type", "RollingUpdate") == "RollingUpdate":
        st.setdefault("type", "RollingUpdate")
        st.setdefault("rollingUpdate", {"maxUnavailable": "25%", "maxSurge": "25%"})


def _default_service(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        if not spec.get("clusterIP"):
            spec["clusterIP"] = next(_cluster_ips)
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    for p in spec.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
            if "port" in p:
                p.setdefault("targetPort", p["port"])
    obj.setdefault("status", {"loadBalancer": {}})


def _default_secret(obj: dict) -> None:
    obj.setdefault("type", "Opaque")
    sd = obj.pop("stringData", None)
    if isinstance(sd, dict):
        data = obj.setdefault("data", {})
        for k, v in sd.items():
            data[k] = base64.b64encode(str(v).encode()).decode()


def _default_namespace(obj: dict) -> None:
    name = obj["metadata"].get("name", "")
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])


def _batch():
    from . import batch

    return batch


_SPEC_DEFAULTS = {
    "jobs.batch": lambda spec: _batch().default_job_spec(spec),
    "cronjobs.batch": lambda spec: _batch().default_cronjob_spec(spec),
    "pods": _default_pod,
    "statefulsets.apps": _default_statefulset,
    "deployments.apps": _default_deployment,
    "persistentvolumeclaims": default_pvc_spec,
}


def _default_storage_class(obj: dict) -> None:
    obj.setdefault("reclaimPolicy", "Delete")
    obj.setdefault("volumeBindingMode", "Immediate")


_OBJECT_DEFAULTS = {
    "storageclasses.storage.k8s.io": _default_storage_class,
    "services": _default_service,
    "secrets": _default_secret,
    "namespaces": _default_namespace,
}


def initial_status(key: str, obj: dict) -> None:
    """What a create does to .status (users cannot set status on create for these)."""
    if key == "pods":
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    elif key == "persistentvolumeclaims":
        obj["status"] = {"phase": "Pending"}
    elif key == "namespaces":
        obj["status"] = {"phase": "Active"}
    elif key in ("statefulsets.apps", "deployments.apps"):
        obj["status"] = {"replicas": 0, "availableReplicas": 0} if key == "statefulsets.apps" else {}
    elif key == "ingresses.networking.k8s.io":
        obj["status"] = {"loadBalancer": {}}


# ------------------------------------------------------------------ validation


def _name_causes(key: str, res: Resource, name) -> list[dict]:
    if not name:
        return [errors.field_required("metadata.name", "name or generateName is required")]
    rule = res.name_rule
    if rule == "path":
        for bad in ("/", "%"):
            if bad in name:
                return [errors.field_invalid("metadata.name", name, f"may not contain '{bad}'")]
        if name in (".", ".."):
            return [errors.field_invalid("metadata.name", name, f"may not be '{name}'")]
        return []
    pattern, msg, limit = {
        "subdomain": (SUBDOMAIN, MSG_SUBDOMAIN, 253),
        "label": (LABEL, MSG_LABEL, 63),
        "dns1035": (DNS1035, MSG_1035, 63),
    }[rule]
    out = []
    if len(name) > limit:
        out.append(errors.field_invalid("metadata.name", name, f"must be no more than {limit} characters"))
    if not pattern.match(name):
        out.append(errors.field_invalid("metadata.name", name, msg))
    return out


def _labels_causes(labels, field="metadata.labels") -> list[dict]:
    out: list[dict] = []
    if labels is None:
        return out
    if not isinstance(labels, dict):
        return [errors.field_invalid(field, str(labels), "must be a map of strings")]
    for k, v in labels.items():
        if not isinstance(v, str):
            out.append(errors.field_invalid(field, str(v), "label values must be strings"))
            continue
        name = k.rsplit("/", 1)[-1]
        if not k or len(name) > 63 or not QUALIFIED.match(name):
            out.append(
                errors.field_invalid(
                    field,
                    k,
                    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                )
            )
        if len(v) > 63:
            out.append(errors.field_invalid(field, v, "must be no more than 63 characters"))
        elif v and not QUALIFIED.match(v):
            out.append(errors.field_invalid(field, v, LABEL_VALUE_MSG))
        elif not LABEL_VALUE.match(v):
            out.append(errors.field_invalid(field, v, MSG_LABEL_VALUE))
    return out


def _containers_causes(spec, prefix) -> list[dict]:
    out = []
    if not isinstance(spec, dict):
        return [errors.field_required(prefix, "")]
    containers = spec.get("containers")
    if not containers:
        return [errors.field_required(f"{prefix}.containers", "")]
    seen = set()
    for i, c in enumerate(containers):
        p = f"{prefix}.containers[{i}]"
        if not isinstance(c, dict):
            out.append(errors.field_invalid(p, str(c), "must be an object"))
            continue
        if not c.get("name"):
            out.append(errors.field_required(f"{p}.name", ""))
        elif not LABEL.match(c["name"]):
            out.append(errors.field_invalid(f"{p}.name", c["name"], MSG_LABEL))
        elif c["name"] in seen:
            out.append(
                {
                    "reason": "FieldValueDuplicate",
                    "message": f'Duplicate value: "{c["name"]}"',
                    "field": f"{p}.name",
                }
            )
        seen.add(c.get("name"))
        if not c.get("image"):
            out.append(errors.field_required(f"{p}.image", ""))
        out += _ports_causes(c, p)
    policy = spec.get("restartPolicy", "Always")
    if policy not in RESTART_POLICIES:
        out.append(errors.field_unsupported(f"{prefix}.restartPolicy", policy, list(RESTART_POLICIES)))
    return out


RESTART_POLICIES = ("Always", "OnFailure", "Never")
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex "
    "used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def _ports_causes(container: dict, prefix: str) -> list[dict]:
    """containerPort and numeric probe ports: 1-65535, as the apiserver checks them."""
    out = []
    for i, port in enumerate(container.get("ports") or []):
        number = port.get("containerPort") if isinstance(port, dict) else None
        if not isinstance(number, int) or not 0 < number < 65536:
            out.append(errors.field_invalid(f"{prefix}.ports[{i}].containerPort", number, PORT_MSG))
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        handler = container.get(probe) if isinstance(container.get(probe), dict) else {}
        for kind in ("httpGet", "tcpSocket", "grpc"):
            number = (handler.get(kind) or {}).get("port") if isinstance(handler.get(kind), dict) else None
            if isinstance(number, int) and not 0 < number < 65536:
                out.append(errors.field_invalid(f"{prefix}.{probe}.{kind}.port", number, PORT_MSG))
    return out


PORT_MSG = "must be between 1 and 65535, inclusive"


def _strip_images(spec: dict) -> dict:
    s = copy.deepcopy(spec)
    for field in ("containers", "initContainers"):
        for c in s.get(field) or []:
            if isinstance(c, dict):
                c.pop("image", None)
    for f in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
        s.pop(f, None)
    return s


POD_UPDATE_MSG = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions "
    "to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
    "previously negative)"
)
STS_UPDATE_MSG = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)
STS_MUTABLE = {
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
    "revisionHistoryLimit",
}


def validate(key: str, res: Resource, obj: dict, old: dict | None) -> None:
    """The apiserver's validation of a create (old None) or update; raises 422 Invalid with causes."""
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    causes = [] if old is not None else _name_causes(key, res, name)
    causes += _labels_causes(meta.get("labels"))
    check = _VALIDATIONS.get(key)
    if check is not None:
        causes += check(key, obj, old)
    if causes:
        raise errors.invalid(res.kind, res.group, name or "", causes)


def _pod_causes(key: str, obj: dict, old: dict | None) -> list:
    spec = obj.get("spec")
    causes = _containers_causes(spec, "spec")
    if (
        old is not None
        and isinstance(spec, dict)
        and _strip_images(spec) != _strip_images(old.get("spec") or {})
    ):
        causes.append(errors.field_forbidden("spec", POD_UPDATE_MSG))
    return causes


def _workload_causes(key: str, obj: dict, old: dict | None) -> list:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [errors.field_required("spec", "")]
    tpl = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    causes = _selector_causes(key, spec.get("selector"), (tpl.get("metadata") or {}).get("labels") or {})
    causes += _containers_causes(tpl.get("spec"), "spec.template.spec")
    policy = (
        (tpl.get("spec") or {}).get("restartPolicy", "Always")
        if isinstance(tpl.get("spec"), dict)
        else "Always"
    )
    if policy != "Always" and policy in RESTART_POLICIES:  # Deployments and StatefulSets restart, always
        causes.append(errors.field_unsupported("spec.template.spec.restartPolicy", policy, ["Always"]))
    r = spec.get("replicas")
    if not isinstance(r, int) or r < 0:
        causes.append(errors.field_invalid("spec.replicas", r, "must be greater than or equal to 0"))
    if key == "statefulsets.apps":
        causes += _statefulset_causes(spec, old)
    elif old is not None and (old.get("spec") or {}).get("selector") != spec.get("selector"):
        causes.append(errors.field_invalid("spec.selector", str(spec.get("selector")), "field is immutable"))
    return causes


def _selector_causes(key: str, sel, tpl_labels: dict) -> list:
    if not sel:
        return [errors.field_required("spec.selector", "")]
    from .selectors import match_labels, selector_from_label_selector

    reqs = selector_from_label_selector(sel)
    if not reqs:
        kind = "deployment" if key.startswith("deploy") else "statefulset"
        return [errors.field_invalid("spec.selector", "{}", f"empty selector is invalid for {kind}")]
    if not match_labels(reqs, tpl_labels):
        lbl = "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in tpl_labels.items()) + "}"
        return [
            {
                "reason": "FieldValueInvalid",
                "field": "spec.template.metadata.labels",
                "message": f"Invalid value: {lbl}: `selector` does not match template `labels`",
            }
        ]
    return []


def _statefulset_causes(spec: dict, old: dict | None) -> list:
    causes = []
    pol = spec.get("podManagementPolicy")
    if pol not in ("OrderedReady", "Parallel"):
        causes.append(errors.field_unsupported("spec.podManagementPolicy", pol, ["OrderedReady", "Parallel"]))
    ut = (spec.get("updateStrategy") or {}).get("type")
    if ut not in ("RollingUpdate", "OnDelete"):
        causes.append(errors.field_unsupported("spec.updateStrategy.type", ut, ["OnDelete", "RollingUpdate"]))
    for i, vct in enumerate(spec.get("volumeClaimTemplates") or []):
        if not ((vct or {}).get("metadata") or {}).get("name"):
            causes.append(
                errors.field_required(
                    f"spec.volumeClaimTemplates[{i}].metadata.name", "name or generateName is required"
                )
            )
    if old is not None:
        o = {k: v for k, v in (old.get("spec") or {}).items() if k not in STS_MUTABLE}
        n = {k: v for k, v in spec.items() if k not in STS_MUTABLE}
        if o != n:
            causes.append(errors.field_forbidden("spec", STS_UPDATE_MSG))
    return causes


def _claim_causes(key: str, obj: dict, old: dict | None) -> list:
    spec, causes = obj.get("spec"), []
    if not isinstance(spec, dict) or not spec.get("accessModes"):
        causes.append(errors.field_required("spec.accessModes", "at least 1 access mode is required"))
    if isinstance(spec, dict) and not ((spec.get("resources") or {}).get("requests") or {}).get("storage"):
        causes.append(errors.field_required("spec.resources[storage]", ""))
    if old is not None and isinstance(spec, dict):
        o = dict(old.get("spec") or {})
        n = dict(spec)
        for d in (o, n):
            d.pop("resources", None)
            d.pop("volumeAttributesClassName", None)
        if o != n:
            causes.append(
                errors.field_forbidden(
                    "spec",
                    "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
                )
            )
    return causes


def _role_binding_causes(key: str, obj: dict, old: dict | None) -> list:
    if not obj.get("roleRef"):
        return [errors.field_required("roleRef.name", "")]
    if old is not None and old.get("roleRef") != obj.get("roleRef"):
        return [errors.field_invalid("roleRef", str(obj.get("roleRef")), "cannot change roleRef")]
    return []


def _immutable_data_causes(key: str, obj: dict, old: dict | None) -> list:
    if old is None or not old.get("immutable"):
        return []
    return [
        errors.field_forbidden(f, "field is immutable when `immutable` is set")
        for f in ("data", "binaryData", "stringData")
        if old.get(f) != obj.get(f)
    ]


_VALIDATIONS = {
    "jobs.batch": lambda key, obj, old: _batch().job_causes(key, obj, old),
    "cronjobs.batch": lambda key, obj, old: _batch().cronjob_causes(key, obj, old),
    "pods": _pod_causes,
    "statefulsets.apps": _workload_causes,
    "deployments.apps": _workload_causes,
    "persistentvolumeclaims": _claim_causes,
    "rolebindings.rbac.authorization.k8s.io": _role_binding_causes,
    "clusterrolebindings.rbac.authorization.k8s.io": _role_binding_causes,
    "configmaps": _immutable_data_causes,
    "secrets": _immutable_data_causes,
}
