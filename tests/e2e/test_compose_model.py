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
