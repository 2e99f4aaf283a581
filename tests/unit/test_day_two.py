"""Pure pieces of day two: which environment of duplicates, which containers are Preevy's agent, the model
stub logs/exec use, status rows."""

from kubectl_preevy import docker, environment, remote
from kubectl_preevy.commands import status


def docker_host(instance: str, created_at: str, kind: str = "StatefulSet") -> environment.Environment:
    return environment.Environment(
        {
            "kind": kind,
            "metadata": {
                "name": instance,
                "namespace": "ns",
                "labels": {"preevy.dev/instance": instance, "preevy.dev/profile-id": "p"},
                "annotations": {"preevy.dev/env-id": "e", "preevy.dev/created-at": created_at},
            },
            "spec": {"template": {"spec": {"containers": [{"name": "docker"}]}}},
        }
    )


def test_the_newest_of_duplicates_is_chosen_with_a_warning(capsys):
    older, newer = (
        docker_host("p-e-aaaaa", "2026-01-02T00:00:00.000Z"),
        docker_host("p-e-bbbbb", "2026-03-01T00:00:00.000Z"),
    )
    ordered = sorted([older, newer], key=lambda e: e.created_at, reverse=True)
    assert environment.newest(ordered, "e") is newer
    warning = capsys.readouterr().err
    assert "p-e-bbbbb, p-e-aaaaa" in warning and "acting on the newest, p-e-bbbbb" in warning
    assert environment.newest([older], "e") is older and capsys.readouterr().err == ""
    assert environment.newest([], "e") is None


def test_a_legacy_environment_deletes_its_deployment():
    legacy = docker_host("p-e-ccccc", "2023-01-01T00:00:00.000Z", kind="Deployment")
    assert legacy.legacy and legacy.profile_id == "p"
    assert "deployments.apps" in legacy.types and "persistentvolumeclaims" in legacy.types


def container(name: str, service: str, **labels: str) -> dict:
    return {
        "Names": [f"/{name}"],
        "Labels": {"com.docker.compose.project": "shop", "com.docker.compose.service": service, **labels},
        "State": "running",
        "Status": "Up 3 minutes (healthy)",
        "Ports": [{"PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}, {"PrivatePort": 53, "Type": "udp"}],
    }


def test_preevys_agent_and_its_labelled_containers_are_kept_but_not_the_projects_own():
    containers = [
        container("shop-web-1", "web", **{"preevy.expose": "80"}),  # a service of the model: not an orphan
        container("shop-preevy_proxy-1", "preevy_proxy"),
        container("shop-helper-1", "helper", **{"preevy.env_id": "e"}),
        container("shop-old-1", "old"),  # an ordinary orphan
    ]
    assert docker.preevy_agents(containers, {"web"}) == ["shop-helper-1", "shop-preevy_proxy-1"]
    assert docker.preevy_agents(containers[:1] + containers[3:], {"web"}) == []


def test_the_model_stub_names_the_services_and_no_local_path():
    project = remote.RemoteProject(
        "shop",
        {
            "services": {
                "web": {"build": {"context": "/home/me/shop"}, "volumes": ["/x:/y"]},
                "db": {"image": "postgres"},
            }
        },
    )
    assert remote.compose_stub(project) == {
        "name": "shop",
        "services": {"web": {"image": "shop-web"}, "db": {"image": "postgres"}},
    }


def test_status_rows_have_health_ports_urls_and_services_without_containers():
    project = remote.RemoteProject("shop", {"services": {"web": {}, "worker": {}}})
    rows = status.services([container("shop-web-1", "web")], project)
    assert rows == [
        {
            "service": "web",
            "container": "shop-web-1",
            "state": "running",
            "health": "healthy",
            "status": "Up 3 minutes (healthy)",
            "ports": [{"port": 80, "published": 8080, "url": "http://localhost:8080"}],
        },
        {
            "service": "worker",
            "container": None,
            "state": "missing",
            "health": None,
            "status": "",
            "ports": [],
        },
    ]


def test_expiry_is_read_from_an_expires_at_annotation():
    assert status.expires_at(
        {"metadata": {"annotations": {"preevy.dev/expires-at": "2026-12-01T00:00:00Z"}}}
    ) == ("2026-12-01T00:00:00Z")
    assert status.expires_at({"metadata": {}}) is None


def test_the_project_from_containers_is_the_wanted_one_or_the_only_one():
    web, db = container("shop-web-1", "web"), container("shop-db-1", "db")
    web["Image"], db["Image"] = "shop-web", "postgres:16"
    other = container("blog-web-1", "web")
    other["Labels"]["com.docker.compose.project"] = "blog"
    found = remote.from_containers([web, db], None)
    assert found == remote.RemoteProject(
        "shop", {"services": {"web": {"image": "shop-web"}, "db": {"image": "postgres:16"}}}
    )
    assert remote.from_containers([web, db, other], None) is None
    assert remote.from_containers([web, db, other], "blog").services == ["web"]
    assert remote.from_containers([web], "nope") is None


def test_status_shows_the_urls_up_recorded():
    rows = status.services(
        [container("shop-web-1", "web")], None, {("web", 80): "https://web-80-e.pr.example.com"}
    )
    assert rows[0]["ports"] == [{"port": 80, "published": 8080, "url": "https://web-80-e.pr.example.com"}]
