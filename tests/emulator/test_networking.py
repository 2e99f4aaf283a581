"""Ingress, IngressClass and the Gateway API: status as a real implementation writes it, and the
data plane serving a pod's page on 127.0.0.1 by Host header and SNI (HTTP and HTTPS)."""

from __future__ import annotations

import json
import time

import pytest

from tests.routing import GW, certificate, curl, gateway, tls_secret


def web_app(kubesim, namespace: str, page: str) -> None:
    """A pod serving `page` on 8080 (busybox httpd) and a Service `web` port 80 -> 8080."""
    manifest = f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: site}}
data: {{index.html: "{page}"}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web, labels: {{app: web}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: busybox:1.36
    command: ["busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
    readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
    volumeMounts: [{{name: site, mountPath: /www}}]
  volumes: [{{name: site, configMap: {{name: site}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
"""
    kubesim.kubectl("apply", "-n", namespace, "--server-side", "--validate=strict", "-f", "-", input=manifest)
    kubesim.kubectl("wait", "-n", namespace, "pod/web", "--for=condition=Ready", "--timeout=60s")


def apply(kubesim, namespace: str, manifest: str) -> None:
    kubesim.kubectl("apply", "-n", namespace, "--server-side", "--validate=strict", "-f", "-", input=manifest)


def get(kubesim, namespace: str, kind: str, name: str) -> dict:
    return json.loads(kubesim.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout)


def route_conditions(kubesim, namespace: str, name: str, timeout: float = 20) -> dict[str, tuple[str, str]]:
    """type -> (status, reason) of the route's first parent, once the controller wrote it."""
    deadline = time.monotonic() + timeout
    while True:
        parents = (get(kubesim, namespace, "httproute", name).get("status") or {}).get("parents") or []
        if parents or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert parents, f"HTTPRoute {name} got no status"
    return {c["type"]: (c["status"], c["reason"]) for c in parents[0]["conditions"]}


def http_route(name: str, gateway_ref: str, host: str, service: str = "web", port: int = 80) -> str:
    namespace, _, gw_name = gateway_ref.rpartition("/")
    ns_line = f", namespace: {namespace}" if namespace else ""
    return f"""
apiVersion: {GW}
kind: HTTPRoute
metadata: {{name: {name}}}
spec:
  parentRefs: [{{name: {gw_name}{ns_line}}}]
  hostnames: ["{host}"]
  rules:
  - backendRefs: [{{name: {service}, port: {port}}}]
"""


def test_classes_are_served_in_discovery_and_the_defaults_exist(kubesim):
    names = kubesim.kubectl("api-resources", "-o", "name").stdout.split()
    for resource in (
        "ingresses.networking.k8s.io",
        "ingressclasses.networking.k8s.io",
        "gatewayclasses.gateway.networking.k8s.io",
        "gateways.gateway.networking.k8s.io",
        "httproutes.gateway.networking.k8s.io",
    ):
        assert resource in names
    ic = json.loads(kubesim.kubectl("get", "ingressclass", "kubesim", "-o", "json").stdout)
    assert ic["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] == "true"
    gc = json.loads(kubesim.kubectl("get", "gatewayclass", "kubesim", "-o", "json").stdout)
    assert gc["spec"]["controllerName"] == "kubesim.io/gateway-controller"
    assert [(c["type"], c["status"]) for c in gc["status"]["conditions"]] == [("Accepted", "True")]


def test_strict_validation_rejects_an_unknown_gateway_field(kubesim, namespace):
    bad = gateway("strict", "x.test").replace("hostname:", "hostnam:")
    result = kubesim.kubectl(
        "apply", "-n", namespace, "--server-side", "--validate=strict", "-f", "-", input=bad, check=False
    )
    assert result.returncode != 0
    assert "spec.listeners[0].hostnam: field not declared in schema" in result.stderr


def test_gateway_serves_http_and_https_by_host_and_sni(kubesim, namespace, tmp_path):
    domain = f"{namespace}.gw.test"
    crt, key = certificate(tmp_path, domain)
    web_app(kubesim, namespace, "hello through the gateway")
    tls_secret(kubesim, namespace, "wildcard", crt, key)
    apply(kubesim, namespace, gateway("gw", domain, secret="wildcard"))
    apply(kubesim, namespace, http_route("web", "gw", f"app.{domain}"))

    assert route_conditions(kubesim, namespace, "web") == {
        "Accepted": ("True", "Accepted"),
        "ResolvedRefs": ("True", "ResolvedRefs"),
    }
    ports = kubesim.dataplane()["gateways"][f"{namespace}/gw"]
    assert sorted(ports) == ["443", "80"]
    assert curl(f"http://app.{domain}/", ports["80"]) == (200, "hello through the gateway")
    assert curl(f"https://app.{domain}/", ports["443"], ca=crt) == (200, "hello through the gateway")
    assert curl(f"http://other.{domain}/", ports["80"], timeout=0)[0] == 404

    status = get(kubesim, namespace, "gateway", "gw")["status"]
    assert status["addresses"] == [{"type": "IPAddress", "value": "127.0.0.1"}]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Accepted": "True",
        "Programmed": "True",
    }
    assert [(ls["name"], ls["attachedRoutes"]) for ls in status["listeners"]] == [("http", 1), ("https", 1)]

    kubesim.kubectl("delete", "httproute", "web", "-n", namespace)
    assert curl(f"http://app.{domain}/", ports["80"], timeout=0)[0] == 404
    kubesim.kubectl("delete", "gateway", "gw", "-n", namespace)
    deadline = time.monotonic() + 10
    while f"{namespace}/gw" in kubesim.dataplane()["gateways"]:
        assert time.monotonic() < deadline, "the Gateway's listeners stayed open"
        time.sleep(0.2)


def test_route_refusals_have_the_reasons_of_the_gateway_api(kubesim, namespace):
    domain = f"{namespace}.gw.test"
    web_app(kubesim, namespace, "refusals")
    apply(kubesim, namespace, gateway("gw", domain))
    other = f"{namespace}-other"
    kubesim.kubectl("create", "namespace", other)
    try:
        apply(kubesim, other, http_route("elsewhere", f"{namespace}/gw", f"app.{domain}"))
        assert route_conditions(kubesim, other, "elsewhere")["Accepted"] == ("False", "NotAllowedByListeners")
    finally:
        kubesim.kubectl("delete", "namespace", other, "--wait=false")
    apply(kubesim, namespace, http_route("wrong-host", "gw", "app.example.org"))
    assert route_conditions(kubesim, namespace, "wrong-host")["Accepted"] == (
        "False",
        "NoMatchingListenerHostname",
    )
    apply(kubesim, namespace, http_route("no-gateway", "missing", f"app.{domain}"))
    assert route_conditions(kubesim, namespace, "no-gateway")["Accepted"] == ("False", "NoMatchingParent")
    apply(kubesim, namespace, http_route("no-backend", "gw", f"app.{domain}", service="nothing"))
    assert route_conditions(kubesim, namespace, "no-backend") == {
        "Accepted": ("True", "Accepted"),
        "ResolvedRefs": ("False", "BackendNotFound"),
    }


def test_selector_namespaces_are_honoured(kubesim, namespace):
    domain = f"{namespace}.gw.test"
    web_app(kubesim, namespace, "selected")
    apply(
        kubesim,
        namespace,
        gateway("gw", domain).replace(
            "{from: Same}", "{from: Selector, selector: {matchLabels: {preview: 'yes'}}}"
        ),
    )
    apply(kubesim, namespace, http_route("web", "gw", f"app.{domain}"))
    assert route_conditions(kubesim, namespace, "web")["Accepted"] == ("False", "NotAllowedByListeners")
    kubesim.kubectl("label", "namespace", namespace, "preview=yes")
    deadline = time.monotonic() + 20
    while route_conditions(kubesim, namespace, "web")["Accepted"] != ("True", "Accepted"):
        assert time.monotonic() < deadline, "the route was not accepted once its namespace was selected"
        time.sleep(0.2)
    port = kubesim.dataplane()["gateways"][f"{namespace}/gw"]["80"]
    assert curl(f"http://app.{domain}/", port) == (200, "selected")


@pytest.mark.parametrize("with_class", [False, True])
def test_ingress_gets_the_default_class_an_address_and_serves(kubesim, namespace, tmp_path, with_class):
    domain = f"{namespace}.ing.test"
    crt, key = certificate(tmp_path, domain)
    web_app(kubesim, namespace, "hello through the ingress")
    tls_secret(kubesim, namespace, "wildcard", crt, key)
    class_line = "\n  ingressClassName: kubesim" if with_class else ""
    apply(
        kubesim,
        namespace,
        f"""
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: web}}
spec:{class_line}
  tls: [{{hosts: ["*.{domain}"], secretName: wildcard}}]
  rules:
  - host: app.{domain}
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
""",
    )
    deadline = time.monotonic() + 20
    while (
        not (get(kubesim, namespace, "ingress", "web").get("status") or {})
        .get("loadBalancer", {})
        .get("ingress")
    ):
        assert time.monotonic() < deadline, "the Ingress got no address"
        time.sleep(0.2)
    ingress = get(kubesim, namespace, "ingress", "web")
    assert ingress["spec"]["ingressClassName"] == "kubesim"
    assert ingress["status"]["loadBalancer"]["ingress"] == [{"ip": "127.0.0.1"}]
    ports = kubesim.dataplane()["ingress"]
    assert curl(f"http://app.{domain}/", ports["http"]) == (200, "hello through the ingress")
    assert curl(f"https://app.{domain}/", ports["https"], ca=crt) == (200, "hello through the ingress")


def test_kubectl_get_prints_the_columns_of_a_real_cluster(kubesim, namespace):
    domain = f"{namespace}.cols.test"
    web_app(kubesim, namespace, "columns")
    apply(kubesim, namespace, gateway("gw", domain))
    apply(kubesim, namespace, http_route("web", "gw", f"app.{domain}"))
    route_conditions(kubesim, namespace, "web")
    gateways = kubesim.kubectl("get", "gateways", "-n", namespace).stdout.splitlines()
    assert gateways[0].split() == ["NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"]
    assert gateways[1].split()[:4] == ["gw", "kubesim", "127.0.0.1", "True"]
    routes = kubesim.kubectl("get", "httproutes", "-n", namespace).stdout.splitlines()
    assert routes[1].split()[:2] == ["web", f'["app.{domain}"]']
    classes = kubesim.kubectl("get", "ingressclass").stdout.splitlines()
    assert classes[1].split()[:2] == ["kubesim", "kubesim.io/ingress-controller"]
