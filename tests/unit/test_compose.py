"""The compose model: which files, which paths travel to the pod, and the model rewritten for it."""

import pathlib
from typing import Any

import pytest

from kubectl_preevy import compose
from kubectl_preevy.errors import ExitCode, PreevyError

PROJECT_DIR = pathlib.Path("/home/me/shop")


def project(model: dict, working_dir: pathlib.Path = PROJECT_DIR) -> compose.ComposeProject:
    return compose.ComposeProject(
        name="shop",
        files=[working_dir / "compose.yaml"],
        working_dir=working_dir,
        model=model,
        x_preevy=model.get("x-preevy"),
    )


def bind(source: str, target: str = "/mnt") -> dict:
    return {"type": "bind", "source": source, "target": target}


# --- default files ---------------------------------------------------------------------------------


def test_default_file_is_the_one_compose_file_without_its_override_as_in_preevy(tmp_path):
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "compose.override.yml").write_text("services: {}\n")
    assert compose.default_files(tmp_path, {}) == [tmp_path / "compose.yaml"]


def test_an_override_file_alone_is_the_default_file(tmp_path):
    (tmp_path / "docker-compose.override.yaml").write_text("services: {}\n")
    assert compose.default_files(tmp_path, {}) == [tmp_path / "docker-compose.override.yaml"]


def test_the_system_file_compose_preevy_goes_first(tmp_path):
    (tmp_path / "compose.preevy.yml").write_text("services: {}\n")
    assert compose.system_files(tmp_path) == [tmp_path / "compose.preevy.yml"]
    (tmp_path / "docker-compose.preevy.yaml").write_text("services: {}\n")
    with pytest.raises(PreevyError) as err:
        compose.system_files(tmp_path)
    assert "compose.preevy.yml, docker-compose.preevy.yaml" in err.value.message


def test_several_compose_files_is_an_error_naming_them(tmp_path):
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    with pytest.raises(PreevyError) as err:
        compose.default_files(tmp_path, {})
    assert err.value.exit_code == ExitCode.USAGE
    assert "compose.yaml, docker-compose.yml" in err.value.message


def test_no_compose_file_is_an_error_unless_optional(tmp_path):
    with pytest.raises(PreevyError) as err:
        compose.default_files(tmp_path, {})
    assert "-f FILE" in err.value.message
    assert compose.default_files(tmp_path, {}, required=False) == []


def test_compose_file_variable_wins(tmp_path):
    files = compose.default_files(tmp_path, {"COMPOSE_FILE": "a.yaml:b/c.yaml"})
    assert files == [tmp_path / "a.yaml", tmp_path / "b" / "c.yaml"]


# --- remote paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "local, remote",
    [
        ("/home/me/shop/site", "relative/site"),
        ("/home/me/shop/conf/nginx.conf", "relative/conf/nginx.conf"),
        ("/home/me/shop", "relative"),
        ("/etc/ssl/certs", "absolute/etc/ssl/certs"),
        ("/home/me/shopping", "absolute/home/me/shopping"),
    ],
)
def test_remote_path_is_relative_under_the_project_else_absolute(local, remote):
    assert compose.remote_relative_path(pathlib.Path(local), PROJECT_DIR) == remote


@pytest.mark.parametrize(
    "source, host",
    [
        ("/var/run/docker.sock", True),
        ("/run/docker.sock", True),
        ("/var/log", True),
        ("/var/log/app", True),
        ("/", True),
        ("/var/runner", False),
        ("/var/lib/app", False),
        ("/home/me/shop/site", False),
    ],
)
def test_host_paths_are_recognised(source, host):
    assert compose.is_host_path(source) is host


def test_synced_paths_are_bind_sources_and_secret_files_without_nested_ones(tmp_path):
    (tmp_path / "site" / "img").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("s")
    model = {
        "services": {
            "web": {
                "volumes": [
                    bind(str(tmp_path / "site")),
                    bind(str(tmp_path / "site" / "img")),
                    bind("/var/run/docker.sock"),
                    {"type": "volume", "source": "data", "target": "/d"},
                    {"type": "tmpfs", "target": "/t"},
                    bind(str(tmp_path / "missing")),
                ]
            },
            "db": {"volumes": [bind(str(tmp_path / "site"))]},
        },
        "secrets": {"s": {"file": str(tmp_path / "secret.txt")}, "e": {"environment": "X"}},
    }
    assert compose.synced_paths(project(model, tmp_path)) == [
        compose.SyncedPath(tmp_path / "missing", "relative/missing", exists=False),
        compose.SyncedPath(tmp_path / "secret.txt", "relative/secret.txt", exists=True),
        compose.SyncedPath(tmp_path / "site", "relative/site", exists=True),
    ]


def test_remote_model_points_binds_and_files_into_the_pod_and_leaves_the_rest():
    model: dict[str, Any] = {
        "name": "shop",
        "services": {
            "web": {
                "build": {"context": "/home/me/shop"},
                "profiles": ["debug"],
                "volumes": [
                    bind("/home/me/shop/site", "/www"),
                    bind("/var/run/docker.sock", "/s"),
                    {"type": "volume", "source": "data", "target": "/data"},
                ],
            },
        },
        "configs": {"c": {"file": "/etc/app.conf"}, "inline": {"content": "x"}},
    }
    rewritten = compose.remote_model(project(model))
    web = rewritten["services"]["web"]
    assert [v.get("source") for v in web["volumes"]] == [
        "/var/lib/preevy/projects/shop/relative/site",
        "/var/run/docker.sock",
        "data",
    ]
    assert web["build"] == {"context": "/home/me/shop"}  # streamed by the docker client
    assert "profiles" not in web
    assert rewritten["configs"] == {
        "c": {"file": "/var/lib/preevy/projects/shop/absolute/etc/app.conf"},
        "inline": {"content": "x"},
    }
    assert (
        model["services"]["web"]["volumes"][0]["source"] == "/home/me/shop/site"
    )  # the original is untouched


# --- the model from docker compose itself ---------------------------------------------------------


def test_load_project_reads_the_interpolated_model_with_x_preevy(tmp_path):
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    image: ${IMAGE}\n    volumes: [./site:/www]\n"
        "x-preevy:\n  drivers:\n    kube-pod:\n      namespace: previews\n"
    )
    (tmp_path / ".env").write_text("IMAGE=nginx\n")
    loaded = compose.load_project(None, "myproj", tmp_path, {"PATH": "/usr/local/bin:/usr/bin:/bin"})
    assert loaded.name == "myproj"
    assert loaded.working_dir == tmp_path
    assert loaded.model["services"]["web"]["image"] == "nginx"
    assert loaded.model["services"]["web"]["volumes"][0]["source"] == str(tmp_path / "site")
    assert loaded.x_preevy == {"drivers": {"kube-pod": {"namespace": "previews"}}}


def test_load_project_reports_an_invalid_file_in_one_line(tmp_path):
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: x\n    bogus: 1\n")
    with pytest.raises(PreevyError) as err:
        compose.load_project(None, None, tmp_path, {"PATH": "/usr/local/bin:/usr/bin:/bin"})
    assert err.value.exit_code == ExitCode.USAGE
    assert "bogus" in err.value.message and "\n" not in err.value.message
