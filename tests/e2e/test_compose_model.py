"""The compose model is what the real `docker compose config` makes of the project: several -f files, -p,
.env, env_file, extends, interpolation and profiles, then rewritten for the pod."""

import os

from kubectl_preevy import compose
from tests.prerequisites import require_tool

COMPOSE = """\
services:
  web:
    extends: {file: common.yaml, service: base}
    ports: ["${WEB_PORT}:8080"]
    env_file: [web.env]
    volumes: ["./site:/site:ro", "data:/data", {type: tmpfs, target: /cache}]
  debug:
    image: busybox
    profiles: [debug]
volumes:
  data:
"""


def test_the_model_is_docker_compose_config_of_every_file_and_setting(tmp_path):
    require_tool("docker")
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    (tmp_path / "common.yaml").write_text(
        "services:\n  base:\n    image: busybox\n    environment: {FROM_BASE: '1'}\n"
    )
    (tmp_path / "extra.yaml").write_text("services:\n  web:\n    environment: {EXTRA: 'yes'}\n")
    (tmp_path / ".env").write_text("WEB_PORT=8085\n")
    (tmp_path / "web.env").write_text("GREETING=hello\n")
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("COMPOSE_", "DOCKER_"))}

    project = compose.load_project(["compose.yaml", "extra.yaml"], "shop", tmp_path, environ)
    assert project.name == "shop" and project.files == [tmp_path / "compose.yaml", tmp_path / "extra.yaml"]
    web = project.model["services"]["web"]
    assert [(p["published"], p["target"]) for p in web["ports"]] == [("8085", 8080)]
    assert web["environment"] == {"FROM_BASE": "1", "GREETING": "hello", "EXTRA": "yes"}
    assert list(project.model["services"]) == ["web"]  # `debug` is in a profile that is not active

    remote = compose.remote_model(project)["services"]["web"]["volumes"]
    assert [(v["type"], v.get("source")) for v in remote] == [
        ("bind", "/var/lib/preevy/projects/shop/relative/site"),
        ("volume", "data"),
        ("tmpfs", None),
    ]

    with_profile = compose.load_project(None, None, tmp_path, {**environ, "COMPOSE_PROFILES": "debug"})
    assert with_profile.name == tmp_path.name.lower() and sorted(with_profile.model["services"]) == [
        "debug",
        "web",
    ]
    assert "profiles" not in compose.remote_model(with_profile)["services"]["debug"]


def test_the_foreseen_project_name_is_the_one_docker_compose_reports_or_none(tmp_path):
    """`up` takes its lock while `docker compose config` runs when it can foresee the environment id from
    the project name: a foreseen name must be compose's own (or None: the lock then waits for the model)."""
    require_tool("docker")
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("COMPOSE_", "DOCKER_"))}
    service = "services:\n  web:\n    image: busybox\n"
    cases = [  # (directory, {file: text}, -f files, -p, extra environment, foreseen)
        ("My Shop.App", {"compose.yaml": service}, None, None, {}, "myshopapp"),
        ("_x-Proj_2", {"docker-compose.yml": service}, None, None, {}, "x-proj_2"),
        ("dir", {"compose.yaml": "name: shop\n" + service}, None, None, {}, "shop"),
        (
            "dir2",
            {"a.yaml": "name: one\n" + service, "b.yaml": "name: two\n"},
            ["a.yaml", "b.yaml"],
            None,
            {},
            "two",
        ),
        ("dir3", {"sub/compose.yaml": service}, ["sub/compose.yaml"], None, {}, "sub"),
        ("dir4", {"compose.preevy.yaml": "name: sys\n", "compose.yaml": service}, None, None, {}, "sys"),
        ("dir5", {"compose.yaml": "name: shop\n" + service}, None, "given", {}, "given"),
        ("dir6", {"compose.yaml": service}, None, None, {"COMPOSE_PROJECT_NAME": "fromenv"}, "fromenv"),
        ("dir7", {"compose.yaml": service, ".env": "COMPOSE_PROJECT_NAME=dotenv\n"}, None, None, {}, None),
        ("dir8", {"compose.yaml": "name: ${NAME}\n" + service}, None, None, {"NAME": "interp"}, None),
    ]
    for directory, files, file_args, project, extra, expected in cases:
        cwd = tmp_path / directory
        for name, text in files.items():
            (cwd / name).parent.mkdir(parents=True, exist_ok=True)
            (cwd / name).write_text(text)
        env = dict(environ, **extra)
        foreseen = compose.foreseen_name(file_args, project, cwd, env)
        assert foreseen == expected, directory
        if expected is not None:
            assert compose.load_project(file_args, project, cwd, env).name == expected, directory
