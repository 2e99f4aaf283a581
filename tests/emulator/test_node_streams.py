"""Pod streams of kubesim (exec, port-forward, logs), driven by the real kubectl, docker and dockerd.

Also unit tests of the SPDY/3.1 codec the port-forward tunnel is built on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import queue
import random
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.request
import uuid
import zlib
from typing import Any

import pytest

from tests.kubesim import spdy
from tests.prerequisites import require_tool

MB = 1_000_000
ECHO_PORT = 7000  # exists only inside the echo pod's network namespace
ECHO_SERVER = """
import socket, sys, threading
def echo(conn):
    with conn:
        while data := conn.recv(1 << 16):
            conn.sendall(data)
server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    threading.Thread(target=echo, args=(server.accept()[0],), daemon=True).start()
"""


# ---------------------------------------------------------------- SPDY codec


def test_spdy_dictionary_is_the_spec_one():
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == 3821447106  # the dictionary id zlib streams carry


def test_spdy_header_blocks_share_one_zlib_stream_per_direction():
    compressor, decompressor = spdy.HeaderCompressor(), spdy.HeaderDecompressor()
    blocks = [
        {"streamtype": "error", "port": "2375", "requestid": "0"},
        {"streamtype": "data", "port": "2375", "requestid": "0"},
        {},
        {"streamtype": "data", "port": "8080", "requestid": "17"},
    ]
    encoded = [compressor.encode(headers) for headers in blocks]
    assert encoded[0][:6] == bytes.fromhex("78f9e3c6a7c2")  # what kubectl's first block starts with
    assert [decompressor.decode(block) for block in encoded] == blocks
    with pytest.raises(spdy.ProtocolError):
        spdy.HeaderDecompressor().decode(encoded[1])  # a block only decodes in its stream's context


def test_spdy_frames_reassemble_from_any_split():
    compressor = spdy.HeaderCompressor()
    wire = b"".join(
        [
            spdy.syn_reply_frame(1, compressor.encode({"a": "b"})),
            spdy.data_frame(3, os.urandom(40_000)),
            spdy.data_frame(3, b"", fin=True),
            spdy.rst_stream_frame(5, spdy.RST_CANCEL),
            spdy.ping_frame(7),
            spdy.goaway_frame(5),
        ]
    )
    whole: list[Any] = list(spdy.FrameReader().feed(wire))
    reader, position = spdy.FrameReader(), 0
    pieces: list[Any] = []
    rng = random.Random(1)
    while position < len(wire):
        step = rng.choice([0, 1, 2, 4, 51, 4096])  # kubectl writes each frame field on its own
        pieces += reader.feed(wire[position : position + step])
        position += step
    assert pieces == whole
    assert [type(f).__name__ for f in whole] == [
        "ControlFrame",
        "DataFrame",
        "DataFrame",
        "ControlFrame",
        "ControlFrame",
        "ControlFrame",
    ]
    assert whole[1].stream_id == 3 and len(whole[1].data) == 40_000 and not whole[1].fin and whole[2].fin
    assert (whole[3].type, whole[3].stream_id, spdy.rst_status(whole[3])) == (
        spdy.RST_STREAM,
        5,
        spdy.RST_CANCEL,
    )
    assert (whole[4].type, spdy.ping_id(whole[4])) == (spdy.PING, 7)
    assert whole[5].type == spdy.GOAWAY


def test_spdy_syn_stream_header_block_is_found_after_priority_and_slot():
    block = spdy.HeaderCompressor().encode({"streamtype": "data"})
    payload = struct.pack(">IIBB", 3, 0, 0, 0) + block
    frame: Any = next(
        spdy.FrameReader().feed(struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, len(payload)) + payload)
    )
    assert frame.stream_id == 3
    assert spdy.HeaderDecompressor().decode(spdy.syn_stream_header_block(frame)) == {"streamtype": "data"}


# ---------------------------------------------------------------- helpers


def _pod(name: str, command: list[str], **spec) -> dict:
    container = {"name": "main", "image": "busybox:1.36", "command": command}
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [container], **spec},
    }


def _run_pod(sim, namespace: str, *objects: dict, timeout: int = 60) -> None:
    sim.kubectl("apply", "-n", namespace, "-f", "-", input="\n---\n".join(json.dumps(o) for o in objects))
    pods = [o["metadata"]["name"] for o in objects if o["kind"] == "Pod"]
    sim.kubectl(
        "wait",
        "-n",
        namespace,
        "--for=condition=Ready",
        *[f"pod/{p}" for p in pods],
        f"--timeout={timeout}s",
        timeout=timeout + 10,
    )


def _echo_pod(name: str = "echo") -> dict:
    probe = {"tcpSocket": {"port": ECHO_PORT}, "periodSeconds": 1}
    return _pod(name, ["python3", "-c", ECHO_SERVER, str(ECHO_PORT)], container={"readinessProbe": probe})


class _Kubectl:
    """A long-running kubectl (port-forward, logs -f) whose stdout lines are collected by a thread."""

    def __init__(self, sim, *args: str) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            [require_tool("kubectl"), *args],
            env=sim.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr = ""
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()

    def _read_stdout(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _read_stderr(self) -> None:
        self.stderr = self.proc.stderr.read()

    def line_matching(self, pattern: str, timeout: float = 30) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"kubectl {' '.join(self.args)}: no line matching {pattern!r} "
                    f"within {timeout}s; stderr: {self.stderr}"
                ) from None
            if line is None:
                raise AssertionError(
                    f"kubectl {' '.join(self.args)} ended (exit {self.proc.wait(5)}) "
                    f"before printing {pattern!r}; stderr: {self.wait_stderr()}"
                )
            if match := re.search(pattern, line):
                return match

    def wait_stderr(self, timeout: float = 10) -> str:
        self._stderr_reader.join(timeout)
        return self.stderr

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # by pid
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@contextlib.contextmanager
def _kubectl_running(sim, *args: str):
    kubectl = _Kubectl(sim, *args)
    try:
        yield kubectl
    finally:
        kubectl.stop()


@contextlib.contextmanager
def _port_forward(sim, namespace: str, pod: str, port: int):
    """`kubectl port-forward pod/POD :PORT`; yields (local port, the running kubectl)."""
    with _kubectl_running(sim, "port-forward", "-n", namespace, f"pod/{pod}", f":{port}") as kubectl:
        local = kubectl.line_matching(rf"Forwarding from 127\.0\.0\.1:(\d+) -> {port}")
        yield int(local.group(1)), kubectl


def _echo_round_trip(port: int, size: int, chunk: int = MB) -> tuple[str, str, int]:
    """Streams `size` random bytes through an echo connection while reading the echo.

    Returns (sha256 sent, sha256 received, bytes received). Memory stays at one chunk."""
    sent, received, count = hashlib.sha256(), hashlib.sha256(), 0
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:

        def read_echo() -> None:
            nonlocal count
            with contextlib.suppress(OSError):
                while count < size and (data := conn.recv(1 << 20)):
                    received.update(data)
                    count += len(data)

        reader = threading.Thread(target=read_echo, daemon=True)
        reader.start()
        with contextlib.suppress(OSError):
            for _ in range(0, size, chunk):
                data = os.urandom(chunk)
                sent.update(data)
                conn.sendall(data)
        reader.join(60)
    return sent.hexdigest(), received.hexdigest(), count


def _until(probe, good, timeout: float = 30):
    """probe() until good(its value), or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not good(value := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {timeout}s")
        time.sleep(0.2)
    return value


def _tree(root: pathlib.Path) -> dict[str, tuple]:
    """Relative path -> what a user would compare: file bytes (hashed), link target, or dir."""
    tree: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if path.is_symlink():
            tree[relative] = ("link", os.readlink(path))
        elif path.is_dir():
            tree[relative] = ("dir",)
        else:
            tree[relative] = (
                "file",
                hashlib.sha256(path.read_bytes()).hexdigest(),
                path.stat().st_mode & 0o777,
            )
    return tree


# ---------------------------------------------------------------- exec


def test_exec_tar_round_trip_is_byte_identical(kubesim, namespace, tmp_path):
    volume = {"volumeMounts": [{"name": "upload", "mountPath": "/tmp/upload"}]}
    _run_pod(
        kubesim,
        namespace,
        _pod("shell", ["sleep", "3600"], container=volume, volumes=[{"name": "upload", "emptyDir": {}}]),
    )
    source = tmp_path / "source"
    (source / "nested" / "deeper").mkdir(parents=True)
    (source / "big.bin").write_bytes(os.urandom(20 * MB))
    (source / "empty").write_bytes(b"")
    (source / "nested" / "small.txt").write_bytes(os.urandom(1000))
    (source / "nested" / "deeper" / "script.sh").write_text("#!/bin/sh\necho hi\n")
    (source / "nested" / "deeper" / "script.sh").chmod(0o755)
    (source / "link").symlink_to("nested/small.txt")
    archive = subprocess.run(
        ["tar", "cf", "-", "-C", str(source), "."], capture_output=True, check=True, timeout=60
    ).stdout

    kubesim.kubectl(
        "exec", "-i", "-n", namespace, "shell", "--", "tar", "xf", "-", "-C", "/tmp/upload", input=archive
    )
    copied_back = kubesim.kubectl(
        "exec", "-n", namespace, "shell", "--", "tar", "cf", "-", "-C", "/tmp/upload", ".", input=b""
    ).stdout

    restored = tmp_path / "restored"
    restored.mkdir()
    subprocess.run(["tar", "xf", "-", "-C", str(restored)], input=copied_back, check=True, timeout=60)
    assert _tree(restored) == _tree(source)


def test_exec_passes_the_exit_code_through_and_keeps_stderr_apart(kubesim, namespace):
    _run_pod(kubesim, namespace, _pod("shell", ["sleep", "3600"]))
    failed = kubesim.kubectl(
        "exec", "-n", namespace, "shell", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False
    )
    assert failed.returncode == 3
    assert failed.stdout == "out\n"
    assert failed.stderr.splitlines() == ["err", "command terminated with exit code 3"]

    piped = kubesim.kubectl(
        "exec", "-i", "-n", namespace, "shell", "--", "sh", "-c", "tr a-z A-Z; echo done >&2", input="hello\n"
    )
    assert (piped.stdout, piped.stderr) == ("HELLO\n", "done\n")


def test_exec_errors_read_like_a_real_cluster(kubesim, namespace):
    _run_pod(kubesim, namespace, _pod("shell", ["sleep", "3600"]))
    bad_container = kubesim.kubectl("exec", "-n", namespace, "shell", "-c", "nope", "--", "true", check=False)
    assert bad_container.returncode == 1
    assert "Error from server (BadRequest): container nope is not valid for pod shell" in bad_container.stderr
    missing = kubesim.kubectl("exec", "-n", namespace, "ghost", "--", "true", check=False)
    assert missing.returncode == 1
    assert 'pods "ghost" not found' in missing.stderr


# ---------------------------------------------------------------- port-forward


def test_port_forward_two_concurrent_connections_50mb_each_way(kubesim, namespace):
    _run_pod(kubesim, namespace, _echo_pod())
    with _port_forward(kubesim, namespace, "echo", ECHO_PORT) as (port, kubectl):
        results: list[tuple[str, str, int]] = []
        started = time.monotonic()
        workers = [
            threading.Thread(target=lambda: results.append(_echo_round_trip(port, 50 * MB))) for _ in range(2)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
        elapsed = time.monotonic() - started
        assert kubectl.proc.poll() is None, kubectl.wait_stderr()
    assert len(results) == 2
    for sent, received, count in results:
        assert count == 50 * MB
        assert received == sent
    print(f"\nport-forward: 2 connections x 50 MB each way in {elapsed:.1f}s = {200 / elapsed:.0f} MB/s")


def test_port_forward_cut_fault_drops_the_connection_and_the_forward_lives_on(kubesim, namespace):
    _run_pod(kubesim, namespace, _echo_pod())
    with _port_forward(kubesim, namespace, "echo", ECHO_PORT) as (port, kubectl):
        kubesim.cut_portforward_after(200_000)
        _, _, received = _echo_round_trip(port, 5 * MB, chunk=64 * 1024)
        assert received <= 200_000
        kubesim.clear_faults()
        sent, echoed, received = _echo_round_trip(port, 1 * MB)
        assert (received, echoed) == (1 * MB, sent)
        assert kubectl.proc.poll() is None


def test_a_shaped_link_still_carries_exec_and_forwarded_bytes_exactly(kubesim, namespace):
    _run_pod(kubesim, namespace, _echo_pod())
    _run_pod(kubesim, namespace, _pod("shell", ["sleep", "3600"]))
    payload = os.urandom(2 * MB)
    try:
        assert kubesim.shape_link(4 * MB)["linkBytesPerSecond"] == 4 * MB
        echoed = kubesim.kubectl("exec", "-i", "-n", namespace, "shell", "--", "cat", input=payload).stdout
        assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()
        with _port_forward(kubesim, namespace, "echo", ECHO_PORT) as (port, kubectl):
            sent, received, count = _echo_round_trip(port, 1 * MB, chunk=MB // 4)
            assert (count, received) == (1 * MB, sent)
            assert kubectl.proc.poll() is None
    finally:
        assert kubesim.shape_link(None)["linkBytesPerSecond"] is None


def test_port_forward_to_a_closed_port_reports_like_the_kubelet(kubesim, namespace):
    _run_pod(kubesim, namespace, _echo_pod())
    with _port_forward(kubesim, namespace, "echo", ECHO_PORT + 1) as (port, kubectl):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            assert conn.recv(10) == b""
        assert kubectl.proc.wait(timeout=30) == 1
        stderr = kubectl.wait_stderr()
    assert (
        f"an error occurred forwarding {port} -> {ECHO_PORT + 1}: error forwarding port {ECHO_PORT + 1} to pod "
        in stderr
    )
    assert f"IPv4: dial tcp4 127.0.0.1:{ECHO_PORT + 1}: connect: connection refused" in stderr
    assert "error: lost connection to pod" in stderr


# ---------------------------------------------------------------- logs


def test_logs_show_the_container_output_and_follow_it(kubesim, namespace):
    ticker = "echo started; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"
    _run_pod(kubesim, namespace, _pod("ticker", ["sh", "-c", ticker]))
    lines = _until(
        lambda: kubesim.kubectl("logs", "-n", namespace, "ticker").stdout.splitlines()[:2],
        lambda first: len(first) == 2,
    )
    assert lines == ["started", "tick 0"]
    last = kubesim.kubectl("logs", "-n", namespace, "ticker", "--tail=1").stdout.splitlines()
    assert len(last) == 1 and last[0].startswith("tick ")
    with _kubectl_running(kubesim, "logs", "-f", "-n", namespace, "ticker") as follow:
        follow.line_matching(r"^started$")
        newest = int(kubesim.kubectl("logs", "-n", namespace, "ticker", "--tail=1").stdout.split()[1])
        follow.line_matching(rf"^tick {newest + 10}$", timeout=30)  # written after the follow began


def test_logs_follow_ends_with_the_container(kubesim, namespace):
    kubesim.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(_pod("once", ["sh", "-c", "echo one; sleep 3; echo two"], restartPolicy="Never")),
    )
    kubesim.kubectl(
        "wait", "-n", namespace, "--for=jsonpath={.status.phase}=Running", "pod/once", "--timeout=30s"
    )
    follow = kubesim.kubectl("logs", "-f", "-n", namespace, "once", timeout=30)
    assert follow.stdout == "one\ntwo\n"
    wrong = kubesim.kubectl("logs", "-n", namespace, "once", "-c", "nope", check=False)
    assert "container nope is not valid for pod once" in wrong.stderr


def test_logs_previous_shows_the_instance_before_the_restart(kubesim, namespace):
    # each instance prints its own random id, then stays up until the kill fault restarts it
    _run_pod(
        kubesim,
        namespace,
        _pod("relog", ["sh", "-c", "echo instance $(cat /proc/sys/kernel/random/uuid); sleep 3600"]),
    )
    none = kubesim.kubectl("logs", "-n", namespace, "relog", "--previous", check=False)
    assert none.returncode == 1
    assert none.stderr.strip() == (
        'Error from server (BadRequest): previous terminated container "main" in pod "relog" not found'
    )
    first = _until(lambda: kubesim.kubectl("logs", "-n", namespace, "relog").stdout, lambda out: out)
    with _kubectl_running(kubesim, "logs", "-f", "-n", namespace, "relog") as follow:
        assert follow.line_matching(r"^instance \S+$").group(0) + "\n" == first
        kubesim.kill_container(namespace, "relog", "main")
        assert follow.proc.wait(timeout=10) == 0  # a follow ends with its container instance...
        assert follow.lines.get(timeout=5) is None  # ...and does not go on with the next one
    restarted = "jsonpath={.status.containerStatuses[0].restartCount},{.status.containerStatuses[0].ready}"
    _until(
        lambda: kubesim.kubectl("get", "pod", "relog", "-n", namespace, "-o", restarted).stdout,
        lambda out: out == "1,true",
    )
    second = kubesim.kubectl("logs", "-n", namespace, "relog").stdout
    assert second.startswith("instance ") and second != first
    assert kubesim.kubectl("logs", "-n", namespace, "relog", "--previous").stdout == first
    assert kubesim.kubectl("logs", "-n", namespace, "relog", "-p", "--tail=1").stdout == first


# ---------------------------------------------------------------- dockerd through port-forward

DOCKERD_POD = """
apiVersion: v1
kind: ConfigMap
metadata: {name: docker-config}
data:
  daemon.json: '{"tls": false}'
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: docker-data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: dind}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: docker
    image: docker:24.0.7-dind-alpine3.18
    command: [dockerd, --host=tcp://0.0.0.0:2375, --host=unix:///var/run/docker.sock]
    securityContext: {privileged: true}
    readinessProbe:
      httpGet: {path: /_ping, port: 2375}
      periodSeconds: 1
    volumeMounts:
    - {name: data, mountPath: /var/lib/docker, subPath: docker}
    - {name: config, mountPath: /etc/docker}
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: docker-data}
  - name: config
    configMap: {name: docker-config}
"""

COMPOSE_PROJECT = {
    "compose.yaml": "services:\n  web:\n    build: .\n    ports: ['8080:8080']\n",
    "Dockerfile": "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n"
    'CMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n',
}


def _compose_project(directory: pathlib.Path, page: str) -> None:
    for name, text in COMPOSE_PROJECT.items():
        (directory / name).write_text(text)
    shutil.copy2("/bin/busybox", directory / "busybox")
    (directory / "www").mkdir()
    (directory / "www" / "index.html").write_text(page)


def _http_get(url: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_docker_compose_through_port_forward_to_dockerd_in_a_pod(kubesim, namespace, tmp_path):
    require_tool("dockerd")
    docker = require_tool("docker")
    started = time.monotonic()
    kubesim.kubectl("apply", "-n", namespace, "-f", "-", input=DOCKERD_POD)
    kubesim.kubectl(
        "wait", "-n", namespace, "--for=condition=Ready", "pod/dind", "--timeout=90s", timeout=100
    )
    print(f"\ndockerd pod: apply to Ready in {time.monotonic() - started:.1f}s")

    page = f"<h1>served from a pod {uuid.uuid4()}</h1>\n"
    _compose_project(tmp_path, page)
    try:
        with _port_forward(kubesim, namespace, "dind", 2375) as (docker_port, _):
            env = {
                **os.environ,
                "DOCKER_HOST": f"tcp://127.0.0.1:{docker_port}",
                "COMPOSE_PROJECT_NAME": "streams",
            }
            up = subprocess.run(
                [docker, "compose", "up", "-d", "--build"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert up.returncode == 0, up.stdout + up.stderr
            with _port_forward(kubesim, namespace, "dind", 8080) as (web_port, _):
                assert _http_get(f"http://127.0.0.1:{web_port}/index.html") == page
            down = subprocess.run(
                [docker, "compose", "down", "--timeout", "1"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert down.returncode == 0, down.stdout + down.stderr
    finally:
        kubesim.kubectl(
            "delete", "-n", namespace, "pod/dind", "--wait=true", "--timeout=60s", check=False, timeout=70
        )
