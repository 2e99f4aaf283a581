"""docker.py: the published ports of Docker's container list (GET /containers/json, API 1.43 shape)."""

from kubectl_preevy.docker import PublishedPort, ports_of


def container(name, service, ports, project="shop"):
    labels = {"com.docker.compose.project": project}
    if service:
        labels["com.docker.compose.service"] = service
    return {"Id": name * 4, "Names": [f"/{name}"], "Labels": labels, "Ports": ports}


def test_published_tcp_ports_by_service_sorted_each_once():
    containers = [
        container(
            "shop-web-1",
            "web",
            [
                {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},  # IPv6 twin
                {"PrivatePort": 443, "Type": "tcp"},  # exposed, not published
                {"IP": "0.0.0.0", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"},
            ],
        ),
        container("shop-api-1", "api", [{"IP": "0.0.0.0", "PrivatePort": 3000, "PublicPort": 3000}]),
        container("shop-db-1", "db", None),
    ]
    assert ports_of(containers) == [PublishedPort("api", 3000, 3000), PublishedPort("web", 80, 8080)]


def test_a_container_without_a_compose_service_label_is_named_by_its_container_name():
    lone = container("lonely", None, [{"PrivatePort": 8000, "PublicPort": 18000, "Type": "tcp"}])
    assert ports_of([lone]) == [PublishedPort("lonely", 8000, 18000)]


def test_no_containers_no_ports():
    assert ports_of([]) == []
