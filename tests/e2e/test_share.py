"""`share`: the kubeconfig it prints can `connect` and reach the page, and can do nothing else; `down`
removes the access."""

import json
import signal
import subprocess

import yaml

from tests.e2e import connect, environment_objects, hello_project, http_get, preevy, stop, up_json
from tests.routing import gateway


def kubectl_as(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["kubectl", *args], env=env, capture_output=True, text=True, timeout=60)


def test_share_kubeconfig_connects_and_can_do_nothing_else(kubesim, namespace, env, tmp_path):
    project = hello_project(tmp_path / "hello")
    domain = f"{namespace}.share.test"
    kubesim.kubectl("apply", "-n", namespace, "--server-side", "-f", "-", input=gateway("previews", domain))
    flags = ["-n", namespace, "--id", "shared"]
    exposed = ["--expose", "gateway", "--domain", domain, "--gateway", "previews"]
    document = up_json(*flags, *exposed, cwd=project, env=env)
    pod = f"{document['statefulSet']}-0"

    result = preevy("share", *flags, "--ttl", "1h", cwd=project, env=env, check=True)
    config = yaml.safe_load(result.stdout)
    assert config["contexts"][0]["context"]["namespace"] == namespace
    assert "token" in config["users"][0]["user"]
    kubeconfig = tmp_path / "reviewer.kubeconfig"
    kubeconfig.write_text(result.stdout)
    reviewer = {**env, "KUBECONFIG": str(kubeconfig)}
    elsewhere = tmp_path / "reviewer"
    elsewhere.mkdir()

    served = connect(["--id", "shared"], elsewhere, reviewer, services=2)
    try:
        assert http_get(served.urls["web"]) == (project / "site" / "index.html").read_bytes()
    finally:
        assert stop(served.proc, signal.SIGINT) == 0

    urls = preevy("urls", "web", "--id", "shared", "-o", "json", cwd=elsewhere, env=reviewer, check=True)
    assert [s["url"] for s in json.loads(urls.stdout)["services"]] == [f"http://web-8080-shared.{domain}"]

    secrets = kubectl_as(reviewer, "get", "secrets")
    assert secrets.returncode != 0 and "Forbidden" in secrets.stderr
    execed = kubectl_as(reviewer, "exec", pod, "--", "true")
    assert execed.returncode != 0 and "Forbidden" in execed.stderr
    pods = kubectl_as(reviewer, "get", "pods")
    assert pods.returncode != 0 and "Forbidden" in pods.stderr

    preevy("down", *flags, cwd=project, env=env, check=True)
    assert environment_objects(kubesim, namespace, "preevy.dev/env-id=shared") == []
    gone = kubectl_as(reviewer, "get", "pod", pod)
    assert gone.returncode != 0
