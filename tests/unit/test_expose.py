"""Hostnames, PREEVY_BASE_URI_* names, routable ports of a compose model, and the expose options."""

import argparse
import re

import pytest

from kubectl_preevy import expose, options
from kubectl_preevy.docker import PublishedPort
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.profiles import Profile


def test_hostname_is_service_port_env_id_under_the_domain():
    assert expose.hostname("web", 8080, "pr-7", "pr.example.com") == "web-8080-pr-7.pr.example.com"
    assert expose.hostname("My_API", 3000, "feat_x", "d.test") == "my-api-3000-feat-x.d.test"


def test_long_hostname_labels_are_cut_with_a_stable_lowercase_hash():
    long_id = "a-very-long-environment-id-from-a-branch-name-that-goes-on-and-on"
    first = expose.hostname("frontend", 3000, long_id, "pr.example.com")
    label = first.split(".")[0]
    assert len(label) == 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", label)
    assert first == expose.hostname("frontend", 3000, long_id, "pr.example.com")
    assert first != expose.hostname("frontend", 3001, long_id, "pr.example.com")


def test_base_uri_variable_is_prevys_name():
    assert expose.base_uri_variable("my-api", 3000) == "PREEVY_BASE_URI_MY_API_3000"


def test_compose_targets_flag_udp_and_host_network():
    model = {
        "services": {
            "web": {"ports": [{"target": 80, "published": "8080", "protocol": "tcp"}]},
            "dns": {"ports": [{"target": 53, "protocol": "udp"}]},
            "agent": {"network_mode": "host", "expose": ["9000"]},
            "worker": {},
        }
    }
    targets = expose.compose_targets(model)
    assert [(t.service, t.port, t.reason is None) for t in targets] == [
        ("agent", 9000, False),
        ("dns", 53, False),
        ("web", 80, True),
    ]
    assert "UDP" in targets[1].reason and "network_mode: host" in targets[0].reason


def test_base_uri_environment_uses_the_exposure_url():
    exposure = expose.Exposure("gateway", "d.test", "ns", "https", 8443, gateway=("ns", "gw"))
    env = expose.base_uri_environment(exposure, {"services": {"api": {"ports": [{"target": 3000}]}}}, "e")
    assert env == {"PREEVY_BASE_URI_API_3000": "https://api-3000-e.d.test:8443"}
    assert expose.base_uri_environment(None, {"services": {}}, "e") == {}


def resolve(**flags):
    fields = dict.fromkeys(options.OPTION_FIELDS.values())
    fields.update(flags)
    return options.resolve_options(argparse.Namespace(**fields), None, None, Profile("p", "p", {}), {})


def test_expose_options_parse_and_default_to_none():
    assert resolve().expose == "none"
    resolved = resolve(expose="Gateway", domain="*.PR.example.com", gateway="infra/shared")
    assert (resolved.expose, resolved.domain, resolved.gateway) == (
        "gateway",
        "pr.example.com",
        "infra/shared",
    )


def test_expose_options_come_from_the_environment():
    fields = dict.fromkeys(options.OPTION_FIELDS.values())
    resolved = options.resolve_options(
        argparse.Namespace(**fields),
        None,
        None,
        Profile("p", "p", {"expose": "gateway", "gateway": "gw"}),
        {"PREEVY_EXPOSE": "ingress", "PREEVY_DOMAIN": "d.test"},
    )
    assert (resolved.expose, resolved.domain, resolved.sources["expose"]) == (
        "ingress",
        "d.test",
        "env PREEVY_EXPOSE",
    )


@pytest.mark.parametrize(
    "flags,text",
    [
        ({"expose": "tunnel"}, "must be none, gateway or ingress"),
        ({"expose": "ingress", "domain": "bad domain"}, "must be a DNS domain"),
        ({"expose": "gateway", "domain": "d.test", "gateway": "a/b/c"}, "NAME or NAMESPACE/NAME"),
        ({"expose": "gateway", "domain": "d.test"}, "needs gateway: pass --gateway"),
        ({"expose": "ingress"}, "needs domain: pass --domain"),
    ],
)
def test_bad_expose_options_are_one_usage_error(flags, text):
    with pytest.raises(PreevyError) as caught:
        resolve(**flags)
    assert caught.value.exit_code == ExitCode.USAGE and text in caught.value.message
    assert "\n" not in caught.value.message


STATEFULSET = {
    "metadata": {
        "name": "default-pr-7-abcde",
        "labels": {"preevy.dev/instance": "default-pr-7-abcde", "preevy.dev/profile-id": "default"},
        "annotations": {"preevy.dev/created-at": "2026-01-01T00:00:00.000Z", "preevy.dev/template-hash": "h"},
    },
    "spec": {"selector": {"matchLabels": {"preevy.dev/instance": "default-pr-7-abcde"}}},
}
PUBLISHED = [PublishedPort("web", 8080, 8080), PublishedPort("api", 3000, 32768)]


def test_gateway_objects_are_a_service_and_one_route_per_port():
    exposure = expose.Exposure("gateway", "d.test", "ns", "https", None, gateway=("infra", "gw"))
    service, *routes = expose.build_objects(
        exposure, statefulset=STATEFULSET, env_id="pr-7", published=PUBLISHED, targets=[]
    )
    assert service["spec"]["selector"] == {"preevy.dev/instance": "default-pr-7-abcde"}
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(32768, 32768), (8080, 8080)]
    assert [r["spec"]["hostnames"] for r in routes] == [["api-3000-pr-7.d.test"], ["web-8080-pr-7.d.test"]]
    assert routes[0]["spec"]["parentRefs"][0] == {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "namespace": "infra",
        "name": "gw",
    }
    assert routes[0]["spec"]["rules"][0]["backendRefs"] == [
        {"name": service["metadata"]["name"], "port": 32768}
    ]
    for obj in (service, *routes):
        labels = obj["metadata"]["labels"]
        assert (
            labels["preevy.dev/env-id"] == "pr-7"
            and labels["app.kubernetes.io/component"] == "preview-routing"
        )
        assert len(obj["metadata"]["name"]) <= 63


def test_ingress_with_a_cluster_issuer_gets_its_annotation_and_a_certificate_secret():
    exposure = expose.Exposure("ingress", "d.test", "ns", "https", None, cluster_issuer="letsencrypt")
    _, ingress = expose.build_objects(
        exposure, statefulset=STATEFULSET, env_id="pr-7", published=PUBLISHED, targets=[]
    )
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["api-3000-pr-7.d.test", "web-8080-pr-7.d.test"], "secretName": "default-pr-7-abcde-tls"}
    ]
    assert "ingressClassName" not in ingress["spec"]  # the cluster's default class
    assert [r["host"] for r in ingress["spec"]["rules"]] == ["api-3000-pr-7.d.test", "web-8080-pr-7.d.test"]


def test_expose_options_are_accepted_in_x_preevy():
    fields = dict.fromkeys(options.OPTION_FIELDS.values())
    resolved = options.resolve_options(
        argparse.Namespace(**fields),
        {"drivers": {"kube-pod": {"expose": "ingress", "domain": "pr.example.com", "tls-secret": "wild"}}},
        None,
        Profile("p", "p", {}),
        {},
    )
    assert (resolved.expose, resolved.tls_secret) == ("ingress", "wild")
    assert resolved.sources["domain"].startswith("x-preevy in")
