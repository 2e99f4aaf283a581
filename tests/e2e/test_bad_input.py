"""Bad input: one `error:` line saying what to do, the right exit code, and nothing left half-made."""

import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys

import pytest

from tests.e2e import REPO_ROOT, environment_objects, error_lines, hello_project, preevy

MISSING_TOOL, USAGE, CLUSTER, TIMEOUT = 3, 2, 4, 5
TEMPLATE = REPO_ROOT / "templates" / "default.yaml.njk"
DOCKERD = '"dockerd", "--host=tcp://0.0.0.0:2375", "--host=unix:///var/run/docker.sock"'


@pytest.fixture
def project(tmp_path) -> pathlib.Path:
    return hello_project(tmp_path / "hello")


def failed(result: subprocess.CompletedProcess, exit_code: int, *phrases: str) -> str:
    """The one error line of a failed run, checked for exit code and phrases."""
    lines = error_lines(result.stderr)
    assert result.returncode == exit_code, result.stderr
    assert len(lines) == 1, result.stderr
    for phrase in phrases:
        assert phrase in lines[0]
    assert "Traceback" not in result.stderr
    return lines[0]


def nothing_created(kubesim, env_id: str) -> None:
    result = kubesim.kubectl(
        "get", "all,cm,sa,role,rolebinding,pvc", "-A", "-l", f"preevy.dev/env-id={env_id}", "-o", "name"
    )
    assert result.stdout.split() == []


def path_with(tmp_path: pathlib.Path, *tools: str) -> str:
    """A PATH holding only these programs (and python3, which runs kubectl-preevy)."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for tool in ("python3", *tools):
        target = sys.executable if tool == "python3" else shutil.which(tool)
        (directory / tool).symlink_to(os.path.realpath(target))
    return str(directory)


# --- missing programs ------------------------------------------------------------------------------


def test_missing_kubectl(project, env, tmp_path, kubesim):
    env["PATH"] = path_with(tmp_path, "docker")
    result = preevy("up", "--id", "no-kubectl", cwd=project, env=env)
    failed(result, MISSING_TOOL, "kubectl was not found on PATH")
    nothing_created(kubesim, "no-kubectl")


def test_missing_docker(project, env, tmp_path):
    env["PATH"] = path_with(tmp_path, "kubectl")
    failed(
        preevy("up", "--id", "no-docker", cwd=project, env=env), MISSING_TOOL, "docker was not found on PATH"
    )


def test_missing_compose_plugin(project, env, tmp_path, kubesim):
    """The docker CLI without its compose plugin: an empty DOCKER_CONFIG hides a per-user plugin, a tmpfs
    (in a private mount namespace) a system-wide one."""
    plugin = subprocess.run(
        [
            "docker",
            "info",
            "--format",
            '{{range .ClientInfo.Plugins}}{{if eq .Name "compose"}}{{.Path}}{{end}}{{end}}',
        ],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.strip()
    assert plugin, "the docker compose plugin is a prerequisite of these tests"
    env["DOCKER_CONFIG"] = str(tmp_path / "docker-config")
    argv = [str(REPO_ROOT / "kubectl-preevy"), "up", "--id", "no-compose"]
    docker_config = pathlib.Path(os.environ.get("DOCKER_CONFIG", pathlib.Path.home() / ".docker"))
    if not pathlib.Path(plugin).is_relative_to(docker_config):
        argv = [
            "unshare",
            "--mount",
            "sh",
            "-c",
            'mount -t tmpfs none "$0" && exec "$@"',
            str(pathlib.Path(plugin).parent),
            *argv,
        ]
    result = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, timeout=60)
    failed(result, MISSING_TOOL, "docker compose plugin is not installed")
    nothing_created(kubesim, "no-compose")


# --- the compose project ---------------------------------------------------------------------------


def test_no_compose_file(env, tmp_path):
    failed(preevy("up", "--id", "x", cwd=tmp_path, env=env), USAGE, "no compose file in", "-f FILE")


def test_invalid_compose_file(env, tmp_path):
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n    colour: blue\n")
    failed(preevy("up", "--id", "x", cwd=tmp_path, env=env), USAGE, "invalid compose project", "colour")


# --- the cluster -----------------------------------------------------------------------------------


def test_cluster_unreachable(project, env, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the test runs kubectl
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: gone, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
contexts: [{{name: gone, context: {{cluster: gone, user: gone}}}}]
users: [{{name: gone, user: {{token: x}}}}]
current-context: gone
""")
    env["KUBECONFIG"] = str(kubeconfig)
    failed(
        preevy("up", "--id", "x", cwd=project, env=env),
        CLUSTER,
        f"cannot reach the cluster at 127.0.0.1:{port}",
    )


def test_kubeconfig_broken(project, env, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("clusters: [\n")
    env["KUBECONFIG"] = str(kubeconfig)
    failed(
        preevy("up", "--id", "x", cwd=project, env=env), CLUSTER, f"kubeconfig {kubeconfig} cannot be read"
    )


def test_context_missing(project, env, kubesim):
    failed(
        preevy("up", "--id", "no-context", "--context", "nope", cwd=project, env=env),
        CLUSTER,
        "context nope is not in the kubeconfig",
    )
    nothing_created(kubesim, "no-context")


def test_namespace_missing(project, env, kubesim):
    failed(
        preevy("up", "--id", "no-namespace", "-n", "does-not-exist", cwd=project, env=env),
        CLUSTER,
        "namespace does-not-exist does not exist",
        "kubectl create namespace does-not-exist",
    )
    nothing_created(kubesim, "no-namespace")


# --- the template ----------------------------------------------------------------------------------


def test_template_that_does_not_render(project, env, namespace, kubesim, tmp_path):
    template = tmp_path / "bad.yaml.njk"
    template.write_text(TEMPLATE.read_text().replace("{{ storageSize }}Gi", "{{ storageSise }}Gi"))
    failed(
        preevy(
            "up",
            "--id",
            "bad-render",
            "-n",
            namespace,
            "--kube-pod-template",
            str(template),
            cwd=project,
            env=env,
        ),
        USAGE,
        str(template),
        "storageSise",
    )
    nothing_created(kubesim, "bad-render")


def test_template_that_does_not_parse(project, env, namespace, kubesim, tmp_path):
    template = tmp_path / "bad.yaml.njk"
    template.write_text(TEMPLATE.read_text().replace("kind: ConfigMap", "kind: ConfigMap\n  - oops: [", 1))
    failed(
        preevy(
            "up",
            "--id",
            "bad-yaml",
            "-n",
            namespace,
            "--kube-pod-template",
            str(template),
            cwd=project,
            env=env,
        ),
        USAGE,
        str(template),
        "invalid YAML",
    )
    nothing_created(kubesim, "bad-yaml")


DOCKER_CONFIG_VOLUME = "configMap:\n          name: {{ id }}-dc"
PROBE = "readinessProbe:\n          httpGet:\n            path: /_ping\n            port: 2375\n"
FAILING_PROBE = (
    'readinessProbe:\n          exec:\n            command: ["sh", "-c", "echo docker is not ready; '
    'echo try later; exit 1"]\n'
)
NEVER_READY = [
    # (env id, what the template gets wrong, --timeout, the reason the error must give)
    # (a crash-looping container ends `up` at once, before any timeout: see
    # tests/e2e/test_permissions_policies.py::test_a_crash_looping_container_ends_up_at_once...)
    (
        "probe-fails",
        (PROBE, FAILING_PROBE),
        "8s",
        "Unhealthy: Readiness probe failed: docker is not ready try later",
    ),
    (
        "mount-fails",
        (DOCKER_CONFIG_VOLUME, DOCKER_CONFIG_VOLUME.replace("-dc", "-missing")),
        "5s",
        r'FailedMount: MountVolume.SetUp failed for volume "docker-config" : configmap "default-mount-fails-\w+-missing" '
        "not found",
    ),
]


@pytest.mark.parametrize(
    "env_id, change, timeout, reason", NEVER_READY, ids=[case[0] for case in NEVER_READY]
)
def test_pod_never_ready_names_the_most_telling_reason_and_the_cleanup(
    project, env, namespace, kubesim, tmp_path, env_id, change, timeout, reason
):
    template = tmp_path / "never-ready.yaml.njk"
    text = TEMPLATE.read_text()
    assert change[0] in text
    template.write_text(text.replace(*change))
    flags = ["--id", env_id, "-n", namespace]
    result = preevy(
        "up", *flags, "--kube-pod-template", str(template), "--timeout", timeout, cwd=project, env=env
    )
    events = kubesim.kubectl("get", "events", "-n", namespace, "--field-selector", "type=Warning").stdout
    assert "no profile yet: created profile 'default' (id default)" in result.stderr  # says it on first use
    line = failed(
        result,
        TIMEOUT,
        f"environment {env_id} not ready after {timeout}: ",
        f"remove with `kubectl preevy down --id {env_id} --namespace={namespace}`",
    )
    assert re.search(f"not ready after {timeout}: {reason}; inspect with `kubectl describe pod ", line), (
        f"{line}\nthe emulator's warning events:\n{events}"
    )
    preevy("down", *flags, cwd=project, env=env, check=True)
    assert environment_objects(kubesim, namespace, f"preevy.dev/env-id={env_id}") == []


def test_invalid_timeout(project, env):
    failed(
        preevy("up", "--id", "x", "--timeout", "soon", cwd=project, env=env),
        USAGE,
        "invalid --timeout 'soon'",
    )
