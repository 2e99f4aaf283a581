"""Container probes (exec, httpGet, tcpSocket; grpc counts as a TCP connect) run by kubelet.py.

exec probes run through the same nsenter argv as `kubectl exec` (wrapped in `timeout -s KILL`);
httpGet/tcpSocket connect to 127.0.0.1 inside the pod's network namespace. A failure carries the
output the real kubelet puts in its Unhealthy event (`HTTP probe failed with statuscode: 500`,
`Get "http://10.244.0.5:2375/_ping": dial tcp 10.244.0.5:2375: connect: connection refused`,
`dial tcp 10.244.0.5:8080: i/o timeout`, an exec command's output (first 10 KiB) or
`command "..." timed out`), naming the pod IP as the real kubelet does (never connected to).
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import ssl
import subprocess
import time

TIMEOUT = shutil.which("timeout") or "/usr/bin/timeout"
EXEC_OUTPUT_LIMIT = 10 * 1024  # bytes of an exec probe's output kept, as the kubelet does


@dataclasses.dataclass(frozen=True)
class ProbeParams:
    initial_delay: float
    period: float
    timeout: float
    success_threshold: int
    failure_threshold: int

    @classmethod
    def of(cls, probe: dict) -> ProbeParams:
        def num(key, default):
            try:
                value = float(probe.get(key, default))
            except (TypeError, ValueError):
                value = default
            return value

        return cls(
            max(0.0, num("initialDelaySeconds", 0)),
            max(0.05, num("periodSeconds", 10) or 10),
            max(0.05, num("timeoutSeconds", 1) or 1),
            max(1, int(num("successThreshold", 1))),
            max(1, int(num("failureThreshold", 3))),
        )


def resolve_port(container_spec: dict, port) -> int:
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for p in container_spec.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"unknown named port {port!r}")


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    ok: bool
    output: str = ""  # what the real kubelet reports after "<Kind> probe failed: "


async def run_probe(pod, container_name: str, container_spec: dict, probe: dict) -> ProbeResult:
    """One probe attempt. Never raises (a broken probe is a failure). The failure output is
    worded as the real kubelet words it, with the pod IP as the target address."""
    params = ProbeParams.of(probe)
    try:
        if "exec" in probe:
            return await _exec(
                pod, container_name, (probe["exec"] or {}).get("command") or [], params.timeout
            )
        if "httpGet" in probe:
            return await _http(pod, container_spec, probe["httpGet"] or {}, params.timeout)
        if "tcpSocket" in probe or "grpc" in probe:
            return await _tcp(
                pod, container_spec, probe.get("tcpSocket") or probe.get("grpc") or {}, params.timeout
            )
        return ProbeResult(True)
    except (ValueError, KeyError, TypeError) as e:
        return ProbeResult(False, str(e))


async def _exec(pod, container_name: str, command: list, timeout: float) -> ProbeResult:
    if not command:
        return ProbeResult(False, "missing probe command")
    try:
        argv = pod.exec_argv(container_name, [TIMEOUT, "-s", "KILL", f"{timeout:g}", *map(str, command)])
    except OSError as e:
        return ProbeResult(False, str(e))
    began = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output = bytearray()
    reader = asyncio.create_task(_read_into(proc.stdout, output))
    try:
        code = await asyncio.wait_for(proc.wait(), timeout + 2)
        await asyncio.wait([reader], timeout=0.2)  # a leftover background process may hold the pipe
    except asyncio.TimeoutError:
        proc.kill()
        code = await proc.wait()
    finally:
        reader.cancel()
        if proc.returncode is None:
            proc.kill()
    if code == 0:
        return ProbeResult(True)
    if code == 128 + 9 and time.monotonic() - began >= timeout:
        return ProbeResult(False, f'command "{" ".join(map(str, command))}" timed out')
    return ProbeResult(False, output.decode(errors="replace"))


async def _read_into(stream: asyncio.StreamReader, output: bytearray) -> None:
    while chunk := await stream.read(4096):
        output += chunk[: max(0, EXEC_OUTPUT_LIMIT - len(output))]


async def _tcp(pod, container_spec: dict, spec: dict, timeout: float) -> ProbeResult:
    port = resolve_port(container_spec, spec.get("port"))
    target = f"{pod.pod_ip}:{port}"
    try:
        _, writer = await asyncio.wait_for(pod.open_connection(port), timeout)
    except asyncio.TimeoutError:
        return ProbeResult(False, f"dial tcp {target}: i/o timeout")
    except OSError as e:
        return ProbeResult(False, f"dial tcp {target}: connect: {_strerror(e)}")
    writer.close()
    return ProbeResult(True)


async def _http(pod, container_spec: dict, spec: dict, timeout: float) -> ProbeResult:
    port = resolve_port(container_spec, spec.get("port"))
    scheme = "https" if str(spec.get("scheme", "HTTP")).upper() == "HTTPS" else "http"
    path = spec.get("path") or "/"
    path = path if path.startswith("/") else "/" + path
    url = f"{scheme}://{spec.get('host') or pod.pod_ip}:{port}{path}"
    try:
        code = await asyncio.wait_for(_http_status(pod, spec, port, path, scheme == "https"), timeout)
    except asyncio.TimeoutError:
        return ProbeResult(
            False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
        )
    except ssl.SSLError as e:
        return ProbeResult(False, f'Get "{url}": {e.reason or e}')
    except (OSError, EOFError) as e:
        return ProbeResult(
            False,
            f'Get "{url}": dial tcp {pod.pod_ip}:{port}: connect: {_strerror(e)}'
            if isinstance(e, ConnectionRefusedError)
            else f'Get "{url}": {_strerror(e)}',
        )
    if code is None:
        return ProbeResult(False, f'Get "{url}": malformed HTTP response')
    if 200 <= code < 400:
        return ProbeResult(True)
    return ProbeResult(False, f"HTTP probe failed with statuscode: {code}")


async def _http_status(pod, spec: dict, port: int, path: str, https: bool) -> int | None:
    sock = await pod.connect_socket(port)
    tls = None
    if https:
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    try:
        reader, writer = await asyncio.open_connection(
            sock=sock, ssl=tls, server_hostname=(spec.get("host") or "localhost") if tls else None
        )
    except BaseException:
        sock.close()
        raise
    try:
        headers = {
            "Host": f"{spec.get('host') or '127.0.0.1'}:{port}",
            "User-Agent": "kube-probe/1.32",
            "Accept": "*/*",
        }
        for h in spec.get("httpHeaders") or []:
            headers[h.get("name", "")] = h.get("value", "")
        request = (
            f"GET {path} HTTP/1.1\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "Connection: close\r\n\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
        parts = (await reader.readline()).split()
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            return None
        return int(parts[1])
    finally:
        writer.close()


def _strerror(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror[0].lower() + e.strerror[1:]
    return str(e) or type(e).__name__
