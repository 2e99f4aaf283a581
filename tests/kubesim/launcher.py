"""Start and stop the emulator (`python -m tests.kubesim`) as a subprocess, and drive it.

Used by the pytest fixtures, the benchmarks and the README demo.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import typing
import urllib.error
import urllib.request

import yaml

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 60.0


def stop_process(proc: subprocess.Popen, timeout: float = STOP_TIMEOUT) -> int:
    """SIGTERM by pid, wait, SIGKILL by pid if needed. Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


class KubesimError(RuntimeError):
    pass


class Kubesim:
    """A running emulator: kubeconfig, url, state dir, env for kubectl, and the fault-injection controls."""

    def __init__(self, base: pathlib.Path, extra_args: tuple[str, ...] = ()):
        self.base = base
        self.extra_args = tuple(extra_args)
        self.kubeconfig = base / "kubeconfig"
        self.state_dir = base / "state"
        self.log_path = base / "kubesim.log"
        self.cache_dir = base / "kubecache"
        self.url = ""
        self.proc: subprocess.Popen | None = None
        self.env: dict[str, str] = {}
        self._log: typing.BinaryIO | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> Kubesim:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.kubesim",
                "--kubeconfig",
                str(self.kubeconfig),
                "--state-dir",
                str(self.state_dir),
                "--port",
                "0",
                *self.extra_args,
            ],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not self.kubeconfig.exists():
            if self.proc.poll() is not None:
                raise KubesimError(
                    f"kubesim exited with {self.proc.returncode} before serving:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise KubesimError(
                    f"kubesim did not write its kubeconfig within {START_TIMEOUT}s:\n{self.log()}"
                )
            time.sleep(0.05)
        cfg = yaml.safe_load(self.kubeconfig.read_text())
        self.url = cfg["clusters"][0]["cluster"]["server"]
        env = dict(os.environ)
        for k in ("KUBE_CONTEXT", "KUBECTL_CONTEXT", "KUBE_NAMESPACE"):
            env.pop(k, None)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["KUBECACHEDIR"] = str(self.cache_dir)
        self.env = env
        return self

    def stop(self) -> int | None:
        """SIGTERM by pid, wait, SIGKILL by pid if needed. Returns the exit code."""
        if self.proc is None:
            return None
        stop_process(self.proc)
        if self._log:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # ------------------------------------------------------------ kubectl
    def kubectl(self, *args, input: str | bytes | None = None, check: bool = True, timeout: float = 60):
        binary = isinstance(input, (bytes, bytearray))
        res = subprocess.run(
            ["kubectl", *map(str, args)],
            input=input,
            capture_output=True,
            text=not binary,
            env=self.env,
            timeout=timeout,
        )
        if check and res.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(map(str, args))} exited {res.returncode}\n"
                f"stdout: {res.stdout}\nstderr: {res.stderr}"
            )
        return res

    # ------------------------------------------------------------ control endpoint
    def _control(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read().decode() or "{}")
        except urllib.error.HTTPError as e:
            raise KubesimError(f"{method} {path}: {e.code} {e.read().decode(errors='replace')}") from None

    def fault_requests(self, verb: str, resource: str, code: int, count: int = 1) -> dict:
        return self._control(
            "POST",
            "/kubesim/v1/faults/requests",
            {"verb": verb, "resource": resource, "code": code, "count": count},
        )

    def cut_portforward_after(self, nbytes: int | None) -> dict:
        return self._control("POST", "/kubesim/v1/faults/portforward", {"cutAfterBytes": nbytes})

    def hold_unready(self, namespace: str, pod: str, hold: bool = True) -> dict:
        return self._control(
            "POST", "/kubesim/v1/faults/unready", {"namespace": namespace, "pod": pod, "hold": hold}
        )

    def kill_container(self, namespace: str, pod: str, container: str) -> dict:
        return self._control(
            "POST", "/kubesim/v1/faults/kill", {"namespace": namespace, "pod": pod, "container": container}
        )

    def clear_faults(self) -> dict:
        return self._control("DELETE", "/kubesim/v1/faults")

    def pod_pids(self, namespace: str, pod: str) -> list[int]:
        return self._control("GET", f"/kubesim/v1/pods/{namespace}/{pod}/pids")["pids"]
