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
        ("/proc", True),
        ("/proc/1/root", True),
        ("/sys/fs/cgroup", True),
        ("/dev/kmsg", True),
        ("/lib/modules", True),
        ("/usr/src", True),
        ("/var/lib/docker", True),
        ("/etc/localtime", True),
        ("/etc/localtime.bak", False),
        ("/etc", False),
        ("/procfs", False),
        ("/usr/srcs", False),
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
            "db": {"volumes": [bind(str(tmp_path / "site"))], "secrets": [{"source": "s"}, {"source": "e"}]},
        },
        "secrets": {
            "s": {"file": str(tmp_path / "secret.txt")},
            "e": {"environment": "X"},
            "unused": {"file": str(tmp_path / "unused.txt")},
        },
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
                "configs": [{"source": "c"}, {"source": "inline"}],
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


def test_build_secrets_stay_local_and_a_secret_used_at_both_times_is_split():
    model = {
        "name": "shop",
        "services": {
            "web": {
                "build": {"context": "/home/me/shop", "secrets": [{"source": "npmrc"}, {"source": "both"}]},
                "secrets": [{"source": "both", "target": "/run/secrets/both"}],
            }
        },
        "secrets": {"npmrc": {"file": "/home/me/.npmrc"}, "both": {"file": "/home/me/shop/both.txt"}},
    }
    assert compose.synced_paths(project(model)) == [
        compose.SyncedPath(pathlib.Path("/home/me/shop/both.txt"), "relative/both.txt", exists=False)
    ]
    rewritten = compose.remote_model(project(model))
    assert rewritten["secrets"] == {
        "npmrc": {"file": "/home/me/.npmrc"},
        "both": {"file": "/var/lib/preevy/projects/shop/relative/both.txt"},
        "both-preevy-local": {"file": "/home/me/shop/both.txt"},
    }
    assert rewritten["services"]["web"]["build"]["secrets"] == [
        {"source": "npmrc"},
        {"source": "both-preevy-local", "target": "both"},
    ]


def make_tree(root: pathlib.Path, *paths: str) -> None:
    for path in paths:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.endswith("/"):
            target.mkdir(exist_ok=True)
        else:
            target.write_text("x")


def test_missing_sources_are_refused_as_compose_would(tmp_path):
    make_tree(tmp_path, "ctx/Dockerfile", "nodockerfile/", "there.txt")
    model = {
        "services": {
            "a": {
                "build": {"context": str(tmp_path / "gone"), "dockerfile": "Dockerfile"},
                "volumes": [
                    bind(str(tmp_path / "long-missing")),
                    {**bind(str(tmp_path / "short-missing")), "bind": {"create_host_path": True}},
                    bind("/proc", "/host/proc"),
                ],
                "secrets": [{"source": "s"}, {"source": "env"}],
                "configs": [{"source": "c"}],
            },
            "b": {"build": {"context": str(tmp_path / "nodockerfile"), "dockerfile": "Dockerfile"}},
            "c": {"build": {"context": str(tmp_path / "nodockerfile"), "dockerfile_inline": "FROM x"}},
            "d": {"build": {"context": "https://github.com/x/y.git"}},
            "e": {"build": {"context": str(tmp_path / "ctx"), "secrets": [{"source": "bs"}]}},
        },
        "secrets": {
            "s": {"file": str(tmp_path / "there.txt")},
            "env": {"environment": "X"},
            "bs": {"file": str(tmp_path / "npmrc")},
        },
        "configs": {"c": {"file": str(tmp_path / "app.conf")}},
    }
    problems = compose.missing_sources(model)
    assert problems == [
        f"bind source {tmp_path}/long-missing of service a does not exist (long syntax, create_host_path false)",
        f"build context {tmp_path}/gone of service a does not exist",
        f"config c of service a: file {tmp_path}/app.conf does not exist",
        f"Dockerfile {tmp_path}/nodockerfile/Dockerfile of service b does not exist",
        f"secret bs of service e: file {tmp_path}/npmrc does not exist",
    ]
    with pytest.raises(PreevyError) as caught:
        compose.check_sources(project(model, tmp_path), [], tmp_path)
    assert caught.value.exit_code == ExitCode.USAGE and "\n" not in caught.value.message


def test_paths_outside_the_project_and_its_repository_are_refused_unless_opted_in(tmp_path):
    repo = tmp_path / "repo"
    make_tree(repo, ".git/", "apps/shop/site/", "shared/lib/", "apps/shop/link-out")
    make_tree(tmp_path, "elsewhere/conf/", "secrets/token")
    (repo / "apps/shop/link-out").unlink()
    (repo / "apps/shop/link-out").symlink_to(tmp_path / "elsewhere")
    working_dir = repo / "apps/shop"
    model = {
        "services": {
            "web": {
                "volumes": [
                    bind(str(working_dir / "site")),
                    bind(str(repo / "shared/lib")),  # a monorepo's ../../shared: inside the repository
                    bind(str(tmp_path / "elsewhere/conf")),
                    bind(str(working_dir / "link-out")),
                    bind("/var/run/docker.sock"),
                ],
                "secrets": [{"source": "t"}],
            }
        },
        "secrets": {"t": {"file": str(tmp_path / "secrets/token")}},
    }
    shop = project(model, working_dir)
    assert compose.project_root(working_dir) == repo
    assert compose.outside_sources(shop, []) == [
        f"{tmp_path}/elsewhere/conf",
        f"{working_dir}/link-out -> {tmp_path}/elsewhere",
        f"{tmp_path}/secrets/token",
    ]
    with pytest.raises(PreevyError) as caught:
        compose.check_sources(shop, [], tmp_path)
    assert caught.value.exit_code == ExitCode.USAGE
    assert "--copy-outside PATH" in caught.value.message and "copy-outside: [PATH" in caught.value.message
    compose.check_sources(shop, [str(tmp_path / "elsewhere"), "secrets"], tmp_path)  # flags: from cwd
    shop.x_preevy = {"copy-outside": ["../../../elsewhere", str(tmp_path / "secrets")]}
    compose.check_sources(shop, [], tmp_path / "unrelated")  # x-preevy: from the project dir
    shop.x_preevy = {"copy-outside": "/etc"}
    with pytest.raises(PreevyError, match="must be a list of paths"):
        compose.check_sources(shop, [], tmp_path)


def test_without_a_repository_the_project_directory_is_the_limit(tmp_path):
    make_tree(tmp_path, "p/site/", "sibling/")
    model = {
        "services": {"web": {"volumes": [bind(str(tmp_path / "p/site")), bind(str(tmp_path / "sibling"))]}}
    }
    assert compose.outside_sources(project(model, tmp_path / "p"), []) == [f"{tmp_path}/sibling"]


# --- which program runs `docker compose` ---------------------------------------------------------------


def executable(path: pathlib.Path) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_compose_runs_as_the_plugin_the_docker_cli_would_start_first(tmp_path):
    executable(tmp_path / "bin" / "docker")
    plugin = executable(tmp_path / "config" / "cli-plugins" / "docker-compose")
    environ = {"PATH": str(tmp_path / "bin"), "DOCKER_CONFIG": str(tmp_path / "config")}
    assert compose.compose_command(environ) == [str(plugin)]


def test_compose_is_docker_compose_when_the_cli_looks_elsewhere_first_or_is_missing(tmp_path):
    executable(tmp_path / "config" / "cli-plugins" / "docker-compose")
    (tmp_path / "config" / "config.json").write_text('{"cliPluginsExtraDirs": ["/opt/plugins"]}')
    environ = {"PATH": str(tmp_path / "bin"), "DOCKER_CONFIG": str(tmp_path / "config")}
    assert compose.compose_command(environ) == ["docker", "compose"]  # no docker on PATH: said as such
    executable(tmp_path / "bin" / "docker")
    assert compose.compose_command(environ) == ["docker", "compose"]  # its extra directories come first
