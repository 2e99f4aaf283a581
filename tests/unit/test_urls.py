"""The URL table and its versioned JSON."""

import json

from kubectl_preevy import console, urls
from kubectl_preevy.docker import PublishedPort

PORTS = [PublishedPort("api", 3000, 3000), PublishedPort("web", 80, 8080)]


def test_urls_use_the_published_port_or_the_local_one_connect_chose():
    assert urls.service_urls(PORTS) == [
        urls.ServiceUrl("api", 3000, "http://localhost:3000"),
        urls.ServiceUrl("web", 80, "http://localhost:8080"),
    ]
    assert urls.service_urls(PORTS, {8080: 8081})[1].url == "http://localhost:8081"


def test_table_is_aligned_with_an_upper_case_header():
    assert urls.urls_table(urls.service_urls(PORTS)).splitlines() == [
        "SERVICE  PORT  URL",
        "api      3000  http://localhost:3000",
        "web      80    http://localhost:8080",
    ]


def test_json_document_is_versioned():
    document = urls.environment_document(
        "shop-main",
        "previews",
        "default-shop-main-ab12c",
        urls.service_urls(PORTS[:1]),
        instance="default-shop-main-ab12c",
    )
    assert json.loads(console.to_json(document)) == {
        "apiVersion": "kubectl-preevy/v1",
        "kind": "Environment",
        "envId": "shop-main",
        "namespace": "previews",
        "statefulSet": "default-shop-main-ab12c",
        "services": [{"service": "api", "port": 3000, "url": "http://localhost:3000"}],
        "instance": "default-shop-main-ab12c",
    }
