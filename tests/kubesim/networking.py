"""The ingress and Gateway API controller: status of Ingresses, GatewayClasses, Gateways and
HTTPRoutes as a conformant implementation writes it, and the routing table the data plane reads.

Class `kubesim` (IngressClass, default; GatewayClass with CONTROLLER_NAME) is the only one served;
objects of other classes are left alone, as a real controller leaves them."""

from __future__ import annotations

import dataclasses
import logging

from . import selectors
from .controllers import Controller
from .store import now

log = logging.getLogger("kubesim.networking")

CLASS_NAME = "kubesim"
CONTROLLER_NAME = "kubesim.io/gateway-controller"
INGRESS_CONTROLLER = "kubesim.io/ingress-controller"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
GROUP = "gateway.networking.k8s.io"
ADDRESS = "127.0.0.1"
ROUTE_KINDS = [{"group": GROUP, "kind": "HTTPRoute"}]
WATCHED = {  # pods are not: the data plane picks a ready pod for each connection
    "services",
    "secrets",
    "namespaces",
    "ingresses.networking.k8s.io",
    "ingressclasses.networking.k8s.io",
    "gatewayclasses.gateway.networking.k8s.io",
    "gateways.gateway.networking.k8s.io",
    "httproutes.gateway.networking.k8s.io",
}


@dataclasses.dataclass(frozen=True)
class Backend:
    namespace: str
    service: str
    port: int | str  # the Service's port (number, or name for an Ingress)


@dataclasses.dataclass(frozen=True)
class Route:
    """One way in: requests for `host` (exact or `*.suffix`) under `path` go to `backend`."""

    host: str | None  # None: any host
    path: str  # a prefix ("/" for all)
    exact: bool
    backend: Backend | None  # None: a rule whose backend did not resolve (answered 500)


@dataclasses.dataclass
class Listener:
    """The listeners of one Gateway port (several may share it, told apart by hostname / SNI)."""

    tls: bool
    routes: list[Route]
    certificates: dict[str | None, tuple[str, str]]  # listener hostname -> (secret namespace, name)


@dataclasses.dataclass
class RoutingTable:
    ingress_http: list[Route] = dataclasses.field(default_factory=list)
    ingress_certificates: dict[str | None, tuple[str, str]] = dataclasses.field(default_factory=dict)
    gateways: dict[tuple[str, str, int], Listener] = dataclasses.field(default_factory=dict)


def seed(cluster) -> None:
    """The classes a kubesim cluster comes with."""
    cluster.create_object(
        "ingressclasses.networking.k8s.io",
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": CLASS_NAME, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
            "spec": {"controller": INGRESS_CONTROLLER},
        },
    )
    cluster.create_object(
        "gatewayclasses.gateway.networking.k8s.io",
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "GatewayClass",
            "metadata": {"name": CLASS_NAME},
            "spec": {"controllerName": CONTROLLER_NAME, "description": "kubesim's data plane on 127.0.0.1"},
        },
    )


def default_ingress_class(store) -> str | None:
    """The DefaultIngressClass admission plugin's choice (the newest default class)."""
    defaults = [
        c
        for c in store.list("ingressclasses.networking.k8s.io")
        if ((c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION)) == "true"
    ]
    defaults.sort(key=lambda c: c["metadata"].get("creationTimestamp", ""))
    return defaults[-1]["metadata"]["name"] if defaults else None


def condition(type_: str, ok: bool, reason: str, message: str, generation: int) -> dict:
    return {
        "type": type_,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": now(),
    }


def _keep_transition_times(new: list[dict], old: list[dict] | None) -> list[dict]:
    before = {c.get("type"): c for c in old or []}
    for c in new:
        previous = before.get(c["type"])
        if previous and previous.get("status") == c["status"] and previous.get("lastTransitionTime"):
            c["lastTransitionTime"] = previous["lastTransitionTime"]
    return new


def hostname_matches(pattern: str | None, host: str) -> bool:
    """Gateway API hostname matching: `*.example.com` matches one or more labels before example.com."""
    if not pattern:
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def _hosts_intersect(listener_host: str | None, route_hosts: list[str]) -> list[str | None]:
    """The route hostnames a listener accepts ([None] = any host)."""
    if not route_hosts:
        return [listener_host]
    out: list[str | None] = []
    for h in route_hosts:
        if hostname_matches(listener_host, h) or (
            h.startswith("*.") and listener_host and hostname_matches(h, listener_host)
        ):
            out.append(h)
    return out


class NetworkingController(Controller):
    def __init__(self, cluster):
        super().__init__(cluster)
        self._dirty = True
        self.table = RoutingTable()

    def observe(self, event_type, key, obj):
        if key in WATCHED:
            self._dirty = True

    def reconcile(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        table = RoutingTable()
        self._gateway_classes()
        self.gateway_listeners(table)
        attached = self._routes(table)
        self._gateways(table, attached)
        self._ingresses(table)
        self.table = table
        dataplane = getattr(self.cluster, "dataplane", None)
        if dataplane is not None:
            dataplane.update(table)

    # ---------------------------------------------------------------- classes
    def _gateway_classes(self) -> None:
        for gc in self.store.list("gatewayclasses.gateway.networking.k8s.io"):
            if (gc.get("spec") or {}).get("controllerName") != CONTROLLER_NAME:
                continue
            gen = gc["metadata"].get("generation", 1)
            conditions = [condition("Accepted", True, "Accepted", "Handled by kubesim", gen)]
            self._set_status("gatewayclasses.gateway.networking.k8s.io", gc, {"conditions": conditions})

    def _our_class(self, name: str | None) -> bool:
        if not name:
            return False
        gc = self.store.get("gatewayclasses.gateway.networking.k8s.io", None, name)
        return bool(gc) and (gc.get("spec") or {}).get("controllerName") == CONTROLLER_NAME

    # ---------------------------------------------------------------- routes
    def _routes(self, table: RoutingTable) -> dict[tuple[str, str, str], int]:
        """HTTPRoute statuses; the routes attached to each listener go into the table. Returns
        the number of routes attached per (gateway namespace, gateway name, listener name)."""
        attached: dict[tuple[str, str, str], int] = {}
        for route in self.store.list("httproutes.gateway.networking.k8s.io"):
            meta, spec = route["metadata"], route.get("spec") or {}
            ns, gen = meta["namespace"], meta.get("generation", 1)
            rules = self._rules(ns, spec)
            unresolved = next((why for _, why in rules if why), None)
            parents: list[dict] = []
            for ref in spec.get("parentRefs") or []:
                accepted, reason, message, listeners = self._attach(ns, spec, ref)
                for gw_ns, gw_name, listener in listeners if accepted else []:
                    attached[(gw_ns, gw_name, listener["name"])] = (
                        attached.get((gw_ns, gw_name, listener["name"]), 0) + 1
                    )
                    self._table_routes(table, gw_ns, gw_name, listener, spec, rules)
                if reason is None:
                    continue  # a parent of another controller
                conditions = [condition("Accepted", accepted, reason, message, gen)]
                conditions.append(
                    condition(
                        "ResolvedRefs",
                        unresolved is None,
                        "ResolvedRefs" if unresolved is None else "BackendNotFound",
                        "Resolved all the Object references for the Route"
                        if unresolved is None
                        else unresolved,
                        gen,
                    )
                )
                parents.append(
                    {
                        "parentRef": _parent_ref(ref, ns),
                        "controllerName": CONTROLLER_NAME,
                        "conditions": conditions,
                    }
                )
            old: dict[tuple, dict] = {
                _ref_key(p.get("parentRef"), ns): p for p in (route.get("status") or {}).get("parents") or []
            }
            for p in parents:
                prev = old.get(_ref_key(p["parentRef"], ns))
                _keep_transition_times(p["conditions"], (prev or {}).get("conditions"))
            self._set_status("httproutes.gateway.networking.k8s.io", route, {"parents": parents})
        return attached

    def _attach(self, ns: str, spec: dict, ref: dict) -> tuple[bool, str | None, str, list]:
        """(accepted, reason, message, [(gw ns, gw name, listener)]); reason None: not ours."""
        if (ref.get("group") or GROUP) != GROUP or (ref.get("kind") or "Gateway") != "Gateway":
            return False, None, "", []
        gw_ns = ref.get("namespace") or ns
        gw = self.store.get("gateways.gateway.networking.k8s.io", gw_ns, ref.get("name", ""))
        if gw is None:
            return False, "NoMatchingParent", f"Gateway {gw_ns}/{ref.get('name')} not found", []
        if not self._our_class((gw.get("spec") or {}).get("gatewayClassName")):
            return False, None, "", []
        listeners = [
            lst
            for lst in (gw.get("spec") or {}).get("listeners") or []
            if (not ref.get("sectionName") or lst.get("name") == ref["sectionName"])
            and (not ref.get("port") or lst.get("port") == ref["port"])
        ]
        if not listeners:
            return False, "NoMatchingParent", "No listener matches the parentRef's sectionName or port", []
        allowed = [lst for lst in listeners if self._allows(lst, gw_ns, ns)]
        if not allowed:
            return (
                False,
                "NotAllowedByListeners",
                f"No listener of Gateway {gw_ns}/{gw['metadata']['name']} allows HTTPRoutes from namespace {ns}",
                [],
            )
        hosts = spec.get("hostnames") or []
        matching = [lst for lst in allowed if _hosts_intersect(lst.get("hostname"), hosts)]
        if not matching:
            return (
                False,
                "NoMatchingListenerHostname",
                "No listener hostname matches the route's hostnames " + ", ".join(hosts),
                [],
            )
        return (
            True,
            "Accepted",
            "Route is accepted",
            [(gw_ns, gw["metadata"]["name"], lst) for lst in matching],
        )

    def _allows(self, listener: dict, gw_ns: str, route_ns: str) -> bool:
        if listener.get("protocol") not in ("HTTP", "HTTPS"):
            return False
        allowed = listener.get("allowedRoutes") or {}
        kinds = allowed.get("kinds")
        if kinds and not any(
            (k.get("group") or GROUP) == GROUP and k.get("kind") == "HTTPRoute" for k in kinds
        ):
            return False
        namespaces = allowed.get("namespaces") or {}
        source = namespaces.get("from") or "Same"
        if source == "All":
            return True
        if source == "Same":
            return gw_ns == route_ns
        if source == "Selector":
            ns_obj = self.store.get("namespaces", None, route_ns)
            reqs = selectors.selector_from_label_selector(namespaces.get("selector"))
            return ns_obj is not None and selectors.match_labels(reqs, ns_obj["metadata"].get("labels"))
        return False

    def _rules(self, ns: str, spec: dict) -> list[tuple[list[tuple[str, bool, Backend | None]], str | None]]:
        """Per rule: its (path, exact, backend) matches, and why a backend did not resolve."""
        out = []
        for rule in spec.get("rules") or [{}]:
            backend, why = None, None
            for ref in rule.get("backendRefs") or []:
                if (ref.get("group") or "") != "" or (ref.get("kind") or "Service") != "Service":
                    why = why or f"Unsupported backend kind {ref.get('kind')}"
                    continue
                ref_ns = ref.get("namespace") or ns
                svc = self.store.get("services", ref_ns, ref.get("name", ""))
                if ref_ns != ns:
                    why = (
                        why
                        or f"Backend {ref_ns}/{ref.get('name')} is in another namespace (no ReferenceGrant)"
                    )
                elif svc is None:
                    why = why or f"Service {ns}/{ref.get('name')} not found"
                elif not any(
                    p.get("port") == ref.get("port") for p in (svc.get("spec") or {}).get("ports") or []
                ):
                    why = why or f"Service {ns}/{ref.get('name')} has no port {ref.get('port')}"
                elif backend is None:
                    backend = Backend(ns, ref["name"], ref["port"])
            paths = []
            for match in rule.get("matches") or [{}]:
                path = match.get("path") or {}
                paths.append((path.get("value") or "/", path.get("type") == "Exact", backend))
            out.append((paths, why))
        return out

    def _table_routes(
        self, table: RoutingTable, gw_ns: str, gw_name: str, listener: dict, spec: dict, rules
    ) -> None:
        entry = table.gateways.get((gw_ns, gw_name, listener.get("port", 0)))
        if entry is None:
            return
        for host in _hosts_intersect(listener.get("hostname"), spec.get("hostnames") or []):
            for paths, _ in rules:
                for path, exact, backend in paths:
                    entry.routes.append(Route(host, path, exact, backend))

    # ---------------------------------------------------------------- gateways
    def _gateways(self, table: RoutingTable, attached: dict[tuple[str, str, str], int]) -> None:
        for gw in self.store.list("gateways.gateway.networking.k8s.io"):
            if not self._our_class((gw.get("spec") or {}).get("gatewayClassName")):
                continue
            ns, name, gen = (
                gw["metadata"]["namespace"],
                gw["metadata"]["name"],
                gw["metadata"].get("generation", 1),
            )
            old = gw.get("status") or {}
            old_listeners = {ls.get("name"): ls for ls in old.get("listeners") or []}
            statuses = []
            for lst in (gw.get("spec") or {}).get("listeners") or []:
                ok, reason, message = self._listener_refs(ns, lst)
                supported = lst.get("protocol") in ("HTTP", "HTTPS")
                conditions = [
                    condition(
                        "Accepted",
                        supported,
                        "Accepted" if supported else "UnsupportedProtocol",
                        "Listener is accepted"
                        if supported
                        else f"Protocol {lst.get('protocol')} is not supported",
                        gen,
                    ),
                    condition("Conflicted", False, "NoConflicts", "No conflicts", gen),
                    condition("ResolvedRefs", ok, reason, message, gen),
                    condition(
                        "Programmed",
                        ok and supported,
                        "Programmed" if ok and supported else "Invalid",
                        "Listener is programmed" if ok and supported else message,
                        gen,
                    ),
                ]
                _keep_transition_times(
                    conditions, (old_listeners.get(lst.get("name")) or {}).get("conditions")
                )
                statuses.append(
                    {
                        "name": lst.get("name"),
                        "supportedKinds": ROUTE_KINDS if supported else [],
                        "attachedRoutes": attached.get((ns, name, lst.get("name")), 0),
                        "conditions": conditions,
                    }
                )
            conditions = [
                condition("Accepted", True, "Accepted", "Gateway is accepted", gen),
                condition("Programmed", True, "Programmed", f"Gateway is programmed on {ADDRESS}", gen),
            ]
            _keep_transition_times(conditions, old.get("conditions"))
            status = {
                "addresses": [{"type": "IPAddress", "value": ADDRESS}],
                "conditions": conditions,
                "listeners": statuses,
            }
            self._set_status("gateways.gateway.networking.k8s.io", gw, status)

    def gateway_listeners(self, table: RoutingTable) -> None:
        """Listeners of every Gateway of our class (before routes attach to them)."""
        for gw in self.store.list("gateways.gateway.networking.k8s.io"):
            if not self._our_class((gw.get("spec") or {}).get("gatewayClassName")):
                continue
            ns, name = gw["metadata"]["namespace"], gw["metadata"]["name"]
            for lst in (gw.get("spec") or {}).get("listeners") or []:
                if lst.get("protocol") not in ("HTTP", "HTTPS") or not isinstance(lst.get("port"), int):
                    continue
                key = (ns, name, lst["port"])
                entry = table.gateways.setdefault(
                    key, Listener(tls=lst["protocol"] == "HTTPS", routes=[], certificates={})
                )
                if lst["protocol"] == "HTTPS":
                    for ref in (lst.get("tls") or {}).get("certificateRefs") or []:
                        entry.certificates[lst.get("hostname")] = (
                            ref.get("namespace") or ns,
                            ref.get("name", ""),
                        )
                        break

    def _listener_refs(self, ns: str, listener: dict) -> tuple[bool, str, str]:
        if listener.get("protocol") != "HTTPS":
            return True, "ResolvedRefs", "All references resolved"
        refs = (listener.get("tls") or {}).get("certificateRefs") or []
        if not refs:
            return False, "InvalidCertificateRef", "HTTPS listener has no certificateRefs"
        for ref in refs:
            secret = self.store.get("secrets", ref.get("namespace") or ns, ref.get("name", ""))
            if secret is None:
                return (
                    False,
                    "InvalidCertificateRef",
                    f"Secret {ref.get('namespace') or ns}/{ref.get('name')} not found",
                )
            data = secret.get("data") or {}
            if secret.get("type") != "kubernetes.io/tls" and not ("tls.crt" in data and "tls.key" in data):
                return False, "InvalidCertificateRef", f"Secret {ref.get('name')} is not a TLS Secret"
        return True, "ResolvedRefs", "All references resolved"

    # ---------------------------------------------------------------- ingresses
    def _ingresses(self, table: RoutingTable) -> None:
        for ing in self.store.list("ingresses.networking.k8s.io"):
            meta, spec = ing["metadata"], ing.get("spec") or {}
            cls = spec.get("ingressClassName") or (meta.get("annotations") or {}).get(
                "kubernetes.io/ingress.class"
            )
            ic = self.store.get("ingressclasses.networking.k8s.io", None, cls or "")
            if ic is None or (ic.get("spec") or {}).get("controller") != INGRESS_CONTROLLER:
                continue
            ns = meta["namespace"]
            for rule in spec.get("rules") or []:
                for path in ((rule.get("http") or {}).get("paths")) or []:
                    svc = ((path.get("backend") or {}).get("service")) or {}
                    port = (svc.get("port") or {}).get("number") or (svc.get("port") or {}).get("name")
                    backend = Backend(ns, svc.get("name", ""), port) if svc.get("name") and port else None
                    table.ingress_http.append(
                        Route(
                            rule.get("host"),
                            path.get("path") or "/",
                            path.get("pathType") == "Exact",
                            backend,
                        )
                    )
            for tls in spec.get("tls") or []:
                if tls.get("secretName"):
                    for host in tls.get("hosts") or [None]:
                        table.ingress_certificates.setdefault(host, (ns, tls["secretName"]))
            self._set_status(
                "ingresses.networking.k8s.io", ing, {"loadBalancer": {"ingress": [{"ip": ADDRESS}]}}
            )

    # ---------------------------------------------------------------- status writes
    def _set_status(self, key: str, obj: dict, status: dict) -> None:
        if obj.get("metadata", {}).get("deletionTimestamp"):
            return
        if _without_times(obj.get("status") or {}) != _without_times(status):
            self.store.patch_status(key, obj["metadata"].get("namespace"), obj["metadata"]["name"], status)


def _without_times(value):
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k != "lastTransitionTime"}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def _parent_ref(ref: dict, ns: str) -> dict:
    out = {"group": ref.get("group") or GROUP, "kind": ref.get("kind") or "Gateway", "name": ref.get("name")}
    out["namespace"] = ref.get("namespace") or ns
    for k in ("sectionName", "port"):
        if ref.get(k):
            out[k] = ref[k]
    return out


def _ref_key(ref: dict | None, ns: str) -> tuple:
    ref = ref or {}
    return (ref.get("namespace") or ns, ref.get("name"), ref.get("sectionName"), ref.get("port"))
