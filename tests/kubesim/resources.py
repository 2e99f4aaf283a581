"""THE table of served resources. Discovery, OpenAPI, routing, kinds, tables and defaults read it."""

from __future__ import annotations

import dataclasses

RW_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclasses.dataclass(frozen=True)
class Sub:
    name: str
    verbs: tuple[str, ...]
    kind: tuple[str, str, str] | None = None  # (group, version, kind) of the response; None = parent kind


@dataclasses.dataclass(frozen=True)
class Resource:
    group: str
    plural: str
    singular: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Sub, ...] = ()
    verbs: tuple[str, ...] = RW_VERBS
    version: str = "v1"
    generation: bool = False  # metadata.generation tracks spec changes
    name_rule: str = "subdomain"  # subdomain | label (RFC 1123) | dns1035 | path
    status_sub: bool = False  # has a status subresource: main writes keep status
    fields: tuple[str, ...] = ()  # extra field selectors beyond metadata.name / metadata.namespace
    store: bool = True  # False: virtual (create-only reviews)
    proto: str | None = None  # protobuf message (protobuf_schema), for typed-kubectl bodies and strict fields

    @property
    def key(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def sub(self, name: str) -> Sub | None:
        for s in self.subresources:
            if s.name == name:
                return s
        return None

    def path(self, namespace: str | None, name: str | None = None) -> str:
        p = self.prefix
        if self.namespaced and namespace:
            p += f"/namespaces/{namespace}"
        p += f"/{self.plural}"
        if name:
            p += f"/{name}"
        return p


GATEWAY_GROUP = "gateway.networking.k8s.io"  # Gateway API v1 standard channel, served as built in
STATUS = Sub("status", ("get", "patch", "update"))
SCALE = Sub("scale", ("get", "patch", "update"), ("autoscaling", "v1", "Scale"))

RESOURCES: tuple[Resource, ...] = (
    Resource(
        "",
        "namespaces",
        "namespace",
        "Namespace",
        proto="core.Namespace",
        namespaced=False,
        short_names=("ns",),
        subresources=(STATUS, Sub("finalize", ("update",))),
        name_rule="label",
        status_sub=True,
        fields=("status.phase",),
    ),
    Resource(
        "",
        "pods",
        "pod",
        "Pod",
        proto="core.Pod",
        short_names=("po",),
        categories=("all",),
        subresources=(
            STATUS,
            Sub("exec", ("create", "get"), ("", "v1", "PodExecOptions")),
            Sub("portforward", ("create", "get"), ("", "v1", "PodPortForwardOptions")),
            Sub("log", ("get",)),
        ),
        status_sub=True,
        fields=(
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ),
    ),
    Resource("", "configmaps", "configmap", "ConfigMap", proto="core.ConfigMap", short_names=("cm",)),
    Resource("", "secrets", "secret", "Secret", proto="core.Secret", fields=("type",)),
    Resource(
        "",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        proto="core.ServiceAccount",
        short_names=("sa",),
        subresources=(Sub("token", ("create",), ("authentication.k8s.io", "v1", "TokenRequest")),),
    ),
    Resource(
        "",
        "services",
        "service",
        "Service",
        proto="core.Service",
        short_names=("svc",),
        categories=("all",),
        subresources=(STATUS,),
        name_rule="dns1035",
        status_sub=True,
    ),
    Resource(
        "",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        proto="core.PersistentVolumeClaim",
        short_names=("pvc",),
        subresources=(STATUS,),
        status_sub=True,
    ),
    Resource(
        "",
        "resourcequotas",
        "resourcequota",
        "ResourceQuota",
        proto="core.ResourceQuota",
        short_names=("quota",),
        subresources=(STATUS,),
        status_sub=True,
    ),
    Resource(
        "",
        "limitranges",
        "limitrange",
        "LimitRange",
        proto="core.LimitRange",
        short_names=("limits",),
    ),
    Resource(
        "",
        "events",
        "event",
        "Event",
        proto="core.Event",
        short_names=("ev",),
        fields=(
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ),
    ),
    Resource(
        "apps",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        proto="apps.StatefulSet",
        short_names=("sts",),
        categories=("all",),
        subresources=(STATUS, SCALE),
        name_rule="label",
        generation=True,
        status_sub=True,
    ),
    Resource(
        "apps",
        "deployments",
        "deployment",
        "Deployment",
        proto="apps.Deployment",
        short_names=("deploy",),
        categories=("all",),
        subresources=(STATUS, SCALE),
        generation=True,
        status_sub=True,
    ),
    Resource(
        "batch",
        "jobs",
        "job",
        "Job",
        proto="batch.Job",
        categories=("all",),
        subresources=(STATUS,),
        generation=True,
        status_sub=True,
    ),
    Resource(
        "batch",
        "cronjobs",
        "cronjob",
        "CronJob",
        proto="batch.CronJob",
        short_names=("cj",),
        categories=("all",),
        subresources=(STATUS,),
        generation=True,
        status_sub=True,
    ),
    Resource("rbac.authorization.k8s.io", "roles", "role", "Role", proto="rbac.Role", name_rule="path"),
    Resource(
        "rbac.authorization.k8s.io",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        proto="rbac.RoleBinding",
        name_rule="path",
    ),
    Resource(
        "storage.k8s.io",
        "storageclasses",
        "storageclass",
        "StorageClass",
        proto="storage.StorageClass",
        namespaced=False,
        short_names=("sc",),
    ),
    Resource(
        "rbac.authorization.k8s.io",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        proto="rbac.ClusterRole",
        namespaced=False,
        name_rule="path",
    ),
    Resource(
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        proto="rbac.ClusterRoleBinding",
        namespaced=False,
        name_rule="path",
    ),
    Resource(
        "networking.k8s.io",
        "ingresses",
        "ingress",
        "Ingress",
        proto="net.Ingress",
        short_names=("ing",),
        subresources=(STATUS,),
        generation=True,
        status_sub=True,
    ),
    Resource(
        "networking.k8s.io",
        "ingressclasses",
        "ingressclass",
        "IngressClass",
        proto="net.IngressClass",
        namespaced=False,
    ),
    Resource(
        GATEWAY_GROUP,
        "gatewayclasses",
        "gatewayclass",
        "GatewayClass",
        proto="gw.GatewayClass",
        namespaced=False,
        short_names=("gc",),
        categories=("gateway-api",),
        subresources=(STATUS,),
        generation=True,
        status_sub=True,
    ),
    Resource(
        GATEWAY_GROUP,
        "gateways",
        "gateway",
        "Gateway",
        proto="gw.Gateway",
        short_names=("gtw",),
        categories=("gateway-api",),
        subresources=(STATUS,),
        generation=True,
        status_sub=True,
    ),
    Resource(
        GATEWAY_GROUP,
        "httproutes",
        "httproute",
        "HTTPRoute",
        proto="gw.HTTPRoute",
        categories=("gateway-api",),
        subresources=(STATUS,),
        generation=True,
        status_sub=True,
    ),
    Resource(
        "authentication.k8s.io",
        "selfsubjectreviews",
        "selfsubjectreview",
        "SelfSubjectReview",
        namespaced=False,
        verbs=("create",),
        store=False,
        proto="authn.SelfSubjectReview",
    ),
    Resource(
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        "SelfSubjectAccessReview",
        namespaced=False,
        verbs=("create",),
        store=False,
        proto="authz.SelfSubjectAccessReview",
    ),
    Resource(
        "authorization.k8s.io",
        "selfsubjectrulesreviews",
        "selfsubjectrulesreview",
        "SelfSubjectRulesReview",
        namespaced=False,
        verbs=("create",),
        store=False,
        proto="authz.SelfSubjectRulesReview",
    ),
)

BY_KEY = {r.key: r for r in RESOURCES}
BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}


def groups() -> list[tuple[str, str]]:
    """(group, version) in serving order, core first."""
    out = []
    for r in RESOURCES:
        gv = (r.group, r.version)
        if gv not in out:
            out.append(gv)
    return out


def in_group(group: str, version: str) -> list[Resource]:
    return [r for r in RESOURCES if r.group == group and r.version == version]
