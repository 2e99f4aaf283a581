"""Container probes (exec, httpGet, tcpSocket; grpc counts as a TCP connect) run by kubelet.py.

exec probes run through the same nsenter argv as `kubectl exec` (wrapped in `timeout -s KILL`);
httpGet/tcpSocket connect to 127.0.0.1 inside the pod's network namespace.
"""
from __future__ import annotations

import asyncio
import dataclasses
import shutil
import ssl
import subprocess

TIMEOUT = shutil.which("timeout") or "/usr/bin/timeout"


@dataclasses.dataclass(frozen=True)
class ProbeParams:
    initial_delay: float
    period: float
    timeout: float
    success_threshold: int
    failure_threshold: int

    @classmethod
    def of(cls, probe: dict) -> "ProbeParams":
        def num(key, default):
            try:
                value = float(probe.get(key, default))
            except (TypeError, ValueError):
                value = default
            return value
        return cls(max(0.0, num("initialDelaySeconds", 0)), max(0.05, num("periodSeconds", 10) or 10),
                   max(0.05, num("timeoutSeconds", 1) or 1), max(1, int(num("successThreshold", 1))),
                   max(1, int(num("failureThreshold", 3))))


def resolve_port(container_spec: dict, port) -> int:
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for p in container_spec.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"unknown named port {port!r}")


async def run_probe(pod, container_name: str, container_spec: dict, probe: dict) -> bool:
    """One probe attempt: True on success. Never raises (a broken probe is a failure)."""
    params = ProbeParams.of(probe)
    try:
        if "exec" in probe:
            return await _exec(pod, container_name, (probe["exec"] or {}).get("command") or [], params.timeout)
        if "httpGet" in probe:
            return await asyncio.wait_for(_http(pod, container_spec, probe["httpGet"] or {}), params.timeout)
        if "tcpSocket" in probe or "grpc" in probe:
            spec = probe.get("tcpSocket") or probe.get("grpc") or {}
            _, writer = await asyncio.wait_for(pod.open_connection(resolve_port(container_spec, spec.get("port"))), params.timeout)
            writer.close()
            return True
        return True
    except (OSError, asyncio.TimeoutError, ValueError, KeyError, TypeError, ssl.SSLError, EOFError):
        return False


async def _exec(pod, container_name: str, command: list, timeout: float) -> bool:
    if not command:
        return False
    argv = pod.exec_argv(container_name, [TIMEOUT, "-s", "KILL", f"{timeout:g}", *map(str, command)])
    proc = await asyncio.create_subprocess_exec(*argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
    try:
        return await asyncio.wait_for(proc.wait(), timeout + 2) == 0
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return False
    except asyncio.CancelledError:
        if proc.returncode is None:
            proc.kill()
        raise


async def _http(pod, container_spec: dict, spec: dict) -> bool:
    port = resolve_port(container_spec, spec.get("port"))
    sock = await pod.connect_socket(port)
    tls = None
    if str(spec.get("scheme", "HTTP")).upper() == "HTTPS":
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    try:
        reader, writer = await asyncio.open_connection(sock=sock, ssl=tls, server_hostname=(spec.get("host") or "localhost") if tls else None)
    except BaseException:
        sock.close()
        raise
    try:
        headers = {"Host": f"{spec.get('host') or '127.0.0.1'}:{port}", "User-Agent": "kube-probe/1.32", "Accept": "*/*"}
        for h in spec.get("httpHeaders") or []:
            headers[h.get("name", "")] = h.get("value", "")
        path = spec.get("path") or "/"
        if not path.startswith("/"):
            path = "/" + path
        request = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "Connection: close\r\n\r\n"
        writer.write(request.encode())
        await writer.drain()
        line = await reader.readline()
        parts = line.split()
        return len(parts) >= 2 and parts[0].startswith(b"HTTP/") and 200 <= int(parts[1]) < 400
    finally:
        writer.close()
