"""The permissions `up`, `down` and `connect` need for a rendered template, RBAC rule matching as the
API server does it, and the minimal Role that grants them.

Pure functions: nothing here talks to the cluster (see preflight.py).
"""

import dataclasses
import re
from collections.abc import Iterable, Sequence
from typing import Any

UP, DOWN, CONNECT = "up", "down", "connect"
VERB_ORDER = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
# Verbs on each type of the template: up applies (server-side: patch; client-side: get, create, patch),
# down lists by label, deletes and waits (get, watch).
TEMPLATE_VERBS = {UP: ("get", "create", "patch"), DOWN: ("get", "list", "watch", "delete")}
# Cluster-scoped reads a Role cannot grant: the checks that need them are skipped when refused.
OPTIONAL_CLUSTER_READS = (
    ("", "namespaces", "get", "the namespace's Pod Security labels"),
    ("storage.k8s.io", "storageclasses", "list", "the default StorageClass"),
    ("storage.k8s.io", "storageclasses", "get", "the selected StorageClass"),
)


@dataclasses.dataclass(frozen=True)
class Permission:
    """One request an API server authorizes: verb on group/resource[/subresource] in the namespace."""

    group: str
    resource: str  # "pods", or "pods/exec" with its subresource
    verb: str
    why: str
    commands: frozenset[str]
    optional: bool = False  # refused: a check is skipped, the commands still work
    cluster_scoped: bool = False

    @property
    def type_name(self) -> str:
        """As kubectl names it: `statefulsets.apps`, `pods/exec`."""
        base, _, sub = self.resource.partition("/")
        name = f"{base}.{self.group}" if self.group else base
        return f"{name}/{sub}" if sub else name


def plural(kind: str) -> str:
    """The resource name of a kind (the API's lower-case plural): StatefulSet -> statefulsets."""
    lower = kind.lower()
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u"):
        return lower[:-1] + "ies"
    return lower + "s"


def api_group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def required(objects: Sequence[dict[str, Any]], *, lock_configmaps: bool = True) -> list[Permission]:
    """Every permission the commands need for these rendered objects, deduplicated, in a stable order."""
    needed: list[Permission] = []

    def need(
        group: str, resource: str, verbs: Iterable[str], why: str, *commands: str, **flags: bool
    ) -> None:
        for verb in verbs:
            needed.append(Permission(group, resource, verb, why, frozenset(commands), **flags))

    for obj in objects:
        group, resource = api_group(obj.get("apiVersion", "")), plural(obj.get("kind", ""))
        why = f"the template's {obj.get('kind')}"
        need(group, resource, TEMPLATE_VERBS[UP], why, UP)
        need(group, resource, TEMPLATE_VERBS[DOWN], why, DOWN)
        if obj.get("kind") in ("Role", "ClusterRole"):
            # RBAC escalation prevention: one may only grant what one holds (or has `escalate`).
            for rule in obj.get("rules") or []:
                for rule_group in rule.get("apiGroups") or [""]:
                    for rule_resource in rule.get("resources") or []:
                        need(
                            rule_group,
                            rule_resource,
                            rule.get("verbs") or [],
                            f"granted by the template's {obj.get('kind')} (held to be granted)",
                            UP,
                        )
    need(
        "apps",
        "statefulsets",
        ("get", "list", "watch"),
        "finding and waiting for the environment",
        UP,
        CONNECT,
    )
    need("apps", "statefulsets", ("list",), "finding the environment", DOWN)
    # `up` wakes a sleeping environment first (sleep and wake themselves scale too)
    need("apps", "statefulsets/scale", ("get", "patch"), "waking a sleeping environment", UP)
    need("", "pods", ("get", "list"), "finding the environment's pod", UP, CONNECT)
    need("", "pods", TEMPLATE_VERBS[DOWN], "deleting the environment's pod", DOWN)
    need("", "persistentvolumeclaims", ("get",), "explaining a Pending volume", UP)
    need("", "persistentvolumeclaims", TEMPLATE_VERBS[DOWN], "deleting the environment's volume", DOWN)
    # create: the verb of the SPDY POST, which kubectl falls back to when the cluster refuses its websocket
    # GET (authorized as `get` before 1.35, as `create` too from 1.35 on): create works with every version
    need("", "pods/exec", ("create",), "copying files into the pod", UP)
    need("", "pods/portforward", ("create",), "reaching the pod's Docker server", UP, CONNECT)
    need("", "pods/log", ("get",), "explaining a container that exits", UP)
    need("", "events", ("list",), "explaining a pod that does not start", UP)
    if lock_configmaps:
        need("", "configmaps", ("get", "create", "update", "delete"), "the environment's lock", UP, DOWN)
    need("", "resourcequotas", ("list",), "checking quota headroom", UP, optional=True)
    need("", "limitranges", ("list",), "checking quota headroom", UP, optional=True)
    for group, resource, verb, why in OPTIONAL_CLUSTER_READS:
        need(group, resource, (verb,), f"reading {why}", UP, optional=True, cluster_scoped=True)
    return merge(needed)


def merge(permissions: Iterable[Permission]) -> list[Permission]:
    """One Permission per (group, resource, verb): commands united, required if any need is required."""
    merged: dict[tuple[str, str, str], Permission] = {}
    for p in permissions:
        key = (p.group, p.resource, p.verb)
        old = merged.get(key)
        if old is None:
            merged[key] = p
        else:
            merged[key] = dataclasses.replace(
                old,
                commands=old.commands | p.commands,
                optional=old.optional and p.optional,
                why=old.why if not old.optional or p.optional else p.why,
            )
    return sorted(merged.values(), key=_order)


def _order(p: Permission) -> tuple[str, str, int]:
    rank = VERB_ORDER.index(p.verb) if p.verb in VERB_ORDER else len(VERB_ORDER)
    return (p.group, p.resource, rank)


def rule_allows(rule: dict[str, Any], permission: Permission) -> bool:
    """Whether one RBAC PolicyRule (or a SelfSubjectRulesReview resourceRule) allows the request, as the
    API server's rbac.RuleAllows does for a request without a resource name."""
    if rule.get("resourceNames"):
        return False  # a rule limited to names never matches list, create, or an unnamed check
    verbs = rule.get("verbs") or []
    if "*" not in verbs and permission.verb not in verbs:
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and permission.group not in groups:
        return False
    _, _, subresource = permission.resource.partition("/")
    for resource in rule.get("resources") or []:
        if resource in ("*", permission.resource):
            return True
        if subresource and resource == f"*/{subresource}":
            return True
    return False


def allowed(rules: Sequence[dict[str, Any]], permission: Permission) -> bool:
    return any(rule_allows(rule, permission) for rule in rules)


def grouped(permissions: Iterable[Permission]) -> dict[tuple[str, str], list[str]]:
    """(group, resource) -> its verbs, in VERB_ORDER."""
    by_type: dict[tuple[str, str], list[str]] = {}
    for p in sorted(permissions, key=_order):
        by_type.setdefault((p.group, p.resource), [])
        if p.verb not in by_type[(p.group, p.resource)]:
            by_type[(p.group, p.resource)].append(p.verb)
    return by_type


def role_rules(permissions: Iterable[Permission]) -> list[dict[str, Any]]:
    """The fewest PolicyRules granting exactly these (namespaced) permissions: resources of one group with
    the same verbs share a rule."""
    by_verbs: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (group, resource), verbs in grouped(permissions).items():
        by_verbs.setdefault((group, tuple(verbs)), []).append(resource)
    return [
        {"apiGroups": [group], "resources": resources, "verbs": list(verbs)}
        for (group, verbs), resources in by_verbs.items()
    ]


def describe(group: str, resource: str, verbs: Sequence[str]) -> str:
    """`create, patch statefulsets.apps` as one reads it in an error."""
    base, _, sub = resource.partition("/")
    name = f"{base}.{group}" if group else base
    return f"{', '.join(verbs)} {name}{'/' + sub if sub else ''}"


_REFUSED = r'cannot (\S+) resource "([^"]+)" in API group "([^"]*)"'  # compiled at its first use (re's cache)


def other_errors(stderr: str) -> list[str]:
    """kubectl's error lines other than an API server's Forbidden."""
    return [
        line
        for line in stderr.splitlines()
        if line.startswith(("error:", "Error from server")) and "(Forbidden)" not in line
    ]


def refused_requests(stderr: str) -> list[str]:
    """What the API server's Forbidden errors in kubectl's output refused, e.g. `delete roles.rbac...`:
    one entry per verb and type, in order."""
    found = []
    for verb, resource, group in re.findall(_REFUSED, stderr):
        text = describe(group, resource, [verb])
        if text not in found:
            found.append(text)
    return found


def refused_type(type_name: str, stderr: str) -> bool:
    """Whether kubectl's Forbidden errors concern this type (`Kind.version.group`, or `Kind` for the core
    group, as environment.resource_name writes it; or a resource name such as `pods`)."""
    kind, _, rest = type_name.partition(".")
    if kind.islower():  # resource.group
        resource, group = kind, rest
    else:  # Kind.version.group
        resource, group = plural(kind), rest.partition(".")[2]
    return any((g, r) == (group, resource) for _, r, g in re.findall(_REFUSED, stderr))
