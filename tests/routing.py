"""Helpers of the tests (and the demo) that reach pages through the emulator's ingress and Gateway
data plane: self-signed wildcard certificates, TLS Secrets, Gateways, and curl through a local port."""

from __future__ import annotations

import pathlib
import subprocess
import time

from tests.prerequisites import require_tool

GW = "gateway.networking.k8s.io/v1"


def certificate(directory: pathlib.Path, domain: str) -> tuple[pathlib.Path, pathlib.Path]:
    """A self-signed wildcard certificate for *.domain, made with openssl."""
    require_tool("openssl")
    crt, key = directory / f"{domain}.crt", directory / f"{domain}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-keyout", str(key), "-out", str(crt), "-subj", f"/CN=*.{domain}"]
        + ["-addext", f"subjectAltName=DNS:*.{domain}"],
        check=True,
        capture_output=True,
    )
    return crt, key


def curl(url: str, port: int, ca: pathlib.Path | None = None, timeout: float = 30) -> tuple[int, str]:
    """(HTTP status, body) of url reached at 127.0.0.1:port, retried while the route comes up."""
    require_tool("curl")
    argv = ["curl", "-sS", "--max-time", "10", "--connect-to", f"::127.0.0.1:{port}", "-w", "\n%{http_code}"]
    argv += ["--cacert", str(ca)] if ca else []
    deadline = time.monotonic() + timeout
    while True:
        result = subprocess.run([*argv, url], capture_output=True, text=True)
        if result.returncode == 0:
            body, _, code = result.stdout.rpartition("\n")
            if code == "200" or time.monotonic() > deadline:
                return int(code), body
        elif time.monotonic() > deadline:
            raise AssertionError(f"curl {url}: {result.stderr}")
        time.sleep(0.3)


def tls_secret(kubesim, namespace: str, name: str, crt: pathlib.Path, key: pathlib.Path) -> None:
    kubesim.kubectl("create", "secret", "tls", name, "-n", namespace, f"--cert={crt}", f"--key={key}")


def gateway(name: str, domain: str, allowed: str = "Same", secret: str | None = None) -> str:
    https = (
        f"""
  - name: https
    protocol: HTTPS
    port: 443
    hostname: "*.{domain}"
    tls: {{mode: Terminate, certificateRefs: [{{kind: Secret, name: {secret}}}]}}
    allowedRoutes: {{namespaces: {{from: {allowed}}}}}"""
        if secret
        else ""
    )
    return f"""
apiVersion: {GW}
kind: Gateway
metadata: {{name: {name}}}
spec:
  gatewayClassName: kubesim
  listeners:
  - name: http
    protocol: HTTP
    port: 80
    hostname: "*.{domain}"
    allowedRoutes: {{namespaces: {{from: {allowed}}}}}{https}
"""
