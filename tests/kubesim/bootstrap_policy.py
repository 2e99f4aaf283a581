"""The ClusterRoles and ClusterRoleBindings a 1.32 apiserver bootstraps (the ones users meet:
cluster-admin, admin/edit/view through their aggregate-to-* parts, discovery, basic-user,
public-info-viewer), and the ClusterRole aggregation controller that fills admin/edit/view."""

from __future__ import annotations

import logging

from . import selectors
from .rbac import CLUSTERROLEBINDINGS, CLUSTERROLES, GROUP

log = logging.getLogger("kubesim.rbac")

RW = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


AGGREGATE_TO_ADMIN = [
    _rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]),
    _rule([GROUP], ["rolebindings", "roles"], RW),
]

AGGREGATE_TO_EDIT = [
    _rule(
        [""],
        ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"],
        READ,
    ),
    _rule([""], ["serviceaccounts"], ["impersonate"]),
    _rule([""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], WRITE),
    _rule([""], ["pods/eviction"], ["create"]),
    _rule(
        [""],
        [
            "configmaps",
            "events",
            "persistentvolumeclaims",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "secrets",
            "serviceaccounts",
            "services",
            "services/proxy",
        ],
        WRITE,
    ),
    _rule([""], ["serviceaccounts/token"], ["create"]),
    _rule(
        ["apps"],
        [
            "daemonsets",
            "deployments",
            "deployments/rollback",
            "deployments/scale",
            "replicasets",
            "replicasets/scale",
            "statefulsets",
            "statefulsets/scale",
        ],
        WRITE,
    ),
    _rule(["autoscaling"], ["horizontalpodautoscalers"], WRITE),
    _rule(["batch"], ["cronjobs", "jobs"], WRITE),
    _rule(
        ["extensions"],
        [
            "daemonsets",
            "deployments",
            "deployments/rollback",
            "deployments/scale",
            "ingresses",
            "networkpolicies",
            "replicasets",
            "replicasets/scale",
            "replicationcontrollers/scale",
        ],
        WRITE,
    ),
    _rule(["policy"], ["poddisruptionbudgets"], WRITE),
    _rule(["networking.k8s.io"], ["ingresses", "networkpolicies"], WRITE),
    _rule(["coordination.k8s.io"], ["leases"], RW),
]

AGGREGATE_TO_VIEW = [
    _rule(
        [""],
        [
            "configmaps",
            "endpoints",
            "persistentvolumeclaims",
            "persistentvolumeclaims/status",
            "pods",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "serviceaccounts",
            "services",
            "services/status",
        ],
        READ,
    ),
    _rule(
        [""],
        [
            "bindings",
            "events",
            "limitranges",
            "namespaces/status",
            "pods/log",
            "pods/status",
            "replicationcontrollers/status",
            "resourcequotas",
            "resourcequotas/status",
        ],
        READ,
    ),
    _rule([""], ["namespaces"], READ),
    _rule(["discovery.k8s.io"], ["endpointslices"], READ),
    _rule(
        ["apps"],
        [
            "controllerrevisions",
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "statefulsets",
            "statefulsets/scale",
            "statefulsets/status",
        ],
        READ,
    ),
    _rule(["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"], READ),
    _rule(["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"], READ),
    _rule(
        ["extensions"],
        [
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "ingresses",
            "ingresses/status",
            "networkpolicies",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "replicationcontrollers/scale",
        ],
        READ,
    ),
    _rule(["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"], READ),
    _rule(["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"], READ),
]

LABEL = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}


def _aggregated(name: str, to: str, labels: dict | None = None) -> dict:
    return {
        "metadata": {"name": name, "labels": {**LABEL, **(labels or {})}},
        "aggregationRule": {
            "clusterRoleSelectors": [
                {"matchLabels": {f"rbac.authorization.k8s.io/aggregate-to-{to}": "true"}}
            ]
        },
        "rules": None,
    }


def _role(name: str, rules: list[dict], labels: dict | None = None) -> dict:
    return {"metadata": {"name": name, "labels": {**LABEL, **(labels or {})}}, "rules": rules}


def _agg_label(to: str) -> dict:
    return {f"rbac.authorization.k8s.io/aggregate-to-{to}": "true"}


CLUSTER_ROLES = [
    _aggregated("admin", "admin"),
    _role(
        "cluster-admin",
        [_rule(["*"], ["*"], ["*"]), {"nonResourceURLs": ["*"], "verbs": ["*"]}],
    ),
    _aggregated("edit", "edit", _agg_label("admin")),
    _role("system:aggregate-to-admin", AGGREGATE_TO_ADMIN, _agg_label("admin")),
    _role("system:aggregate-to-edit", AGGREGATE_TO_EDIT, _agg_label("edit")),
    _role("system:aggregate-to-view", AGGREGATE_TO_VIEW, _agg_label("view")),
    _role(
        "system:basic-user",
        [
            _rule(
                ["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], ["create"]
            ),
            _rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"]),
        ],
    ),
    _role(
        "system:discovery",
        [
            {
                "nonResourceURLs": [
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
                "verbs": ["get"],
            }
        ],
    ),
    _role(
        "system:public-info-viewer",
        [{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}],
    ),
    _aggregated("view", "view", _agg_label("edit")),
]


def _binding(name: str, groups: list[str]) -> dict:
    return {
        "metadata": {"name": name, "labels": dict(LABEL), "annotations": dict(AUTOUPDATE)},
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": GROUP, "kind": "Group", "name": g} for g in groups],
    }


CLUSTER_ROLE_BINDINGS = [
    _binding("cluster-admin", ["system:masters"]),
    _binding("system:basic-user", ["system:authenticated"]),
    _binding("system:discovery", ["system:authenticated"]),
    _binding("system:public-info-viewer", ["system:authenticated", "system:unauthenticated"]),
]


def seed(store) -> None:
    """Writes the bootstrap policy into a fresh store (as the apiserver's RBAC post-start hook)."""
    import copy

    for role in CLUSTER_ROLES:
        obj = copy.deepcopy(role)
        obj["metadata"]["annotations"] = dict(AUTOUPDATE)
        obj.update(apiVersion=f"{GROUP}/v1", kind="ClusterRole")
        if obj.get("rules") is None:
            obj["rules"] = []
        store.create(CLUSTERROLES, obj)
    for binding in CLUSTER_ROLE_BINDINGS:
        obj = copy.deepcopy(binding)
        obj.update(apiVersion=f"{GROUP}/v1", kind="ClusterRoleBinding")
        store.create(CLUSTERROLEBINDINGS, obj)


class AggregationController:
    """ClusterRoles with an aggregationRule get the union of the rules of the ClusterRoles their
    selectors match (each selector's matches sorted by name; duplicates dropped)."""

    def __init__(self, cluster):
        self.store = cluster.store
        self._dirty = True

    def observe(self, event_type: str, key: str, obj: dict) -> None:
        if key == CLUSTERROLES:
            self._dirty = True

    def reconcile(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        for _ in range(
            10
        ):  # to a fixed point: aggregated roles select aggregated roles (admin <- edit <- view)
            changed = False
            for role in self.store.list(CLUSTERROLES):
                rule = role.get("aggregationRule")
                if not rule:
                    continue
                wanted = self._union(role, rule, self.store.list(CLUSTERROLES))
                if (role.get("rules") or []) != wanted:
                    role["rules"] = wanted
                    self.store.update(CLUSTERROLES, role)
                    changed = True
            if not changed:
                return

    @staticmethod
    def _union(role: dict, rule: dict, roles: list[dict]) -> list[dict]:
        out: list[dict] = []
        for sel in rule.get("clusterRoleSelectors") or []:
            for other in sorted(roles, key=lambda r: r["metadata"]["name"]):
                if other["metadata"]["name"] == role["metadata"]["name"]:
                    continue
                if not selectors.match_labels(
                    selectors.selector_from_label_selector(sel), other["metadata"].get("labels") or {}
                ):
                    continue
                for r in other.get("rules") or []:
                    if r not in out:
                        out.append(r)
        return out
