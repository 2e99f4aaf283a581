"""End-to-end helpers: the real `./kubectl-preevy`, real kubectl, docker compose and dockerd, against kubesim.

Nothing here is mocked. Every process a test starts is stopped by its pid in a `finally`.
"""

import contextlib
import dataclasses
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable

from tests.prerequisites import require_tool

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
PREEVY = REPO_ROOT / "kubectl-preevy"
EXAMPLE = REPO_ROOT / "examples" / "hello"
UP_TIMEOUT = 180
COMMAND_TIMEOUT = 90


def user_env(kubesim, config_dir: pathlib.Path) -> dict[str, str]:
    """The environment of a user of the emulator: its kubeconfig, and a profile store of its own."""
    require_tool("docker")
    environ = dict(kubesim.env)
    environ["XDG_CONFIG_HOME"] = str(config_dir)
    environ["XDG_STATE_HOME"] = str(config_dir.with_name(config_dir.name + "-state"))  # log files
    environ["XDG_CACHE_HOME"] = str(
        config_dir.with_name(config_dir.name + "-cache")
    )  # e.g. the copy's records
    ci_prefixes = ("GITHUB_", "GITLAB_", "CI_")  # a CI running these tests is not the user's CI
    for name in [k for k in environ if k.startswith(("DOCKER_", "COMPOSE_", "PREEVY_", *ci_prefixes))]:
        del environ[name]
    return environ


def hello_project(directory: pathlib.Path) -> pathlib.Path:
    """A copy of examples/hello with the static busybox its Dockerfile copies."""
    shutil.copytree(EXAMPLE, directory, ignore=shutil.ignore_patterns("busybox"))
    shutil.copy("/bin/busybox", directory / "busybox")
    return directory


def preevy(
    *args: str, cwd: pathlib.Path, env: dict[str, str], timeout: float = COMMAND_TIMEOUT, check: bool = False
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(PREEVY), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"kubectl-preevy {' '.join(args)} exited {result.returncode}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr[-3000:]}"
        )
    return result


def up_json(*args: str, cwd: pathlib.Path, env: dict[str, str]) -> dict:
    result = preevy(
        "up", "-o", "json", "--timeout", "60s", *args, cwd=cwd, env=env, timeout=UP_TIMEOUT, check=True
    )
    return json.loads(result.stdout)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def start(args: list[str], cwd: pathlib.Path, env: dict[str, str]) -> subprocess.Popen:
    """kubectl-preevy in the background, with SIGINT handled as at a terminal (even if ours is ignored)."""
    return subprocess.Popen(
        [str(PREEVY), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
    """Signal our process by pid and wait for it; kill it if it does not go."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


@dataclasses.dataclass
class Connection:
    """A running `kubectl preevy connect` and what it printed: the URLs (service -> url), the document (-o json)."""

    proc: subprocess.Popen
    urls: dict[str, str]
    document: dict | None
    stderr: list[str]


def connect(
    args: list[str], cwd: pathlib.Path, env: dict[str, str], services: int, timeout: float = 60
) -> Connection:
    """Start `connect` and read its URL table (one row per service), or its JSON document with `-o json`."""
    proc = start(["connect", *args], cwd, env)
    stderr: list[str] = []
    threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True).start()
    deadline = time.monotonic() + timeout
    reader = _LineReader(proc.stdout)
    as_json = "json" in args
    urls: dict[str, str] = {}
    text = ""
    try:
        while len(urls) < services:
            line = reader.readline(deadline - time.monotonic())
            if line is None:
                raise AssertionError(f"connect printed no URLs (exit {proc.poll()}):\n{''.join(stderr)}")
            text += line
            if as_json and line.startswith("}"):
                document = json.loads(text)
                return Connection(
                    proc, {s["service"]: s["url"] for s in document["services"]}, document, stderr
                )
            match = re.match(r"(\S+)\s+(\d+)\s+(http://\S+)", line)
            if match and not as_json:
                urls[match.group(1)] = match.group(3)
    except BaseException:
        stop(proc)
        raise
    return Connection(proc, urls, None, stderr)


class _LineReader:
    """readline with a timeout, from a pipe read by a thread."""

    def __init__(self, pipe):
        self.lines: list[str] = []
        self.done = False
        self.cond = threading.Condition()
        threading.Thread(target=self._read, args=(pipe,), daemon=True).start()

    def _read(self, pipe):
        for line in pipe:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.done = True
            self.cond.notify_all()

    def readline(self, timeout: float) -> str | None:
        with self.cond:
            self.cond.wait_for(lambda: self.lines or self.done, timeout=max(timeout, 0))
            return self.lines.pop(0) if self.lines else None


def http_get(url: str, timeout: float = 20) -> bytes:
    """GET url, retrying briefly while the service or the forward comes up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def port_forward_pids(pod: str) -> list[int]:
    """pids of `kubectl port-forward` processes for the pod (read from /proc, to assert none is left)."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"port-forward" in argv and any(pod.encode() in arg for arg in argv):
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return pathlib.Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def environment_objects(kubesim, namespace: str, selector: str) -> list[str]:
    """Objects of every type the cluster lists in a namespace (PVCs, ConfigMaps, Roles...) that match selector."""
    types = kubesim.kubectl("api-resources", "--namespaced", "--verbs=list", "-o", "name").stdout.split()
    result = kubesim.kubectl("get", ",".join(types), "-n", namespace, "-l", selector, "-o", "name")
    return result.stdout.split()


def remote(
    kubesim, namespace: str, pod: str, *command: str, check: bool = True
) -> subprocess.CompletedProcess:
    """A command in the pod's first container, through kubectl exec."""
    return kubesim.kubectl("exec", "-n", namespace, pod, "--", *command, check=check)


def run_until(
    args: list[str],
    step: str,
    cwd: pathlib.Path,
    env: dict[str, str],
    action: Callable[[subprocess.Popen[str]], None],
    timeout: float = UP_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """kubectl-preevy in a process group of its own; when a stderr line starts with step, action(proc)
    (a fault, a signal to the group), then it runs to its end. stderr is read by one thread only."""
    proc = subprocess.Popen(
        [str(PREEVY), *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if line.startswith(step):
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert seen.wait(timeout), f"never reached {step!r}:\n{''.join(lines)}"
        action(proc)
        assert proc.stdout is not None
        stdout = proc.stdout.read()
        proc.wait(timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    reader.join(10)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, "".join(lines))


@contextlib.contextmanager
def hello_environment(kubesim, base: pathlib.Path, env_id: str):
    """examples/hello up as env_id in a fresh namespace, for a module's tests: (namespace, project dir,
    environ, pod); then `down` and the namespace deleted."""
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    kubesim.kubectl("create", "namespace", namespace)
    environ = user_env(kubesim, base / "config")
    project = hello_project(base / "hello")
    try:
        up = up_json("-n", namespace, "--id", env_id, cwd=project, env=environ)
        yield namespace, project, environ, f"{up['statefulSet']}-0"
    finally:
        preevy("down", "-n", namespace, "--id", env_id, "--force", cwd=project, env=environ)
        kubesim.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def serves_then_down(project: pathlib.Path, flags: list[str], env: dict[str, str], page: bytes) -> None:
    """The environment's web service serves that page through `connect`; then `down` removes it."""
    served = connect(flags, project, env, services=2)
    try:
        assert http_get(served.urls["web"]) == page
    finally:
        stop(served.proc)
    preevy("down", *flags, cwd=project, env=env, check=True)


def sleeping_docker_pod(kubesim, namespace: str, name: str, state_volume: bool = False) -> str:
    """A Ready pod of the docker image (docker:dind's BusyBox userland) whose container `docker` only sleeps:
    nothing listens on dockerd's port. state_volume: its /var/lib/preevy a volume (where the copy writes)."""
    container: dict[str, object] = {"name": "docker", "image": "docker:27-dind", "command": ["sleep", "3600"]}
    spec: dict[str, object] = {"terminationGracePeriodSeconds": 1, "containers": [container]}
    if state_volume:
        container["volumeMounts"] = [{"name": "state", "mountPath": "/var/lib/preevy"}]
        spec["volumes"] = [{"name": "state", "emptyDir": {}}]
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
    kubesim.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    kubesim.kubectl(
        "wait", "-n", namespace, "--for=condition=Ready", f"pod/{name}", "--timeout=60s", timeout=70
    )
    return name
