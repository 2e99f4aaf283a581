"""What a user reporting a problem sees: -v/-vv, kubectl's connection flags on every call (the token never
shown), error documents with -o json|yaml, and the log file of a failed run."""

import json
import pathlib
import re
import socket

import yaml

from tests.e2e import error_lines, hello_project, preevy

TOKEN = "kubesim"  # the emulator's user token: valid, so the run succeeds with it given as a flag


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_connection_flags_reach_every_kubectl_call_and_hints_and_logs_never_show_the_token(
    kubesim, namespace, env, tmp_path
):
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "hello-flags", "--token", TOKEN, "--request-timeout", "45s"]
    up = preevy("up", "-v", "-o", "yaml", "--timeout", "60s", *flags, cwd=project, env=env, timeout=180)
    assert up.returncode == 0, up.stderr
    document = yaml.safe_load(up.stdout)
    assert (document["apiVersion"], document["kind"], document["envId"]) == (
        "kubectl-preevy/v1",
        "Environment",
        "hello-flags",
    )
    assert "--token=REDACTED" in document["connect"] and "--request-timeout=45s" in document["connect"]
    runs = [line for line in up.stderr.splitlines() if line.startswith("$ kubectl ")]
    assert len(runs) > 5
    assert all("--token=REDACTED" in line for line in runs), runs
    api_calls = [line for line in runs if re.search(r" (get|apply|create|delete|label) ", line)]
    assert api_calls and all("--request-timeout 45s" in line for line in api_calls), api_calls
    assert f"--token={TOKEN}" not in up.stderr + up.stdout
    # compose runs as the plugin the docker CLI would start (compose.compose_command), shown as run
    compose = r"^\$ (docker compose|\S+/docker-compose) .* \(exit 0, [0-9.]+s\)$"
    assert re.search(compose, up.stderr, re.M), up.stderr

    down = preevy("down", "-o", "json", *flags, cwd=project, env=env)
    assert down.returncode == 0, down.stderr
    assert json.loads(down.stdout)["kind"] == "DeletedEnvironment"


def test_an_unreachable_server_is_one_error_line_an_error_document_and_a_log_with_kubectls_stderr(
    namespace, env, tmp_path
):
    server = f"http://127.0.0.1:{unused_port()}"
    secret = "s3cret-never-shown"
    result = preevy(
        "ls",
        "-vv",
        "-o",
        "json",
        "-n",
        namespace,
        "--server",
        server,
        "--token",
        secret,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 4, result.stderr
    [line] = error_lines(result.stderr)
    assert server.removeprefix("http://") in line
    assert json.loads(result.stdout) == {
        "apiVersion": "kubectl-preevy/v1",
        "kind": "Error",
        "message": line.removeprefix("error: "),
        "exitCode": 4,
        "reason": "CLUSTER",
    }
    assert re.search(r"^  \| .*connection refused", result.stderr, re.M), (
        result.stderr
    )  # -vv: kubectl's stderr
    [log_line] = [
        x for x in result.stderr.splitlines() if x.startswith("the commands run and their full output: ")
    ]
    log = pathlib.Path(log_line.split(": ", 1)[1])
    assert log.parent == pathlib.Path(env["XDG_STATE_HOME"]) / "kubectl-preevy" / "logs"
    text = log.read_text()
    assert "outcome: error: " in text and f"--server={server}" in text and "--token=REDACTED" in text
    assert re.search(r"^  \| .*connection refused", text, re.M), text
    assert secret not in text + result.stderr + result.stdout
    assert log.stat().st_mode & 0o077 == 0  # the owner's only


def test_identity_flags_reach_the_cluster_a_forbidden_answer_is_6_and_a_bad_token_is_4(
    kubesim, namespace, env, tmp_path
):
    def ls(*flags: str):
        return preevy("ls", "-n", namespace, *flags, cwd=tmp_path, env=env)

    assert ls("--as", "intern@example.com", "--as-group", "system:masters").returncode == 0
    refused = ls("--as", "intern@example.com", "-o", "json")
    assert refused.returncode == 6, refused.stderr
    [line] = error_lines(refused.stderr)
    assert line.startswith("error: the cluster refused `kubectl get`: ") and "intern@example.com" in line
    assert json.loads(refused.stdout)["reason"] == "REFUSED"
    # a valid client certificate authenticates before any token (kube-apiserver's authenticator order):
    # a bad --token is refused only where the kubeconfig's user has no certificate
    token_only = kubesim.kubeconfig_for_token(
        "an-expired-token", namespace, path=tmp_path / "token.kubeconfig"
    )
    unauthorized = ls("--kubeconfig", str(token_only), "--token", "not-a-valid-token")
    assert unauthorized.returncode == 4, unauthorized.stderr
    [line] = error_lines(unauthorized.stderr)
    assert (
        line.startswith("error: the cluster refused our credentials")
        and "not-a-valid-token" not in unauthorized.stderr
    )
    missing_ca = ls("--certificate-authority", str(tmp_path / "no-such-ca.crt"))
    assert missing_ca.returncode == 4, missing_ca.stderr
    assert error_lines(missing_ca.stderr) == [
        f"error: cannot read the certificate authority {tmp_path / 'no-such-ca.crt'} (no such file or directory): "
        "pass a readable file with --certificate-authority"
    ]
