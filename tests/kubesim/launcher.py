"""Start and stop the emulator (`python -m tests.kubesim`) as a subprocess, and drive it.

Used by the pytest fixtures, the benchmarks and the README demo.
"""

from __future__ import annotations

import base64
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
import uuid

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
        self.server = ""
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
        servers = {c["name"]: c["cluster"]["server"] for c in cfg["clusters"]}
        self.server = servers["kubesim"]  # https: what kubectl talks to, credentials checked
        self.url = servers["kubesim-http"]  # plain http: raw API as the admin, and the control endpoint
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

    def fault_requests(
        self,
        verb: str,
        resource: str,
        code: int,
        count: int = 1,
        message: str | None = None,
        dry_run: bool | None = None,
    ) -> dict:
        body: dict = {"verb": verb, "resource": resource, "code": code, "count": count}
        if message is not None:
            body["message"] = message
        if dry_run is not None:
            body["dryRun"] = dry_run
        return self._control("POST", "/kubesim/v1/faults/requests", body)

    def add_image(self, image: str, path: list[str]) -> dict:
        """Containers of `image` find the programs of these host directories first (POST /kubesim/v1/images)."""
        return self._control("POST", "/kubesim/v1/images", {"image": image, "path": path})

    def cut_portforward_after(self, nbytes: int | None) -> dict:
        return self._control("POST", "/kubesim/v1/faults/portforward", {"cutAfterBytes": nbytes})

    def shape_link(self, bytes_per_second: int | None) -> dict:
        """Pace every exec and port-forward stream (each direction) at this rate; None: full speed."""
        return self._control("POST", "/kubesim/v1/faults/link", {"bytesPerSecond": bytes_per_second})

    def hold_unready(self, namespace: str, pod: str, hold: bool = True) -> dict:
        return self._control(
            "POST", "/kubesim/v1/faults/unready", {"namespace": namespace, "pod": pod, "hold": hold}
        )

    def kill_container(self, namespace: str, pod: str, container: str, reason: str | None = None) -> dict:
        """SIGKILL a container's process; reason="OOMKilled" makes it look like the OOM killer's work."""
        body = {"namespace": namespace, "pod": pod, "container": container}
        if reason:
            body["reason"] = reason
        return self._control("POST", "/kubesim/v1/faults/kill", body)

    def set_cron_clock(self, at: str | None) -> dict:
        """Stop the CronJob controller's clock at `at` ("YYYY-MM-DDTHH:MM:SSZ"); None: the wall clock."""
        return self._control("POST", "/kubesim/v1/faults/clock", {"cronNow": at})

    def clear_faults(self) -> dict:
        return self._control("DELETE", "/kubesim/v1/faults")

    def mark_image(self, image: str, exists: bool) -> dict:
        """Make pulls of `image` fail (exists=False: ErrImagePull) or succeed."""
        return self._control("POST", "/kubesim/v1/images", {"image": image, "exists": exists})

    def pod_pids(self, namespace: str, pod: str) -> list[int]:
        return self._control("GET", f"/kubesim/v1/pods/{namespace}/{pod}/pids")["pids"]

    def dataplane(self) -> dict:
        """{"ingress": {"http": PORT, "https": PORT}, "gateways": {"NS/NAME": {"LISTENER_PORT": LOCAL_PORT}}}"""
        return self._control("GET", "/kubesim/v1/dataplane")

    # ------------------------------------------------------------ restricted identities (https port)
    def _identity_kubeconfig(
        self, label: str, user: dict, namespace: str, path: pathlib.Path | None
    ) -> pathlib.Path:
        tls = self._control("GET", "/kubesim/v1/tls")
        ca = base64.b64encode(tls["certificateAuthority"].encode()).decode()
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "kubesim-tls",
                    "cluster": {"server": tls["server"], "certificate-authority-data": ca},
                }
            ],
            "users": [{"name": label, "user": user}],
            "contexts": [
                {"name": label, "context": {"cluster": "kubesim-tls", "user": label, "namespace": namespace}}
            ],
            "current-context": label,
            "preferences": {},
        }
        if path is None:
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
            path = self.base / "identities" / f"{safe}-{uuid.uuid4().hex[:6]}.kubeconfig"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(cfg))
        path.chmod(0o600)
        return path

    def service_account_token(self, namespace: str, name: str, seconds: int = 3600) -> str:
        """A token of ServiceAccount NAMESPACE/NAME (which must exist) valid for `seconds`."""
        body = {"namespace": namespace, "name": name, "expirationSeconds": seconds}
        return self._control("POST", "/kubesim/v1/tokens", body)["token"]

    def kubeconfig_for_service_account(
        self, namespace: str, name: str, seconds: int = 3600, path: pathlib.Path | None = None
    ) -> pathlib.Path:
        """A kubeconfig (https, CA-verified) authenticating as system:serviceaccount:NAMESPACE:NAME
        with a bearer token; its context's namespace is NAMESPACE."""
        token = self.service_account_token(namespace, name, seconds)
        return self.kubeconfig_for_token(token, namespace, f"{namespace}-{name}", path)

    def kubeconfig_for_token(
        self, token: str, namespace: str = "default", label: str = "token", path: pathlib.Path | None = None
    ) -> pathlib.Path:
        """A kubeconfig (https) sending `token` as its bearer token."""
        return self._identity_kubeconfig(label, {"token": token}, namespace, path)

    def kubeconfig_for_user(
        self,
        user: str,
        groups: tuple[str, ...] | list[str] = (),
        namespace: str = "default",
        path: pathlib.Path | None = None,
    ) -> pathlib.Path:
        """A kubeconfig (https) with a client certificate for USER in GROUPS (CN/O, as kubeadm issues them)."""
        pem = self._control("POST", "/kubesim/v1/certificates", {"user": user, "groups": list(groups)})
        cred = {
            "client-certificate-data": base64.b64encode(pem["certificate"].encode()).decode(),
            "client-key-data": base64.b64encode(pem["key"].encode()).decode(),
        }
        return self._identity_kubeconfig(user, cred, namespace, path)

    def env_for(self, kubeconfig: pathlib.Path) -> dict[str, str]:
        """The environment for running kubectl (or the plugin) with another kubeconfig."""
        return {**self.env, "KUBECONFIG": str(kubeconfig)}

    def kubectl_as(
        self, kubeconfig: pathlib.Path, *args, input=None, check: bool = True, timeout: float = 60
    ):
        """kubectl with another kubeconfig (e.g. one from kubeconfig_for_service_account)."""
        res = subprocess.run(
            ["kubectl", *map(str, args)],
            input=input,
            capture_output=True,
            text=not isinstance(input, (bytes, bytearray)),
            env=self.env_for(kubeconfig),
            timeout=timeout,
        )
        if check and res.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(map(str, args))} (as {kubeconfig.name}) exited {res.returncode}\n"
                f"stdout: {res.stdout}\nstderr: {res.stderr}"
            )
        return res
