"""connect: the services on 127.0.0.1 until stopped, surviving a dropped forward, without the compose files."""

import socket

import pytest

from tests.e2e import (
    connect,
    error_lines,
    hello_environment,
    http_get,
    port_forward_pids,
    preevy,
    remote,
    stop,
)

ENV_ID = "hello-connect"


@pytest.fixture(scope="module")
def environment(kubesim, tmp_path_factory):
    """One environment of examples/hello for every test here: (namespace, project dir, env, pod)."""
    with hello_environment(kubesim, tmp_path_factory.mktemp("connect"), ENV_ID) as found:
        yield found


def test_connect_with_only_the_id_and_stop_on_sigterm(environment, tmp_path):
    namespace, project, environ, pod = environment
    elsewhere = tmp_path / "no-compose-files-here"
    elsewhere.mkdir()
    served = connect(["-n", namespace, "--id", ENV_ID], elsewhere, environ, services=2)
    try:
        assert http_get(served.urls["web"]) == (project / "site" / "index.html").read_bytes()
        assert port_forward_pids(pod)
    finally:
        assert stop(served.proc) == 0
    assert port_forward_pids(pod) == []


def test_a_busy_local_port_moves_to_the_next_free_one(environment):
    namespace, project, environ, _pod = environment
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            busy.bind(("127.0.0.1", 8080))
            busy.listen()
        except OSError:
            pass  # already taken by another program: just as good
        served = connect(["-n", namespace, "--id", ENV_ID, "-o", "json"], project, environ, services=2)
        try:
            web = next(s for s in served.document["services"] if s["service"] == "web")
            assert web["port"] == 8080 and web["url"] != "http://localhost:8080"
            assert http_get(web["url"]) == (project / "site" / "index.html").read_bytes()
        finally:
            assert stop(served.proc) == 0
    assert served.document["apiVersion"] == "kubectl-preevy/v1" and served.document["envId"] == ENV_ID


def test_a_dropped_forward_is_restarted(environment, kubesim):
    """kubectl port-forward exits (`lost connection to pod`) when a forwarded connection fails: here, a
    request while the service is stopped. connect starts it again, and the service answers once back."""
    namespace, project, environ, pod = environment
    page = (project / "site" / "index.html").read_bytes()
    served = connect(["-n", namespace, "--id", ENV_ID], project, environ, services=2)
    try:
        assert http_get(served.urls["web"]) == page
        remote(kubesim, namespace, pod, "docker", "stop", "hello-web-1")
        with pytest.raises(OSError):
            http_get(served.urls["web"], timeout=0)
        remote(kubesim, namespace, pod, "docker", "start", "hello-web-1")
        assert http_get(served.urls["web"], timeout=30) == page
        assert served.proc.poll() is None
    finally:
        assert stop(served.proc) == 0
    stderr = "".join(served.stderr)
    assert "port-forward lost" in stderr and "port-forward restored" in stderr
    assert port_forward_pids(pod) == []


def test_connect_to_an_unknown_environment_fails_in_one_line(environment, tmp_path):
    namespace, _project, environ, _pod = environment
    result = preevy("connect", "-n", namespace, "--id", "nope", cwd=tmp_path, env=environ)
    assert result.returncode == 1
    assert error_lines(result.stderr) == [
        f"error: no environment nope in namespace {namespace}: see `kubectl preevy ls --namespace={namespace}`"
    ]
