"""Measure tests/kubesim itself: time for a dockerd StatefulSet to roll out, port-forward and exec throughput,
and the emulator's RSS around those transfers (the claim: exec and port-forward stream with bounded memory).
Prints a markdown table (median of --runs).

    python bench/emulator.py [--runs 3] [--mb 200]

Needs what the emulator tests need: kubectl, dockerd, python3, root.
"""

import argparse
import os
import pathlib
import re
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.kubesim.launcher import Kubesim, stop_process  # noqa: E402

MB = 1_000_000
PORT = 7000  # exists only inside the pod's network namespace
CHUNK = 1 << 20
# b"U" + size: read size bytes, answer b"k". b"D" + size: send size zero bytes.
SINK = (
    """
import socket, struct, threading
def serve(conn):
    with conn:
        op, size = struct.unpack(">cQ", conn.recv(9, socket.MSG_WAITALL))
        while op == b"U" and size > 0 and (data := conn.recv(min(size, 1 << 20))):
            size -= len(data)
        while op == b"D" and size > 0:
            size -= conn.send(ZEROS[:size])
        conn.sendall(b"k" if op == b"U" and size == 0 else b"")
ZEROS = bytes(1 << 20)
server = socket.create_server(("127.0.0.1", %d))
while True:
    threading.Thread(target=serve, args=(server.accept()[0],), daemon=True).start()
"""
    % PORT
)


def manifest(name: str) -> str:
    """The shape of templates/default.yaml.njk's StatefulSet, plus a sink/source server container."""
    docker = {
        "name": "docker",
        "image": "docker:24.0.7-dind-alpine3.18",
        "securityContext": {"privileged": True},
        "command": ["dockerd", "--host=tcp://0.0.0.0:2375", "--host=unix:///var/run/docker.sock"],
        "readinessProbe": {
            "httpGet": {"path": "/_ping", "port": 2375},
            "periodSeconds": 1,
            "failureThreshold": 30,
        },
        "volumeMounts": [
            {"name": "docker-config", "mountPath": "/etc/docker"},
            {"name": "data", "subPath": "docker", "mountPath": "/var/lib/docker"},
        ],
    }
    sink = {
        "name": "sink",
        "image": "python:3-alpine",
        "command": ["python3", "-c", SINK],
        "readinessProbe": {"tcpSocket": {"port": PORT}, "periodSeconds": 1},
    }
    labels = {"app": name}
    return yaml.safe_dump_all(
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"{name}-dc"},
                "data": {"daemon.json": '{\n  "tls": false\n}\n'},
            },
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": name},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "containers": [docker, sink],
                            "volumes": [{"name": "docker-config", "configMap": {"name": f"{name}-dc"}}],
                        },
                    },
                    "volumeClaimTemplates": [
                        {
                            "metadata": {"name": "data"},
                            "spec": {
                                "accessModes": ["ReadWriteOnce"],
                                "resources": {"requests": {"storage": "1Gi"}},
                            },
                        }
                    ],
                },
            },
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mb", type=int, default=200, help="MB per transfer")
    args = parser.parse_args()
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="kubesim-bench-") as tmp:
        sim = Kubesim(pathlib.Path(tmp)).start()
        env = sim.env
        try:
            for run in range(args.runs):
                for label, value in measure(sim.proc.pid, env, f"bench-{run}", args.mb * MB).items():
                    rows.setdefault(label, []).append(value)
        finally:
            sim.stop()
    print(f"| kubesim ({args.mb} MB per transfer) | median of {args.runs} |\n|---|---|")
    for label, values in rows.items():
        print(f"| {label} | {statistics.median(values):.2f} |")
    return 0


def measure(pid: int, env: dict, ns: str, size: int) -> dict[str, float]:
    kubectl(env, "create", "namespace", ns)
    results = {"emulator RSS before rollout (MB)": status_mb(pid, "VmRSS")}
    started = time.monotonic()
    kubectl(env, "apply", "-n", ns, "-f", "-", input=manifest("dind").encode())
    kubectl(env, "rollout", "status", "-n", ns, "statefulset/dind", "--timeout=120s", timeout=150)
    results["dockerd StatefulSet: apply -> rollout status (s)"] = time.monotonic() - started
    results["emulator RSS before transfers (MB)"] = status_mb(pid, "VmRSS")
    pathlib.Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM: the peak below is the transfers'
    forward = subprocess.Popen(
        ["kubectl", "port-forward", "-n", ns, "pod/dind-0", f":{PORT}"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        match = re.search(rf"Forwarding from 127\.0\.0\.1:(\d+) -> {PORT}", forward.stdout.readline())
        assert match, "kubectl port-forward did not start"
        for op, what in ((b"U", "upload"), (b"D", "download")):
            for n in (1, 2):
                results[f"port-forward {what}, {n} connection(s) (MB/s, total)"] = throughput(
                    size, lambda op=op: forwarded(int(match.group(1)), size, op), n
                )
    finally:
        stop_process(forward)
    kube_exec = ["kubectl", "exec", "-n", ns, "dind-0", "-c", "docker"]
    results["exec -i `cat > /dev/null` (MB/s)"] = throughput(
        size,
        lambda: streamed([*kube_exec, "-i", "--", "sh", "-c", "cat > /dev/null"], env, size, upload=True),
    )
    results["exec `head -c N /dev/zero` (MB/s)"] = throughput(
        size,
        lambda: streamed([*kube_exec, "--", "head", "-c", str(size), "/dev/zero"], env, size, upload=False),
    )
    results["emulator RSS after transfers (MB)"] = status_mb(pid, "VmRSS")
    results["emulator peak RSS during transfers, VmHWM (MB)"] = status_mb(pid, "VmHWM")
    kubectl(env, "delete", "namespace", ns, "--timeout=120s", timeout=150)
    return results


def throughput(size: int, transfer, connections: int = 1) -> float:
    started = time.monotonic()
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(lambda _: transfer(), range(connections)))  # re-raises a transfer's error
    return connections * size / MB / (time.monotonic() - started)


def forwarded(port: int, size: int, op: bytes) -> None:
    """One connection through the port-forward: b"U" sends size bytes to the sink, b"D" reads size bytes."""
    block, moved = os.urandom(CHUNK), 0
    with socket.create_connection(("127.0.0.1", port), timeout=120) as conn:
        conn.sendall(struct.pack(">cQ", op, size))
        if op == b"U":
            for offset in range(0, size, CHUNK):
                conn.sendall(block[: size - offset])
            moved = size if conn.recv(1) == b"k" else 0  # the sink's acknowledgement: it read them all
        while moved < size and (data := conn.recv(CHUNK)):
            moved += len(data)
    if moved != size:
        raise RuntimeError(f"port-forward {op!r}: {moved} of {size} bytes moved")


def streamed(argv: list[str], env: dict, size: int, upload: bool) -> None:
    """Runs kubectl exec, writing size bytes to its stdin (upload) or reading size bytes from its stdout."""
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.PIPE if upload else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL if upload else subprocess.PIPE,
    )
    block, moved = os.urandom(CHUNK), 0
    try:
        if upload:
            for moved in range(0, size, CHUNK):
                proc.stdin.write(block[: size - moved])
            proc.stdin.close()
            moved = size  # every write went through
        else:
            while data := proc.stdout.read1(CHUNK):
                moved += len(data)
        if proc.wait(120) != 0 or moved != size:
            raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode} after {moved} of {size} bytes")
    finally:
        stop_process(proc)


def kubectl(env: dict, *args: str, input: bytes | None = None, timeout: float = 60) -> None:
    result = subprocess.run(["kubectl", *args], input=input, env=env, capture_output=True, timeout=timeout)
    if result.returncode != 0:
        sys.exit(f"kubectl {' '.join(args)} failed:\n{result.stderr.decode(errors='replace')}")


def status_mb(pid: int, field: str) -> float:
    status = pathlib.Path(f"/proc/{pid}/status").read_text()  # the emulator process alone, not its pods
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.M).group(1)) * 1024 / MB


if __name__ == "__main__":
    sys.exit(main())
