"""kubectl's errors made ours: real kubectl 1.32 stderr (captured from the real binary) -> message, exit code."""

import os
import pathlib
import subprocess
import sys

import pytest

from kubectl_preevy import kubectl, process
from kubectl_preevy.errors import ExitCode
from kubectl_preevy.kubectl import translate_error
from kubectl_preevy.options import Connection

REFUSED_STDERR = (
    'E1128 22:00:13.776199   22140 memcache.go:265] "Unhandled Error" err="couldn\'t get current server API '
    'group list: Get \\"http://127.0.0.1:1/api?timeout=32s\\": dial tcp 127.0.0.1:1: connect: connection '
    'refused"\n'
    "The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?\n"
)

CASES = [
    (
        REFUSED_STDERR,
        ExitCode.CLUSTER,
        "cannot reach the cluster at 127.0.0.1:1: check that it is running",
    ),
    (
        "error: stat /home/u/nope.yaml: no such file or directory\n",
        ExitCode.CLUSTER,
        "kubeconfig /home/u/nope.yaml does not exist: pass an existing file with --kubeconfig",
    ),
    (
        'error: error loading config file "broken": yaml: line 1: did not find expected node content\n',
        ExitCode.CLUSTER,
        "kubeconfig broken cannot be read (yaml: line 1: did not find expected node content)",
    ),
    (
        "Error in configuration: context was not found for specified context: nope\n",
        ExitCode.CLUSTER,
        "context nope is not in the kubeconfig",
    ),
    (
        'error: auth info "nobody" does not exist\n',
        ExitCode.CLUSTER,
        "kubeconfig user nobody does not exist: pass one of `kubectl config get-users` with --user",
    ),
    (
        'error: no server found for cluster "nobody"\n',
        ExitCode.CLUSTER,
        "kubeconfig cluster nobody does not exist",
    ),
    (
        "error: unable to read certificate-authority /nope for c due to open /nope: no such file or directory\n",
        ExitCode.CLUSTER,
        "cannot read the certificate authority /nope (no such file or directory)",
    ),
    (
        "error: You must be logged in to the server (Unauthorized)\n",
        ExitCode.CLUSTER,
        "the cluster refused our credentials (error: You must be logged in to the server (Unauthorized))",
    ),
    (
        'Error from server (NotFound): namespaces "previews" not found\n',
        ExitCode.CLUSTER,
        "namespace previews does not exist: create it with `kubectl create namespace previews`",
    ),
    (
        'Error from server (Forbidden): statefulsets.apps is forbidden: User "dev" cannot list resource '
        '"statefulsets" in API group "apps" in the namespace "previews"\n',
        ExitCode.REFUSED,
        'the cluster refused `kubectl get`: statefulsets.apps is forbidden: User "dev" cannot list',
    ),
    (
        'Error from server (Forbidden): error when creating "STDIN": pods "x" is forbidden: violates '
        'PodSecurity "baseline:latest": privileged (container "docker" must not set '
        "securityContext.privileged=true)\n",
        ExitCode.REFUSED,
        'the cluster refused `kubectl get`: error when creating "STDIN": pods "x" is forbidden: violates',
    ),
    (
        'Error from server (Conflict): configmaps "lock" already exists\n',
        ExitCode.FAILURE,
        '`kubectl get` failed: configmaps "lock" already exists',
    ),
    ("", ExitCode.FAILURE, "`kubectl get` failed: exit code 1"),
]


@pytest.mark.parametrize(("stderr", "exit_code", "message"), CASES, ids=[c[2][:40] for c in CASES])
def test_kubectl_errors_become_one_line_with_what_to_do_and_a_named_exit_code(stderr, exit_code, message):
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    error = translate_error(stderr, "kubectl get", "previews", lines[-1] if lines else "exit code 1")
    assert error.exit_code == exit_code
    assert error.message.startswith(message), error.message
    assert "\n" not in error.message


def test_connection_flags_go_to_every_call_and_a_given_request_timeout_replaces_ours_on_api_calls_only():
    connection = Connection(
        as_user="dev",
        as_groups=("a", "b"),
        token="t0ken",
        server="https://k:6443",
        request_timeout="45s",
        insecure_skip_tls_verify=True,
    )
    client = kubectl.Kubectl("/k/config", "ctx", "previews", {}, connection)
    flags = [
        "--kubeconfig",
        "/k/config",
        "--context",
        "ctx",
        "--as=dev",
        "--as-group=a",
        "--as-group=b",
        "--token=t0ken",
        "--server=https://k:6443",
        "--insecure-skip-tls-verify=true",
    ]
    assert client.argv("get", "pods") == [
        "kubectl",
        *flags,
        "-n",
        "previews",
        "get",
        "--request-timeout",
        "45s",
        "pods",
    ]
    assert client.argv("port-forward", "pod/p", "0:2375") == [
        "kubectl",
        *flags,
        "-n",
        "previews",
        "port-forward",
        "pod/p",
        "0:2375",
    ]
    default = kubectl.Kubectl(None, None, "previews", {})
    assert default.argv("get", "pods") == [
        "kubectl",
        "-n",
        "previews",
        "get",
        "--request-timeout",
        "20s",
        "pods",
    ]


def test_the_error_names_the_verb_whatever_flags_came_before_it():
    client = kubectl.Kubectl(None, "ctx", "previews", {}, Connection(token="t", as_groups=("g",)))
    result = process.Result(client.argv("apply", "-f", "-"), 1, "", "error: something odd\n")
    assert client.error(result).message.startswith("`kubectl apply` failed: something odd: ")


def test_profiles_kept_in_the_cluster_are_read_with_the_connection_flags_too():
    from kubectl_preevy import cli, profiles

    parsed = cli.build_parser("kubectl preevy").parse_args(
        ["profile", "ls", "-n", "previews", "--token", "t0ken", "--as", "dev"]
    )
    store = profiles.ClusterStore.from_args(parsed, {})
    assert store.kubectl.argv("get", "configmaps")[:4] == ["kubectl", "--as=dev", "--token=t0ken", "-n"]


def test_meanwhile_runs_once_on_the_first_try_of_a_retried_call(tmp_path):
    """A transient failure is retried: what was to run meanwhile ran already, with the first try."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "kubectl"
    fake.write_text(
        "#!/bin/sh\n"
        f"if [ -e {tmp_path}/tried ]; then echo listed; exit 0; fi\n"
        f"touch {tmp_path}/tried\n"
        "echo 'Error from server (ServiceUnavailable): the server is currently unable to handle the request' >&2\n"
        "exit 1\n"
    )
    fake.chmod(0o755)
    (tmp_path / "kubeconfig").write_text("apiVersion: v1\nkind: Config\n")
    probe = (
        "import os; from kubectl_preevy.kubectl import Kubectl\n"
        f"k = Kubectl({str(tmp_path / 'kubeconfig')!r}, None, 'ns', os.environ)\n"
        "calls = []\n"
        "result = k.run('get', 'pods', meanwhile=lambda: calls.append(1))\n"
        "print(result.stdout.strip(), len(calls))\n"
    )
    src = pathlib.Path(kubectl.__file__).parents[1]
    env = dict(os.environ, PYTHONPATH=str(src), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["listed", "1"]
