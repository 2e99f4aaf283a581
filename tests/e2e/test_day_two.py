"""Day two with `--id` alone, from a directory without compose files: status, logs (-f), exec, shell, env-id;
Preevy's agent kept across `up`; purge."""

import json
import os
import pty
import subprocess
import time
import uuid

import pytest
import yaml

from tests.e2e import (
    PREEVY,
    _LineReader,
    environment_objects,
    error_lines,
    hello_environment,
    hello_project,
    preevy,
    remote,
    start,
    stop,
    up_json,
)

ENV_ID = "hello-day-two"


@pytest.fixture(scope="module")
def environment(kubesim, tmp_path_factory):
    """One environment of examples/hello: (namespace, project dir, environ, pod, a dir without compose files)."""
    base = tmp_path_factory.mktemp("daytwo")
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    with hello_environment(kubesim, base, ENV_ID) as (namespace, project, environ, pod):
        yield namespace, project, environ, pod, elsewhere


def day_two(environment, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    namespace, _project, environ, _pod, elsewhere = environment
    command, *rest = args
    return preevy(command, "-n", namespace, "--id", ENV_ID, *rest, cwd=elsewhere, env=environ, check=check)


def test_the_model_and_driver_metadata_are_where_preevy_keeps_them(environment, kubesim):
    namespace, _project, _environ, pod, _elsewhere = environment
    model = yaml.safe_load(
        remote(kubesim, namespace, pod, "cat", "/var/lib/preevy/projects/hello/docker-compose.yaml").stdout
    )
    assert sorted(model["services"]) == ["counter", "web"]
    assert model["services"]["web"]["volumes"][0]["source"] == "/var/lib/preevy/projects/hello/relative/site"
    metadata = json.loads(
        remote(kubesim, namespace, pod, "cat", "/var/lib/preevy/driver-metadata.json").stdout
    )
    assert metadata["id"] == ENV_ID and metadata["machine"]["driver"] == "kube-pod"
    assert metadata["machine"]["providerId"] == pod.rsplit("-", 1)[0]


def test_status_with_only_the_id(environment):
    _namespace, _project, _environ, pod, _elsewhere = environment
    document = json.loads(day_two(environment, "status", "-o", "json").stdout)
    assert (document["kind"], document["envId"], document["project"]) == (
        "EnvironmentStatus",
        ENV_ID,
        "hello",
    )
    assert document["pod"] == {"name": pod, "phase": "Running", "ready": True, "restarts": 0}
    services = {s["service"]: s for s in document["services"]}
    assert sorted(services) == ["counter", "web"]
    assert services["web"]["state"] == "running" and services["web"]["container"] == "hello-web-1"
    assert services["web"]["ports"] == [{"port": 8080, "published": 8080, "url": "http://localhost:8080"}]
    assert document["expiresAt"] is None
    as_yaml = yaml.safe_load(day_two(environment, "status", "-o", "yaml").stdout)
    assert as_yaml["envId"] == ENV_ID and len(as_yaml["services"]) == 2
    table = day_two(environment, "status").stdout
    assert "hello-web-1" in table and "http://localhost:8081" in table and f"environment: {ENV_ID}" in table


def test_exec_exit_codes_and_output_pass_through(environment):
    _namespace, project, _environ, _pod, _elsewhere = environment
    result = day_two(environment, "exec", "web", "--", "cat", "/site/index.html")
    assert result.returncode == 0
    assert result.stdout == (project / "site" / "index.html").read_text()
    assert day_two(environment, "exec", "web", "--", "sh", "-c", "exit 7", check=False).returncode == 7
    unknown = day_two(environment, "exec", "nope", "--", "true", check=False)
    assert unknown.returncode == 2 and error_lines(unknown.stderr) == [
        "error: no service nope in project hello (its services: counter, web)"
    ]


def test_logs_follow_streams_a_line_written_after_it_started(environment):
    namespace, _project, environ, _pod, elsewhere = environment
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    proc = start(["logs", "-n", namespace, "--id", ENV_ID, "-f", "--tail", "0", "web"], elsewhere, environ)
    reader = _LineReader(proc.stdout)
    try:
        deadline = time.monotonic() + 60
        seen = []
        while time.monotonic() < deadline:
            day_two(environment, "exec", "web", "--", "sh", "-c", f"echo {marker} > /proc/1/fd/1")
            line = reader.readline(3)
            if line is not None:
                seen.append(line)
            if any(marker in line for line in seen):
                break
        assert any(line.startswith("web-1") and line.rstrip().endswith(f"| {marker}") for line in seen), seen
        assert proc.poll() is None  # still following
    finally:
        assert stop(proc) == 0
    tail = day_two(environment, "logs", "web", "--tail", "1")
    assert tail.stdout.splitlines()[-1].rstrip().endswith(marker)


def test_exec_and_shell_get_a_tty_on_a_terminal(environment):
    namespace, _project, environ, _pod, elsewhere = environment
    flags = ["-n", namespace, "--id", ENV_ID]
    exec_output = _terminal_output([str(PREEVY), "exec", *flags, "web", "--", "tty"], elsewhere, environ)
    assert "/dev/pts/" in exec_output
    # kubectl exec -t on a terminal (the emulator runs a TTY exec on pipes: no /dev/pts to show)
    shell_output = _terminal_output(
        [str(PREEVY), "shell", *flags, "--", "echo", "on-a-terminal"], elsewhere, environ
    )
    assert "on-a-terminal" in shell_output
    assert day_two(environment, "exec", "web", "--", "tty", check=False).stdout.strip() == "not a tty"


def test_without_a_stored_model_the_containers_tell_the_project(environment, kubesim):
    namespace, _project, _environ, pod, _elsewhere = environment
    model_path = "/var/lib/preevy/projects/hello/docker-compose.yaml"
    remote(kubesim, namespace, pod, "mv", model_path, model_path + ".away")
    try:
        result = day_two(environment, "exec", "counter", "--", "cat", "/data/count")
        assert result.stdout.strip().isdigit()
        assert "holds no stored compose model: using project hello as its containers tell it" in result.stderr
    finally:
        remote(kubesim, namespace, pod, "mv", model_path + ".away", model_path)


def test_shell_runs_in_the_docker_host_container(environment):
    result = day_two(
        environment,
        "shell",
        "--",
        "sh",
        "-c",
        "docker version --format '{{.Server.Os}}'; exit 3",
        check=False,
    )
    assert result.returncode == 3 and result.stdout.strip() == "linux"


def test_env_id_says_which_and_why(environment):
    _namespace, project, environ, _pod, _elsewhere = environment
    explicit = preevy("env-id", "--id", "given", cwd=project, env=environ, check=True)
    assert explicit.stdout.strip() == "given" and "from --id" in explicit.stderr
    branch = preevy(
        "env-id",
        "-o",
        "json",
        cwd=project,
        env={**environ, "GITHUB_ACTIONS": "true", "GITHUB_HEAD_REF": "Feature/X"},
        check=True,
    )
    document = json.loads(branch.stdout)
    assert document["envId"] == "hello-feature-x" and "GITHUB_HEAD_REF" in document["why"]


def test_preevys_agent_is_kept_across_up(environment, kubesim):
    namespace, project, environ, pod, _elsewhere = environment
    agent = "hello-preevy_proxy-1"
    remote(
        kubesim, namespace, pod, "docker", "run", "-d", "--name", agent,
        "--label", "com.docker.compose.project=hello", "--label", "com.docker.compose.service=preevy_proxy",
        "--label", "com.docker.compose.oneoff=False", "--label", "preevy.env_id=" + ENV_ID,
        "hello-web", "httpd", "-f", "-p", "9999",
    )  # fmt: skip
    model_path = "/var/lib/preevy/projects/hello/docker-compose.yaml"
    model = yaml.safe_load(remote(kubesim, namespace, pod, "cat", model_path).stdout)
    model["services"]["preevy_proxy"] = {"image": "hello-web", "labels": {"preevy.env_id": ENV_ID}}
    kubesim.kubectl(
        "exec",
        "-i",
        "-n",
        namespace,
        pod,
        "--",
        "sh",
        "-c",
        f"cat > {model_path}",
        input=yaml.safe_dump(model),
    )  # as Preevy leaves it: its agent in the model
    try:
        result = preevy(
            "up",
            "-n",
            namespace,
            "--id",
            ENV_ID,
            "--timeout",
            "60s",
            cwd=project,
            env=environ,
            check=True,
            timeout=180,
        )
        assert f"keeping Preevy's agent ({agent})" in result.stderr
        state = remote(kubesim, namespace, pod, "docker", "inspect", "-f", "{{.State.Running}}", agent).stdout
        assert state.strip() == "true"
        stored = yaml.safe_load(remote(kubesim, namespace, pod, "cat", model_path).stdout)
        assert sorted(stored["services"]) == ["counter", "preevy_proxy", "web"]
    finally:
        remote(kubesim, namespace, pod, "docker", "rm", "-f", agent, check=False)


def test_purge_refuses_without_a_terminal_then_leaves_nothing(kubesim, namespace, env, tmp_path):
    project = hello_project(tmp_path / "hello")
    for env_id in ("purge-a", "purge-b"):
        up_json("-n", namespace, "--id", env_id, cwd=project, env=env)
    refused = subprocess.run(
        [str(PREEVY), "purge", "-n", namespace], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2
    assert error_lines(refused.stderr) == [
        "error: purge would delete 2 environment(s) and their volumes, and stdin is not a terminal to "
        f"confirm: run `kubectl preevy purge --yes --namespace={namespace}`"
    ]
    assert (
        len(json.loads(preevy("ls", "-n", namespace, "-o", "json", cwd=tmp_path, env=env).stdout)["items"])
        == 2
    )
    declined = _on_a_terminal([str(PREEVY), "purge", "-n", namespace], b"n\n", tmp_path, env)
    assert declined.returncode == 1 and error_lines(declined.stderr) == ["error: nothing deleted"]
    assert f"delete 2 environment(s) of profile 'default' in namespace {namespace}" in declined.stderr
    assert (
        len(json.loads(preevy("ls", "-n", namespace, "-o", "json", cwd=tmp_path, env=env).stdout)["items"])
        == 2
    )
    purged = preevy(
        "purge", "-n", namespace, "--yes", "--wait", cwd=tmp_path, env=env, check=True, timeout=180
    )
    assert purged.stdout.split() == ["purge-a", "purge-b"]
    assert environment_objects(kubesim, namespace, "preevy.dev/profile-id") == []  # locks included
    assert kubesim.kubectl("get", "pods,pvc", "-n", namespace, "-o", "name").stdout.split() == []


def legacy_environment(kubesim, namespace: str, profile_id: str, env_id: str) -> str:
    """The objects Preevy before v0.0.60 left for an environment (its docker host a Deployment): its instance.
    The emulator runs no Deployment controller: these objects are only listed and deleted."""
    instance = f"{profile_id}-{env_id}-q1w2e"
    labels = {
        "preevy.dev/profile-id": profile_id,
        "preevy.dev/env-id": env_id,
        "preevy.dev/instance": instance,
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": instance,
            "labels": {**labels, "app.kubernetes.io/component": "docker-host"},
            "annotations": {"preevy.dev/env-id": env_id, "preevy.dev/created-at": "2023-05-01T10:00:00.000Z"},
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"preevy.dev/instance": instance}},
            "template": {
                "metadata": {"labels": {"preevy.dev/instance": instance}},
                "spec": {"containers": [{"name": "docker", "image": "docker:24.0.7-dind-alpine3.18"}]},
            },
        },
    }
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{instance}-dc", "labels": labels},
    }
    kubesim.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([deployment, configmap]))
    return instance


def test_a_legacy_deployment_environment_is_listed_and_removed(kubesim, namespace, env, tmp_path):
    instance = legacy_environment(kubesim, namespace, "default", "old-env")
    listed = json.loads(preevy("ls", "-n", namespace, "-o", "json", cwd=tmp_path, env=env, check=True).stdout)
    assert [(e["envId"], e["instance"], e["dockerHost"]) for e in listed["items"]] == [
        ("old-env", instance, "Deployment")
    ]
    assert "(legacy Deployment)" in preevy("ls", "-n", namespace, cwd=tmp_path, env=env, check=True).stdout
    preevy("down", "-n", namespace, "--id", "old-env", cwd=tmp_path, env=env, check=True)
    assert environment_objects(kubesim, namespace, "preevy.dev/env-id=old-env") == []


def test_purge_of_the_profile_then_of_every_profile(kubesim, namespace, env, tmp_path):
    legacy_environment(kubesim, namespace, "default", "mine")
    legacy_environment(kubesim, namespace, "someone-else", "theirs")
    flags = ["-n", namespace, "--yes", "--wait", "-o", "json"]
    mine = json.loads(preevy("purge", *flags, cwd=tmp_path, env=env, check=True).stdout)
    assert mine["envIds"] == ["mine"]
    assert environment_objects(kubesim, namespace, "preevy.dev/profile-id=default") == []
    assert len(environment_objects(kubesim, namespace, "preevy.dev/profile-id=someone-else")) == 2
    every = json.loads(preevy("purge", *flags, "--all-profiles", cwd=tmp_path, env=env, check=True).stdout)
    assert every["envIds"] == ["theirs"]
    assert environment_objects(kubesim, namespace, "preevy.dev/profile-id") == []
    nothing = preevy("purge", *flags, "--all-profiles", cwd=tmp_path, env=env, check=True)
    assert "nothing to purge" in nothing.stderr and json.loads(nothing.stdout)["envIds"] == []


def _on_a_terminal(argv: list[str], answer: bytes, cwd, env) -> subprocess.CompletedProcess:
    """argv with a pseudo-terminal as stdin, typing answer."""
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        os.close(secondary)
        secondary = -1
        os.write(primary, answer)
        out, err = proc.communicate(timeout=60)
        return subprocess.CompletedProcess(argv, proc.returncode, out.decode(), err.decode())
    finally:
        os.close(primary)
        if secondary != -1:
            os.close(secondary)


def _terminal_output(argv: list[str], cwd, env) -> str:
    """What argv writes on a pseudo-terminal that is its stdin and stdout."""
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=secondary, stdout=secondary, stderr=subprocess.PIPE)
    os.close(secondary)
    output = b""
    try:
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            output += chunk
        assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)
    return output.decode(errors="replace")
