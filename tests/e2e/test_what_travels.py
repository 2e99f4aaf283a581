"""What travels to the cluster: the copy behaves like a bind mount, nothing is lost, nothing leaks.

Real kubectl, docker compose and dockerd against the emulator. The service is built FROM scratch
with a static busybox (as examples/hello) and serves its whole filesystem with httpd, so a test
reads what the running container sees.
"""

import hashlib
import json
import pathlib
import shutil
import signal
import urllib.error

import pytest
import yaml

from tests.e2e import (
    EXAMPLE,
    connect,
    environment_objects,
    error_lines,
    http_get,
    preevy,
    remote,
    stop,
    up_json,
)

USAGE = 2
EVIL = "{{ cycler.__init__.__globals__.os.system('touch MARKER') }}"

COMPOSE = """\
services:
  app:
    build: ./image
    init: true
    command:
      - sh
      - -c
      - >-
        echo started >> /data/log;
        echo container >> /counter.txt;
        cat /host/proc/1/cmdline > /data/pod-pid1;
        exec httpd -f -p 8080 -h /
    ports: ["8080:8080"]
    volumes:
      - ./data:/data
      - ./counter.txt:/counter.txt
      - ./app.ini:/etc/app.ini:ro
      - /proc:/host/proc:ro
"""


def image_dir(directory: pathlib.Path) -> None:
    """examples/hello's Dockerfile and a static busybox: an image FROM scratch."""
    directory.mkdir(parents=True)
    shutil.copy(EXAMPLE / "Dockerfile", directory / "Dockerfile")
    shutil.copy("/bin/busybox", directory / "busybox")


def data_project(directory: pathlib.Path) -> pathlib.Path:
    image_dir(directory / "image")
    (directory / "compose.yaml").write_text(COMPOSE)
    (directory / "data").mkdir()
    (directory / "data" / "seed.txt").write_text("seed v1\n")
    (directory / "counter.txt").write_text("local\n")
    (directory / "app.ini").write_text("v=1\n")
    return directory


def snapshot(directory: pathlib.Path) -> dict[str, tuple[str, int]]:
    """Every file under directory: its content hash and mtime (to assert nothing was touched)."""
    return {
        str(path.relative_to(directory)): (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_mtime_ns,
        )
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def get(url: str) -> bytes | None:
    try:
        return http_get(url, timeout=5)
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise


def served(
    flags: list[str], project: pathlib.Path, env: dict[str, str], *paths: str
) -> dict[str, bytes | None]:
    """What the running service serves at these paths (None: 404), through `kubectl preevy connect`."""
    connection = connect(flags, project, env, services=1)
    try:
        url = next(iter(connection.urls.values()))
        return {path: get(url + path) for path in paths}
    finally:
        assert stop(connection.proc, signal.SIGINT) == 0


def test_three_ups_keep_container_data_and_bring_local_edits_to_the_running_container(
    kubesim, namespace, env, tmp_path
):
    project = data_project(tmp_path / "keep")
    flags = ["-n", namespace, "--id", "keep-data"]

    dry = preevy("up", "--dry-run", *flags, cwd=project, env=env, check=True)
    planned = [o for o in yaml.safe_load_all(dry.stdout) if o and o["kind"] == "StatefulSet"]
    local_bytes = sum(
        len(p.read_bytes()) for p in [project / "data/seed.txt", project / "counter.txt", project / "app.ini"]
    )
    assert f"# up would copy 3 files ({local_bytes} B, {local_bytes} bytes) into a new pod:" in dry.stdout
    assert "#   copy relative/app.ini (4 B)" in dry.stdout
    assert "kept as the Docker host's own (not copied): /proc" in dry.stderr
    assert environment_objects(kubesim, namespace, "preevy.dev/env-id=keep-data") == []

    first = up_json(*flags, cwd=project, env=env)
    assert first["statefulSet"] == planned[0]["metadata"]["name"]  # the name the dry run showed
    assert first["sync"]["files"] == 3
    pod = f"{first['statefulSet']}-0"
    pod_pid1 = remote(kubesim, namespace, pod, "cat", "/proc/1/cmdline").stdout

    assert served(flags, project, env, "/data/log", "/counter.txt", "/etc/app.ini", "/data/pod-pid1") == {
        "/data/log": b"started\n",
        "/counter.txt": b"local\ncontainer\n",
        "/etc/app.ini": b"v=1\n",
        "/data/pod-pid1": pod_pid1.encode(),  # /proc is the Docker host's: the pod's
    }

    # Local edits: a changed file in the bound directory, a new one, the single-file mount rewritten.
    (project / "data" / "seed.txt").write_text("seed v2\n")
    (project / "data" / "new.txt").write_text("new\n")
    (project / "app.ini").write_text("v=22\n")
    dry = preevy("up", "--dry-run", *flags, cwd=project, env=env, check=True)
    assert f"into {pod}:" in dry.stdout
    copied = sorted(line.split()[2] for line in dry.stdout.splitlines() if line.startswith("#   copy "))
    assert copied == ["relative/app.ini", "relative/data/new.txt", "relative/data/seed.txt"]

    second = preevy("up", "-o", "json", "--timeout", "60s", *flags, cwd=project, env=env, timeout=180)
    assert second.returncode == 0, second.stderr
    assert "rewritten in place, running containers see the change: relative/app.ini" in second.stderr
    assert served(
        flags, project, env, "/etc/app.ini", "/data/log", "/counter.txt", "/data/seed.txt", "/data/new.txt"
    ) == {
        "/etc/app.ini": b"v=22\n",  # the same, running container sees the edit
        "/data/log": b"started\n",  # not restarted, its data kept
        "/counter.txt": b"local\ncontainer\n",  # unchanged locally: the container's version stays
        "/data/seed.txt": b"seed v2\n",
        "/data/new.txt": b"new\n",
    }

    (project / "data" / "new.txt").unlink()
    (project / "app.ini").write_text("v=3\n")
    third = up_json(*flags, cwd=project, env=env)
    assert third["statefulSet"] == first["statefulSet"]
    assert (third["sync"]["files"], third["sync"]["deleted"]) == (1, 1)
    assert served(flags, project, env, "/etc/app.ini", "/data/new.txt", "/data/log", "/counter.txt") == {
        "/etc/app.ini": b"v=3\n",
        "/data/new.txt": None,
        "/data/log": b"started\n",
        "/counter.txt": b"local\ncontainer\n",
    }
    assert (project / "counter.txt").read_text() == "local\n"  # the user's files are theirs

    # An environment an older version made has no record: nothing in it is deleted or overwritten.
    remote(kubesim, namespace, pod, "rm", "/var/lib/preevy/projects/keep/.preevy-sync/record")
    (project / "data" / "seed.txt").unlink()
    (project / "counter.txt").write_text("local, edited\n")
    fourth = preevy("up", *flags, "--timeout", "60s", cwd=project, env=env, timeout=180)
    assert fourth.returncode == 0, fourth.stderr
    assert "kept the pod's version of 1 path(s)" in fourth.stderr and "relative/counter.txt" in fourth.stderr
    assert served(flags, project, env, "/data/seed.txt", "/counter.txt", "/data/log") == {
        "/data/seed.txt": b"seed v2\n",
        "/counter.txt": b"local\ncontainer\n",
        "/data/log": b"started\n",
    }
    preevy("down", *flags, cwd=project, env=env, check=True)


BUILD_SECRET_COMPOSE = """\
services:
  web:
    build:
      context: ./image
      secrets: [token]
    init: true
    command: ["httpd", "-f", "-p", "8080", "-h", "/"]
    ports: ["8080:8080"]
    secrets: [token]
secrets:
  token:
    file: ./token.txt
"""
BUILD_SECRET_DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN --mount=type=secret,id=token cp /run/secrets/token /built-with-token
"""


def test_a_build_secret_is_read_locally_and_a_runtime_secret_is_copied(kubesim, namespace, env, tmp_path):
    project = tmp_path / "secrets"
    image_dir(project / "image")
    (project / "image" / "Dockerfile").write_text(BUILD_SECRET_DOCKERFILE)
    (project / "compose.yaml").write_text(BUILD_SECRET_COMPOSE)
    (project / "token.txt").write_text("t0ken\n")
    flags = ["-n", namespace, "--id", "build-secret"]
    up_json(*flags, cwd=project, env=env)
    assert served(flags, project, env, "/built-with-token", "/run/secrets/token") == {
        "/built-with-token": b"t0ken\n",
        "/run/secrets/token": b"t0ken\n",
    }
    preevy("down", *flags, cwd=project, env=env, check=True)


# --- refusals: one error line, exit 2, nothing in the cluster, the user's files as they were ---------


def refused(kubesim, namespace, env, project, env_id, *args, phrases=()) -> str:
    before = snapshot(project)
    for dry_run in ([], ["--dry-run"]):
        result = preevy("up", "-n", namespace, "--id", env_id, *dry_run, *args, cwd=project, env=env)
        lines = error_lines(result.stderr)
        assert result.returncode == USAGE, result.stderr
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        for phrase in phrases:
            assert phrase in lines[0], lines[0]
        assert result.stdout == ""
    assert environment_objects(kubesim, namespace, f"preevy.dev/env-id={env_id}") == []
    assert snapshot(project) == before
    return lines[0]


def hello_like(directory: pathlib.Path, compose: str) -> pathlib.Path:
    image_dir(directory / "image")
    (directory / "compose.yaml").write_text(compose)
    return directory


def test_a_template_that_reaches_python_is_refused_from_a_file(kubesim, namespace, env, tmp_path):
    project = hello_like(tmp_path / "p", "services:\n  web:\n    build: ./image\n")
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml.njk"
    evil.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + EVIL.replace("MARKER", str(marker)) + "\n"
    )
    line = refused(
        kubesim,
        namespace,
        env,
        project,
        "evil-file",
        "--kube-pod-template",
        str(evil),
        phrases=(f"template {evil}: line 4: refused: access to attribute",),
    )
    assert "__init__" in line or "__globals__" in line
    assert not marker.exists()


def test_a_template_that_reaches_python_is_refused_from_a_cluster_profile(kubesim, namespace, env, tmp_path):
    project = hello_like(tmp_path / "p", "services:\n  web:\n    build: ./image\n")
    marker = tmp_path / "pwned"
    created = preevy("init", "team", "--store", "cluster", "-n", namespace, cwd=project, env=env)
    assert created.returncode == 0, created.stderr
    evil = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + EVIL.replace("MARKER", str(marker)) + "\n"
    kubesim.kubectl(
        "patch",
        "configmap",
        "preevy-profile-team",
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        json.dumps({"data": {"template.yaml.njk": evil}}),
    )
    refused(
        kubesim,
        namespace,
        env,
        project,
        "evil-profile",
        "--profile",
        "team",
        phrases=("(kept in the cluster by profile 'team'): line 4: refused: access to attribute",),
    )
    assert not marker.exists()


OUTSIDE_COMPOSE = """\
services:
  web:
    build: ./image
    volumes:
      - ./site:/site
      - {outside}:/outside
"""


def test_a_path_outside_the_project_is_refused_unless_opted_in(kubesim, namespace, env, tmp_path):
    outside = tmp_path / "home" / ".docker"
    outside.mkdir(parents=True)
    (outside / "config.json").write_text('{"auths": {"registry": {"auth": "c2VjcmV0"}}}')
    project = hello_like(tmp_path / "p", OUTSIDE_COMPOSE.format(outside=outside))
    (project / "site").mkdir()
    line = refused(
        kubesim,
        namespace,
        env,
        project,
        "outside",
        phrases=(
            f"not copied into the cluster: {outside} (outside the project {project})",
            "--copy-outside PATH",
            "copy-outside: [",
        ),
    )
    assert "site" not in line
    dry = preevy(
        "up",
        "--dry-run",
        "-n",
        namespace,
        "--id",
        "outside",
        "--copy-outside",
        str(outside),
        cwd=project,
        env=env,
    )
    assert dry.returncode == 0, dry.stderr
    assert f"#   copy absolute{outside}/config.json" in dry.stdout


@pytest.mark.parametrize(
    "compose, phrase",
    [
        (
            "services:\n  web:\n    build: ./image\n    secrets: [s]\nsecrets:\n  s:\n    file: ./missing-secret.txt\n",
            "secret s of service web: file {project}/missing-secret.txt does not exist",
        ),
        (
            "services:\n  web:\n    build: ./image\n    configs: [c]\nconfigs:\n  c:\n    file: ./missing.conf\n",
            "config c of service web: file {project}/missing.conf does not exist",
        ),
        (
            "services:\n  web:\n    build: ./image\n    volumes:\n"
            "      - {{type: bind, source: ./nope, target: /nope}}\n",
            "bind source {project}/nope of service web does not exist",
        ),
        (
            "services:\n  web:\n    build: ./no-context\n",
            "build context {project}/no-context of service web does not exist",
        ),
        (
            "services:\n  web:\n    build: {{context: ./image, dockerfile: Missingfile}}\n",
            "Dockerfile {project}/image/Missingfile of service web does not exist",
        ),
    ],
    ids=["secret", "config", "long-bind", "build-context", "dockerfile"],
)
def test_a_missing_source_is_refused_before_anything_is_made(
    kubesim, namespace, env, tmp_path, compose, phrase
):
    project = hello_like(tmp_path / "p", compose.format())
    refused(kubesim, namespace, env, project, "missing", phrases=(phrase.format(project=project),))
    assert not (project / "nope").exists()
