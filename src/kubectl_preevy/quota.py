"""Quota headroom: what the rendered objects would add to each ResourceQuota of the namespace (as the quota
admission plugin counts it, LimitRange defaults applied), against what is left. Pure functions.
"""

import dataclasses
import fractions
import re
from collections.abc import Mapping, Sequence
from typing import Any

from kubectl_preevy import permissions

_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_SUFFIXES: dict[str, int | fractions.Fraction] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": fractions.Fraction(1, 10**9),
    "u": fractions.Fraction(1, 10**6),
    "m": fractions.Fraction(1, 1000),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
COMPUTE = ("cpu", "memory", "ephemeral-storage")
STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
# object counts with a legacy quota name (besides count/<resource>[.<group>])
LEGACY_COUNTS = {
    "pods",
    "services",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "replicationcontrollers",
}


def parse_quantity(text: object) -> fractions.Fraction:
    """A Kubernetes quantity (`100m`, `256Mi`, `1.5Gi`, `2e3`, `4`) as an exact number."""
    match = _QUANTITY.match(str(text).strip())
    if not match:
        raise ValueError(f"not a quantity: {text!r}")
    number, suffix = fractions.Fraction(match.group(1)), match.group(2)
    if not suffix:
        return number
    if suffix[0] in "eE":
        return number * fractions.Fraction(10) ** int(suffix[1:])
    return number * _SUFFIXES[suffix]


def format_quantity(value: fractions.Fraction, resource: str) -> str:
    """Readable: memory and storage in binary units, cpu in millicores, counts as integers."""
    if resource.endswith(("memory", "storage")):
        for suffix in ("Ti", "Gi", "Mi", "Ki"):
            unit = _SUFFIXES[suffix]
            if value >= unit and (value / unit).denominator == 1:
                return f"{int(value / unit)}{suffix}"
        return str(int(value)) if value.denominator == 1 else f"{float(value):g}"
    if resource.endswith("cpu") and value.denominator != 1:
        return f"{int(value * 1000)}m"
    return str(int(value)) if value.denominator == 1 else f"{float(value):g}"


@dataclasses.dataclass(frozen=True)
class Shortfall:
    """A ResourceQuota the environment would exceed."""

    quota: str
    resource: str
    detail: str  # e.g. `requests.memory: needs 256Mi, 128Mi of 512Mi left`


def container_resources(
    container: Mapping[str, Any], limit_ranges: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, fractions.Fraction]]:
    """{"requests": {...}, "limits": {...}} of a container after admission: LimitRange defaults for what it
    does not set, and requests defaulting to limits."""
    resources = container.get("resources") or {}
    result = {
        kind: {name: parse_quantity(v) for name, v in (resources.get(kind) or {}).items()}
        for kind in ("requests", "limits")
    }
    for limit_range in limit_ranges:
        for item in (limit_range.get("spec") or {}).get("limits") or []:
            if item.get("type") != "Container":
                continue
            for name, value in (item.get("default") or {}).items():
                result["limits"].setdefault(name, parse_quantity(value))
            for name, value in (item.get("defaultRequest") or item.get("default") or {}).items():
                result["requests"].setdefault(name, parse_quantity(value))
    for name, value in result["limits"].items():
        result["requests"].setdefault(name, value)
    return result


def pod_usage(
    pod_spec: Mapping[str, Any], limit_ranges: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, fractions.Fraction], dict[str, list[str]]]:
    """The quota usage of one pod (requests.*, limits.*, and cpu/memory as requests), and per resource the
    containers that do not set it (a quota on that resource refuses such a pod)."""
    usage: dict[str, fractions.Fraction] = {}
    unset: dict[str, list[str]] = {}
    containers = [container_resources(c, limit_ranges) for c in pod_spec.get("containers") or []]
    inits = [container_resources(c, limit_ranges) for c in pod_spec.get("initContainers") or []]
    names = [c.get("name", "") for c in pod_spec.get("containers") or []]
    for kind in ("requests", "limits"):
        for resource in COMPUTE:
            total = sum(
                (c[kind].get(resource, fractions.Fraction(0)) for c in containers), fractions.Fraction(0)
            )
            init_max = max(
                (c[kind].get(resource, fractions.Fraction(0)) for c in inits), default=fractions.Fraction(0)
            )
            usage[f"{kind}.{resource}"] = max(total, init_max)
            unset[f"{kind}.{resource}"] = [
                n for n, c in zip(names, containers, strict=True) if resource not in c[kind]
            ]
    usage["cpu"], usage["memory"] = usage["requests.cpu"], usage["requests.memory"]
    unset["cpu"], unset["memory"] = unset["requests.cpu"], unset["requests.memory"]
    return usage, unset


def claims(objects: Sequence[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(name, claim spec) of every claim the objects make: standalone PVCs and each replica's
    volumeClaimTemplates."""
    found = []
    for obj in objects:
        spec = obj.get("spec") or {}
        name = (obj.get("metadata") or {}).get("name", "")
        if obj.get("kind") == "PersistentVolumeClaim":
            found.append((name, spec))
        elif obj.get("kind") == "StatefulSet":
            for replica in range(int(spec.get("replicas", 1))):
                for template in spec.get("volumeClaimTemplates") or []:
                    claim = (template.get("metadata") or {}).get("name", "")
                    found.append((f"{claim}-{name}-{replica}", template.get("spec") or {}))
    return found


def objects_usage(
    objects: Sequence[dict[str, Any]], limit_ranges: Sequence[Mapping[str, Any]], default_class: str | None
) -> tuple[dict[str, fractions.Fraction], dict[str, list[str]]]:
    """What creating the objects adds to a quota's `used`, and the containers missing each resource."""
    usage: dict[str, fractions.Fraction] = {}
    unset: dict[str, list[str]] = {}

    def add(key: str, amount: fractions.Fraction | int) -> None:
        usage[key] = usage.get(key, fractions.Fraction(0)) + amount

    for obj in objects:
        resource = permissions.plural(obj.get("kind", ""))
        group = permissions.api_group(obj.get("apiVersion", ""))
        add(f"count/{resource}.{group}" if group else f"count/{resource}", 1)
        if not group and resource in LEGACY_COUNTS:
            add(resource, 1)
        spec = obj.get("spec") or {}
        template = spec.get("template") if isinstance(spec.get("template"), dict) else None
        if obj.get("kind") in ("StatefulSet", "Deployment", "ReplicaSet") and template:
            replicas = int(spec.get("replicas", 1))
            pod, missing = pod_usage(template.get("spec") or {}, limit_ranges)
            for key, value in pod.items():
                add(key, value * replicas)
            for key, names in missing.items():
                unset.setdefault(key, []).extend(n for n in names if n not in unset.get(key, []))
            add("pods", replicas)
            add("count/pods", replicas)
    for name, spec in claims(objects):
        if not any(
            o.get("kind") == "PersistentVolumeClaim" and o["metadata"].get("name") == name for o in objects
        ):
            add("persistentvolumeclaims", 1)
            add("count/persistentvolumeclaims", 1)
        storage = parse_quantity(((spec.get("resources") or {}).get("requests") or {}).get("storage", "0"))
        add("requests.storage", storage)
        storage_class = spec.get("storageClassName", default_class)
        if storage_class:
            add(f"{storage_class}{STORAGE_CLASS_SUFFIX}requests.storage", storage)
            add(f"{storage_class}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims", 1)
    return usage, unset


def shortfalls(
    objects: Sequence[dict[str, Any]],
    quotas: Sequence[Mapping[str, Any]],
    limit_ranges: Sequence[Mapping[str, Any]] = (),
    default_class: str | None = None,
) -> list[Shortfall]:
    """Every quota resource the objects would exceed, or that a container does not set although a quota
    tracks it (the quota admission plugin refuses such a pod: `must specify limits.memory`)."""
    usage, unset = objects_usage(objects, limit_ranges, default_class)
    found = []
    for quota in quotas:
        name = (quota.get("metadata") or {}).get("name", "")
        hard = (quota.get("status") or {}).get("hard") or (quota.get("spec") or {}).get("hard") or {}
        used = (quota.get("status") or {}).get("used") or {}
        for resource, limit in sorted(hard.items()):
            if unset.get(resource) and usage.get("pods"):
                containers = ", ".join(unset[resource])
                found.append(Shortfall(name, resource, f"must specify {resource} for: {containers}"))
                continue
            need = usage.get(resource, fractions.Fraction(0))
            if not need:
                continue
            left = parse_quantity(limit) - parse_quantity(used.get(resource, "0"))
            if need > left:
                found.append(
                    Shortfall(
                        name,
                        resource,
                        f"{resource}: needs {format_quantity(need, resource)}, "
                        f"{format_quantity(max(left, fractions.Fraction(0)), resource)} of "
                        f"{format_quantity(parse_quantity(limit), resource)} left",
                    )
                )
    return found
