"""Public URLs from the user's own cluster: hostnames, PREEVY_BASE_URI_* variables, the Service and
the HTTPRoutes (Gateway API) or the Ingress that route them, waiting until they are accepted, and
reading them back (`urls`).

Hostnames come from the compose model, so they are known before anything is deployed; the objects
are applied after `docker compose up`, when the pod's published ports are known (an unpinned port
is chosen by Docker). The Service selects the docker-host pod and has one port per published TCP
port (port = targetPort = the published port); each route sends its host to its Service port.
"""

import dataclasses
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubectl_preevy import console, messages, naming, template
from kubectl_preevy.docker import PublishedPort
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.kubectl import Kubectl
from kubectl_preevy.options import Options

COMPONENT = "preview-routing"  # app.kubernetes.io/component of the routing objects
ANNOTATION_URLS = "preevy.dev/urls"  # on the Service: the URL table, read back by `urls`
ANNOTATION_CLUSTER_ISSUER = "cert-manager.io/cluster-issuer"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
GATEWAY_GROUP = "gateway.networking.k8s.io"
SERVICE_TYPE = {"apiVersion": "v1", "kind": "Service"}
ROUTE_TYPE = {"apiVersion": f"{GATEWAY_GROUP}/v1", "kind": "HTTPRoute"}
INGRESS_TYPE = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress"}
GATEWAYS = "gateways.v1.gateway.networking.k8s.io"
ROUTES = "httproutes.v1.gateway.networking.k8s.io"
INGRESSES = "ingresses.v1.networking.k8s.io"
INGRESS_CLASSES = "ingressclasses.v1.networking.k8s.io"
POLL_SECONDS = 0.5
MAX_LABEL_LENGTH = 63
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclasses.dataclass(frozen=True)
class Target:
    """A port of a compose service: routable (TCP, in the service's own network), or why not."""

    service: str
    port: int | None  # the container's port; None: a host-network service without any port
    protocol: str = "tcp"
    reason: str | None = None


@dataclasses.dataclass(frozen=True)
class Exposure:
    """How this environment is exposed, resolved against the cluster (the Gateway read, the class chosen)."""

    mode: str  # gateway | ingress
    domain: str
    namespace: str  # the environment's
    scheme: str  # http | https
    public_port: int | None  # None: the scheme's default port
    gateway: tuple[str, str] | None = None  # (namespace, name)
    ingress_class: str | None = None  # None: left to the cluster's default class
    tls_secret: str | None = None
    cluster_issuer: str | None = None

    def hostname(self, service: str, port: int, env_id: str) -> str:
        return hostname(service, port, env_id, self.domain)

    def url(self, service: str, port: int, env_id: str) -> str:
        port_part = f":{self.public_port}" if self.public_port else ""
        return f"{self.scheme}://{self.hostname(service, port, env_id)}{port_part}"

    @property
    def types(self) -> list[dict[str, Any]]:
        """The kinds of its objects (for `preevy.dev/all-types`, so that `down` deletes them)."""
        return [SERVICE_TYPE, ROUTE_TYPE if self.mode == "gateway" else INGRESS_TYPE]


# --- names -----------------------------------------------------------------------------------------


def hostname(service: str, port: int, env_id: str, domain: str) -> str:
    """`<service>-<port>-<env id>.<domain>`: lowercase, the first label at most 63 characters
    (cut and suffixed with a hash of the whole label, as naming.truncate_with_hash does)."""
    label = re.sub(r"[^a-z0-9-]", "-", f"{service}-{port}-{env_id}".lower()).strip("-")
    if len(label) > MAX_LABEL_LENGTH:
        label = naming.truncate_with_hash(label, MAX_LABEL_LENGTH).lower()
    return f"{label}.{domain}"


def base_uri_variable(service: str, port: int) -> str:
    """Preevy's PREEVY_BASE_URI_<SERVICE>_<PORT>: upper case, `-` as `_`."""
    return f"PREEVY_BASE_URI_{service.upper().replace('-', '_')}_{port}"


def service_name(instance: str) -> str:
    """The routing Service (and the Ingress) of an instance."""
    return object_name(instance, "public")


def object_name(instance: str, *parts: str) -> str:
    name = naming.sanitize_name("-".join([instance, *parts]))
    return naming.truncate_with_hash(name, naming.MAX_NAME_LENGTH).lower()


# --- the compose model -----------------------------------------------------------------------------


def compose_targets(model: Mapping[str, Any]) -> list[Target]:
    """Every published port of the model, and every service that cannot be routed, with the reason."""
    found: list[Target] = []
    for name, service in sorted((model.get("services") or {}).items()):
        ports = [p for p in service.get("ports") or [] if isinstance(p, dict) and p.get("target")]
        if service.get("network_mode") == "host":
            exposed: list[int | None] = [int(p["target"]) for p in ports] or [
                int(str(e).split("/")[0]) for e in service.get("expose") or []
            ]
            for port in exposed or [None]:
                found.append(Target(name, port, "tcp", messages.NOT_ROUTABLE_HOST_NETWORK))
            continue
        for entry in ports:
            protocol = str(entry.get("protocol") or "tcp").lower()
            reason = (
                None
                if protocol == "tcp"
                else messages.NOT_ROUTABLE_PROTOCOL.format(protocol=protocol.upper())
            )
            found.append(Target(name, int(entry["target"]), protocol, reason))
    unique = list(dict.fromkeys(found))
    return unique


def base_uri_environment(exposure: Exposure | None, model: Mapping[str, Any], env_id: str) -> dict[str, str]:
    """PREEVY_BASE_URI_* for every routable port of the model (none without an exposure)."""
    if exposure is None:
        return {}
    return {
        base_uri_variable(t.service, t.port): exposure.url(t.service, t.port, env_id)
        for t in compose_targets(model)
        if t.reason is None and t.port is not None
    }


# --- what the cluster offers (checked before anything is written) ----------------------------------


def resolve(kubectl: Kubectl, options: Options) -> Exposure | None:
    """The exposure of these options, checked against the cluster: PreevyError when the Gateway or
    IngressClass does not exist, or a Gateway cannot take our routes. None for `expose none`."""
    ingress_only = [
        flag
        for flag, value in (
            ("--ingress-class", options.ingress_class),
            ("--tls-secret", options.tls_secret),
            ("--cluster-issuer", options.cluster_issuer),
        )
        if value
    ]
    if ingress_only and options.expose != "ingress":
        console.warn(
            messages.EXPOSE_OPTIONS_IGNORED.format(options=", ".join(ingress_only), mode=options.expose)
        )
    if options.expose == "none":
        return None
    if options.expose == "gateway":
        return _gateway_exposure(kubectl, options)
    return _ingress_exposure(kubectl, options)


def routing_kinds(options: Options) -> list[dict[str, Any]]:
    """Stand-ins of the routing objects of these options (kind and apiVersion only), for the checks of
    what `up` will need (permissions.required: RBAC to create, patch and delete them)."""
    if options.expose == "none":
        return []
    kinds = [SERVICE_TYPE, ROUTE_TYPE if options.expose == "gateway" else INGRESS_TYPE]
    return [{**kind, "metadata": {"name": "routing"}} for kind in kinds]


def _gateway_exposure(kubectl: Kubectl, options: Options) -> Exposure:
    assert options.gateway is not None and options.domain is not None
    gw_namespace, _, gw_name = options.gateway.rpartition("/")
    gw_namespace = gw_namespace or kubectl.namespace
    shown = f"{gw_namespace}/{gw_name}"
    result = kubectl.run("get", GATEWAYS, gw_name, "--namespace", gw_namespace, "-o", "json")
    if not result.ok:
        if "doesn't have a resource type" in result.stderr:
            raise PreevyError(messages.GATEWAY_API_MISSING, ExitCode.REFUSED)
        if "NotFound" in result.stderr:
            raise PreevyError(messages.GATEWAY_NOT_FOUND.format(gateway=shown), ExitCode.USAGE)
        if "Forbidden" in result.stderr:  # a shared Gateway in a namespace we may not read
            console.warn(messages.GATEWAY_NOT_READABLE.format(gateway=shown))
            return Exposure(
                mode="gateway",
                domain=options.domain,
                namespace=kubectl.namespace,
                scheme="https",
                public_port=None,
                gateway=(gw_namespace, gw_name),
            )
        raise kubectl.error(result)
    gateway = json.loads(result.stdout)
    listeners = [
        ls
        for ls in (gateway.get("spec") or {}).get("listeners") or []
        if ls.get("protocol") in ("HTTP", "HTTPS")
    ]
    sample = f"x.{options.domain}"
    matching = [ls for ls in listeners if listener_matches(ls.get("hostname"), sample)]
    if not matching:
        described = ", ".join(f"{ls.get('hostname') or '*'}:{ls.get('port')}" for ls in listeners) or "none"
        raise PreevyError(
            messages.GATEWAY_NO_LISTENER_FOR_DOMAIN.format(
                gateway=shown, domain=options.domain, listeners=described
            ),
            ExitCode.REFUSED,
        )
    allowing = [ls for ls in matching if _allows_namespace(ls, gw_namespace, kubectl.namespace)]
    if not allowing:
        raise PreevyError(
            messages.GATEWAY_NAMESPACE_NOT_ALLOWED.format(gateway=shown, namespace=kubectl.namespace),
            ExitCode.REFUSED,
        )
    chosen = sorted(allowing, key=lambda ls: ls.get("protocol") != "HTTPS")[0]
    scheme = "https" if chosen.get("protocol") == "HTTPS" else "http"
    port = chosen.get("port")
    return Exposure(
        mode="gateway",
        domain=options.domain,
        namespace=kubectl.namespace,
        scheme=scheme,
        public_port=None if port == DEFAULT_PORTS[scheme] else port,
        gateway=(gw_namespace, gw_name),
    )


def listener_matches(pattern: str | None, host: str) -> bool:
    """Gateway API hostname matching: no hostname matches all; `*.d` matches one or more labels before d."""
    if not pattern:
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def _allows_namespace(listener: dict[str, Any], gw_namespace: str, namespace: str) -> bool:
    """allowedRoutes.namespaces: Same and All decided here; Selector is left to the Gateway's controller."""
    source = ((listener.get("allowedRoutes") or {}).get("namespaces") or {}).get("from") or "Same"
    return source in ("All", "Selector") or (source == "Same" and gw_namespace == namespace)


def _ingress_exposure(kubectl: Kubectl, options: Options) -> Exposure:
    assert options.domain is not None
    result = kubectl.run("get", INGRESS_CLASSES, "-o", "json")
    if result.ok:
        classes = json.loads(result.stdout).get("items") or []
        names = [c["metadata"]["name"] for c in classes]
        if options.ingress_class and options.ingress_class not in names:
            raise PreevyError(
                messages.INGRESS_CLASS_NOT_FOUND.format(
                    name=options.ingress_class, classes=", ".join(names) or "none"
                ),
                ExitCode.USAGE,
            )
        defaults = [
            c
            for c in classes
            if (c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"
        ]
        if not options.ingress_class and not defaults:
            raise PreevyError(
                messages.NO_INGRESS_CLASS.format(classes=", ".join(names) or "none"), ExitCode.REFUSED
            )
    elif "Forbidden" not in result.stderr:  # not allowed to list classes: the wait will tell
        raise kubectl.error(result)
    if options.tls_secret:
        secret = kubectl.run("get", "secret", options.tls_secret, "-o", "name")
        if not secret.ok and "NotFound" in secret.stderr:
            raise PreevyError(
                messages.TLS_SECRET_NOT_FOUND.format(name=options.tls_secret, namespace=kubectl.namespace),
                ExitCode.USAGE,
            )
    tls = bool(options.tls_secret or options.cluster_issuer)
    return Exposure(
        mode="ingress",
        domain=options.domain,
        namespace=kubectl.namespace,
        scheme="https" if tls else "http",
        public_port=None,
        ingress_class=options.ingress_class,
        tls_secret=options.tls_secret,
        cluster_issuer=options.cluster_issuer,
    )


# --- the objects -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the URL table: a routed port (url), or one that is not routable (reason)."""

    service: str
    port: int | None
    url: str | None
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"service": self.service, "port": self.port}
        if self.url is not None:
            out["url"] = self.url
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def rows(
    exposure: Exposure, env_id: str, published: Sequence[PublishedPort], targets: Iterable[Target]
) -> list[Row]:
    routed = [
        Row(p.service, p.port, exposure.url(p.service, p.port, env_id)) for p in _unique_ports(published)
    ]
    refused = [Row(t.service, t.port, None, t.reason) for t in targets if t.reason]
    return routed + refused


def _unique_ports(published: Sequence[PublishedPort]) -> list[PublishedPort]:
    """One published port per (service, container port): the lowest."""
    chosen: dict[tuple[str, int], PublishedPort] = {}
    for p in sorted(published, key=lambda p: (p.service, p.port, p.published)):
        chosen.setdefault((p.service, p.port), p)
    return list(chosen.values())


def build_objects(
    exposure: Exposure,
    *,
    statefulset: dict[str, Any],
    env_id: str,
    published: Sequence[PublishedPort],
    targets: Iterable[Target],
) -> list[dict[str, Any]]:
    """The Service and the HTTPRoutes (one per port) or the Ingress, with the environment's metadata."""
    metadata = statefulset["metadata"]
    instance = metadata["labels"][naming.LABEL_INSTANCE]
    ports = _unique_ports(published)
    table = rows(exposure, env_id, published, targets)
    routing_service = service_name(instance)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": routing_service,
            "namespace": exposure.namespace,
            "annotations": {ANNOTATION_URLS: json.dumps([r.as_json() for r in table], separators=(",", ":"))},
        },
        "spec": {
            "type": "ClusterIP",
            "selector": dict(statefulset["spec"]["selector"]["matchLabels"]),
            "ports": [
                {
                    "name": f"tcp-{p.published}",
                    "protocol": "TCP",
                    "port": p.published,
                    "targetPort": p.published,
                }
                for p in ports
            ],
        },
    }
    if exposure.mode == "gateway":
        routes = [_http_route(exposure, instance, routing_service, env_id, p) for p in ports]
    else:
        routes = [_ingress(exposure, instance, routing_service, env_id, ports)] if ports else []
    objects = [service, *routes]
    annotations = metadata.get("annotations") or {}
    for index, obj in enumerate(objects):
        template.add_object_metadata(
            obj,
            index,
            profile_id=metadata["labels"][naming.LABEL_PROFILE_ID],
            env_id=env_id,
            instance=instance,
            created_at=annotations.get(naming.ANNOTATION_CREATED_AT, ""),
            template_hash=annotations.get(naming.ANNOTATION_TEMPLATE_HASH, ""),
        )
        obj["metadata"]["labels"][naming.LABEL_COMPONENT] = COMPONENT
    return objects


def _http_route(
    exposure: Exposure, instance: str, service: str, env_id: str, port: PublishedPort
) -> dict[str, Any]:
    assert exposure.gateway is not None
    gw_namespace, gw_name = exposure.gateway
    return {
        "apiVersion": ROUTE_TYPE["apiVersion"],
        "kind": "HTTPRoute",
        "metadata": {
            "name": object_name(instance, port.service, str(port.port)),
            "namespace": exposure.namespace,
        },
        "spec": {
            "parentRefs": [
                {"group": GATEWAY_GROUP, "kind": "Gateway", "namespace": gw_namespace, "name": gw_name}
            ],
            "hostnames": [exposure.hostname(port.service, port.port, env_id)],
            "rules": [{"backendRefs": [{"name": service, "port": port.published}]}],
        },
    }


def _ingress(
    exposure: Exposure, instance: str, service: str, env_id: str, ports: Sequence[PublishedPort]
) -> dict[str, Any]:
    hosts = [exposure.hostname(p.service, p.port, env_id) for p in ports]
    spec: dict[str, Any] = {}
    if exposure.ingress_class:
        spec["ingressClassName"] = exposure.ingress_class
    if exposure.tls_secret or exposure.cluster_issuer:
        secret = exposure.tls_secret or object_name(instance, "tls")
        spec["tls"] = [{"hosts": hosts, "secretName": secret}]
    spec["rules"] = [
        {
            "host": host,
            "http": {
                "paths": [
                    {
                        "path": "/",
                        "pathType": "Prefix",
                        "backend": {"service": {"name": service, "port": {"number": p.published}}},
                    }
                ]
            },
        }
        for host, p in zip(hosts, ports, strict=True)
    ]
    metadata: dict[str, Any] = {"name": object_name(instance, "public"), "namespace": exposure.namespace}
    if exposure.cluster_issuer:
        metadata["annotations"] = {ANNOTATION_CLUSTER_ISSUER: exposure.cluster_issuer}
    return {"apiVersion": INGRESS_TYPE["apiVersion"], "kind": "Ingress", "metadata": metadata, "spec": spec}


# --- in the cluster --------------------------------------------------------------------------------


def selector(instance: str) -> str:
    return f"{naming.LABEL_INSTANCE}={instance},{naming.LABEL_COMPONENT}={COMPONENT}"


def remove_stale(
    kubectl: Kubectl, instance: str, objects: Sequence[dict[str, Any]], resources: Iterable[str]
) -> None:
    """Delete this instance's routing objects that are not in `objects` (a port or a mode gone)."""
    wanted = {(o["kind"].lower(), o["metadata"]["name"]) for o in objects}
    for resource in dict.fromkeys(resources):
        result = kubectl.run("get", resource, "-l", selector(instance), "-o", "name")
        if not result.ok:
            continue  # a type the cluster does not serve holds nothing of ours
        for line in result.stdout.split():
            kind, _, name = line.partition("/")
            if (kind.split(".")[0], name) not in wanted:
                kubectl.check("delete", resource, name, "--ignore-not-found", "--wait=false")


def resource_names(exposure: Exposure | None, declared: Iterable[str]) -> list[str]:
    """The routing types to look through: those of this exposure, and those the environment declared."""
    names = ["services"]
    names += [ROUTES] if exposure is not None and exposure.mode == "gateway" else []
    names += [INGRESSES] if exposure is not None and exposure.mode == "ingress" else []
    for name in declared:
        if name.startswith("HTTPRoute."):
            names.append(ROUTES)
        elif name.startswith("Ingress."):
            names.append(INGRESSES)
    return list(dict.fromkeys(names))


def wait_accepted(
    kubectl: Kubectl, exposure: Exposure, objects: Sequence[dict[str, Any]], timeout: float, hint: str
) -> None:
    """Until every HTTPRoute is Accepted with its refs resolved, or the Ingress has an address.
    A refusal by the Gateway's controller ends the wait at once, explained in one line."""
    routes = [o for o in objects if o["kind"] in ("HTTPRoute", "Ingress")]
    if not routes:
        return
    console.step(messages.WAITING_ROUTES.format(count=len(routes), kind=routes[0]["kind"]))
    deadline = time.monotonic() + timeout
    pending = {o["metadata"]["name"] for o in routes}
    last = ""
    resource = ROUTES if exposure.mode == "gateway" else INGRESSES
    while True:
        found = kubectl.json(resource, "-l", selector(routes[0]["metadata"]["labels"][naming.LABEL_INSTANCE]))
        for obj in found.get("items") or []:
            name = obj["metadata"]["name"]
            if name not in pending:
                continue
            done, why = (
                _route_state(exposure, obj, hint) if exposure.mode == "gateway" else _ingress_state(obj)
            )
            if done:
                pending.discard(name)
            elif why:
                last = f"{routes[0]['kind']} {name}: {why}"
        if not pending:
            return
        if time.monotonic() > deadline:
            message = (
                messages.ROUTE_NOT_ACCEPTED if exposure.mode == "gateway" else messages.INGRESS_NO_ADDRESS
            )
            raise PreevyError(
                message.format(
                    names=", ".join(sorted(pending)),
                    timeout=f"{timeout:g}s",
                    detail=last or messages.NO_CONTROLLER_STATUS,
                    hint=hint,
                ),
                ExitCode.TIMEOUT,
            )
        time.sleep(POLL_SECONDS)


def _route_state(exposure: Exposure, route: dict[str, Any], hint: str) -> tuple[bool, str]:
    """(accepted and resolved, why not yet); a refusal raises PreevyError(REFUSED)."""
    assert exposure.gateway is not None
    gw_namespace, gw_name = exposure.gateway
    for parent in (route.get("status") or {}).get("parents") or []:
        ref = parent.get("parentRef") or {}
        if (
            ref.get("name") != gw_name
            or (ref.get("namespace") or route["metadata"]["namespace"]) != gw_namespace
        ):
            continue
        conditions = {c.get("type"): c for c in parent.get("conditions") or []}
        accepted, resolved = conditions.get("Accepted") or {}, conditions.get("ResolvedRefs") or {}
        if accepted.get("status") == "False":
            raise PreevyError(
                messages.ROUTE_REFUSED.format(
                    gateway=f"{gw_namespace}/{gw_name}",
                    route=route["metadata"]["name"],
                    explanation=_refusal(accepted.get("reason", ""), route, gw_namespace, gw_name),
                    hint=hint,
                ),
                ExitCode.REFUSED,
            )
        if accepted.get("status") == "True" and resolved.get("status", "True") == "True":
            return True, ""
        if resolved.get("status") == "False":
            return False, f"{resolved.get('reason')}: {resolved.get('message', '')}"
        return False, "not accepted yet"
    return False, ""


def _refusal(reason: str, route: dict[str, Any], gw_namespace: str, gw_name: str) -> str:
    hosts = ", ".join((route.get("spec") or {}).get("hostnames") or [])
    return {
        "NotAllowedByListeners": messages.REFUSED_NAMESPACE.format(namespace=route["metadata"]["namespace"]),
        "NoMatchingListenerHostname": messages.REFUSED_HOSTNAME.format(hosts=hosts),
        "NoMatchingParent": messages.REFUSED_NO_PARENT.format(gateway=f"{gw_namespace}/{gw_name}"),
    }.get(reason, reason)


def _ingress_state(ingress: dict[str, Any]) -> tuple[bool, str]:
    addresses = (((ingress.get("status") or {}).get("loadBalancer")) or {}).get("ingress") or []
    return bool(addresses), "" if addresses else "no address yet"


def read_rows(kubectl: Kubectl, instance: str) -> list[Row] | None:
    """The URL table recorded on the environment's routing Service; None when it is not exposed.
    The Service is read by name (a `share` kubeconfig may get it, not list)."""
    result = kubectl.check("get", "services", service_name(instance), "--ignore-not-found", "-o", "json")
    service = json.loads(result.stdout) if result.stdout.strip() else None
    labels = (service or {}).get("metadata", {}).get("labels") or {}
    if service is None or labels.get(naming.LABEL_COMPONENT) != COMPONENT:
        return None
    recorded = (service["metadata"].get("annotations") or {}).get(ANNOTATION_URLS, "[]")
    try:
        entries = json.loads(recorded)
    except json.JSONDecodeError:
        entries = []
    return [
        Row(e.get("service", ""), e.get("port"), e.get("url"), e.get("reason"))
        for e in entries
        if isinstance(e, dict)
    ]
