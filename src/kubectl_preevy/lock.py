"""One `up` or `down` of an environment at a time: a lock ConfigMap in the environment's namespace.

Preevy has no lock: two concurrent ups create the environment twice and the newest wins (#456).
`kubectl create` of the lock is atomic (AlreadyExists while another run holds it). The holder
renews the lock's expiry while it runs; a lock whose expiry has passed was left by a run that
died without releasing it, and is taken over by a replace at its resourceVersion, so that of two
waiters only one gets it. Expiries are compared with this machine's clock: the lease is long
enough for ordinary clock skew. A lock whose holder ran on this machine (same host and pid namespace)
and no longer runs (kill -9) is taken over at once.
"""

import contextlib
import datetime
import json
import os
import pathlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from kubectl_preevy import console, messages, naming, retry
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.kubectl import Kubectl

NAME_PREFIX = "preevy-lock-"
MAX_NAME_LENGTH = naming.MAX_NAME_LENGTH
ANNOTATION_HOLDER = "preevy.dev/lock-holder"
ANNOTATION_EXPIRES_AT = "preevy.dev/lock-expires-at"
# Where the holder runs: a lock whose holder ran here and is gone (SIGKILL) is taken over at once.
ANNOTATION_MACHINE = "preevy.dev/lock-machine"
ANNOTATION_PID = "preevy.dev/lock-pid"
LEASE_SECONDS = 60
RENEW_SECONDS = 20
POLL_SECONDS = 1.0


def lock_name(profile_id: str, env_id: str) -> str:
    """`preevy-lock-<profile id>-<env id>`, as a valid object name."""
    return (
        NAME_PREFIX
        + naming.truncate_with_hash(
            naming.sanitize_name(f"{profile_id}-{env_id}"), MAX_NAME_LENGTH - len(NAME_PREFIX)
        ).lower()
    )


def _hostname() -> str:
    return os.uname().nodename  # what socket.gethostname() reads, without importing socket (~3 ms)


def holder_description(command: str) -> str:
    return f"`kubectl preevy {command}` on {_hostname()} (pid {os.getpid()})"


def machine_id() -> str:
    """This host and pid namespace: a pid means the same process only where both are the same."""
    try:
        pid_namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        pid_namespace = "?"
    return f"{_hostname()}/{pid_namespace}"


def holder_gone(annotations: dict[str, str]) -> bool:
    """Whether the lock's holder ran on this machine and its process is no longer a kubectl-preevy."""
    if annotations.get(ANNOTATION_MACHINE) != machine_id():
        return False
    try:
        pid = int(annotations.get(ANNOTATION_PID, ""))
        cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
    except (ValueError, OSError):
        return True
    return pid != os.getpid() and b"preevy" not in cmdline


def expiry_text(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def has_expired(expires_at: str | None, now: datetime.datetime) -> bool:
    """Whether a lock with this expiry annotation may be broken (a missing or garbled one: yes)."""
    try:
        moment = datetime.datetime.strptime(expires_at or "", "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return True
    return moment.replace(tzinfo=datetime.timezone.utc) <= now


@contextlib.contextmanager
def held(
    kubectl: Kubectl, profile_id: str, env_id: str, command: str, timeout_seconds: float
) -> Iterator["EnvironmentLock"]:
    """Hold the environment's lock for the block: wait for another holder up to the timeout, release
    it however the block ends (Ctrl-C included)."""
    lock = EnvironmentLock(kubectl, profile_id, env_id, holder_description(command))
    lock.acquire(timeout_seconds)
    try:
        yield lock
    finally:
        lock.release()


class TransientLockError(PreevyError):
    """Writing the lock failed in a way worth trying again (retry.is_transient)."""


class EnvironmentLock:
    def __init__(self, kubectl: Kubectl, profile_id: str, env_id: str, holder: str):
        self.kubectl = kubectl
        self.env_id = env_id
        self.holder = holder
        self.name = lock_name(profile_id, env_id)
        self.labels = naming.sanitize_labels(
            {
                naming.LABEL_PROFILE_ID: profile_id,
                naming.LABEL_ENV_ID: env_id,
                naming.LABEL_MANAGED_BY: naming.MANAGED_BY,
            }
        )
        self._resource_version: str | None = None
        self.contended = False  # the first create did not get it: another run held it, or it failed
        self._released = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self, timeout_seconds: float) -> None:
        deadline = time.monotonic() + timeout_seconds
        announced = None
        while True:
            try:
                self._resource_version = self._write(None)
            except TransientLockError:
                self._resource_version = None  # tried again below, within the deadline
            if self._resource_version is not None:
                break
            self.contended = True
            current = self._current()
            if current is not None:
                holder, expires_at = self._holder_and_expiry(current)
                annotations = current["metadata"].get("annotations") or {}
                if holder == self.holder:  # our own create answered with an error, yet went through
                    self._resource_version = current["metadata"]["resourceVersion"]
                    break
                gone = holder_gone(annotations)
                if gone or has_expired(expires_at, _now()):
                    self._resource_version = self._take_over(current, holder, expires_at, gone)
                    if self._resource_version is not None:
                        break
                elif holder != announced:
                    console.step(messages.LOCK_WAITING.format(holder=holder, env_id=self.env_id))
                    announced = holder
            if time.monotonic() > deadline:
                raise PreevyError(
                    messages.LOCK_TIMEOUT.format(
                        env_id=self.env_id,
                        holder=holder if current is not None else "another run",
                        timeout=f"{timeout_seconds:g}s",
                        expires_at=expires_at if current is not None else "a minute",
                    ),
                    ExitCode.TIMEOUT,
                )
            # every turn waits, and the deadline bounds them all (a lock that comes and goes included)
            time.sleep(POLL_SECONDS if current is not None else POLL_SECONDS / 4)
        self._renewer = threading.Thread(target=self._renew_until_released, daemon=True)
        self._renewer.start()

    def release(self) -> None:
        """Stop renewing, and delete the lock if it is still ours (once: releasing again does nothing). A cluster that does not answer now does
        not hide the error the run may be ending with: the lock then expires on its own."""
        self._released.set()
        if self._renewer is not None:
            self._renewer.join()
        try:
            self._delete_if_ours()
        except PreevyError as err:
            console.warn(
                messages.LOCK_NOT_RELEASED.format(
                    env_id=self.env_id, error=err.message, seconds=LEASE_SECONDS
                )
            )

    def _delete_if_ours(self) -> None:
        """One call: the delete carries our resourceVersion as a precondition, so a lock another run took
        over (a new version) answers Conflict and stays; one already gone answers NotFound."""
        if self._resource_version is None:
            return
        options = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "preconditions": {"resourceVersion": self._resource_version},
        }
        path = f"/api/v1/namespaces/{self.kubectl.namespace}/configmaps/{self.name}"
        result = self.kubectl.run("delete", "--raw", path, "-f", "-", stdin=json.dumps(options))
        if not result.ok and not any(r in result.stderr for r in ("(Conflict)", "(NotFound)")):
            raise self.kubectl.error(result)
        self._resource_version = None  # released: a second release asks nothing

    def _take_over(
        self, current: dict[str, Any], holder: str, expires_at: str | None, gone: bool
    ) -> str | None:
        try:
            resource_version = self._write(current["metadata"]["resourceVersion"])
        except TransientLockError:
            return None
        if resource_version is not None:
            message = messages.LOCK_HOLDER_GONE if gone else messages.LOCK_BROKEN
            console.warn(message.format(env_id=self.env_id, holder=holder, expires_at=expires_at))
        return resource_version

    def _renew_until_released(self) -> None:
        while not self._released.wait(RENEW_SECONDS):
            try:
                resource_version = self._write(self._resource_version)
            except PreevyError:
                continue  # the cluster did not answer this time: the lease still runs
            if resource_version is None:
                if not self._released.is_set():
                    console.warn(messages.LOCK_LOST.format(env_id=self.env_id))
                return
            self._resource_version = resource_version

    def _write(self, resource_version: str | None) -> str | None:
        """Create the lock (resource_version None) or replace it at that version, with us as holder and a
        fresh expiry: its new resourceVersion, or None when another run holds or changed it."""
        metadata = {
            "name": self.name,
            "namespace": self.kubectl.namespace,
            "labels": self.labels,
            "annotations": {
                ANNOTATION_HOLDER: self.holder,
                ANNOTATION_EXPIRES_AT: expiry_text(_now() + datetime.timedelta(seconds=LEASE_SECONDS)),
                ANNOTATION_MACHINE: machine_id(),
                ANNOTATION_PID: str(os.getpid()),
            },
        }
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version
        # --raw: a POST (PUT) of the object as it is, without kubectl's discovery (a few ms of every command)
        verb = "create" if resource_version is None else "replace"
        collection = f"/api/v1/namespaces/{self.kubectl.namespace}/configmaps"
        path = collection if verb == "create" else f"{collection}/{self.name}"
        result = self.kubectl.run(
            verb,
            "--raw",
            path,
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}),
        )
        if result.ok:
            return str(json.loads(result.stdout)["metadata"]["resourceVersion"])
        if verb == "create" and "(NotFound)" in result.stderr:
            raise self.kubectl.error(result)  # only the namespace can be missing: said as such (exit 4)
        if any(reason in result.stderr for reason in ("(AlreadyExists)", "(Conflict)", "(NotFound)")):
            return None
        error = self.kubectl.error(result)
        if retry.is_transient(result.stderr):
            raise TransientLockError(error.message, error.exit_code)
        raise error

    def _current(self) -> dict[str, Any] | None:
        result = self.kubectl.check("get", "configmap", self.name, "--ignore-not-found", "-o", "json")
        return json.loads(result.stdout) if result.stdout.strip() else None

    @staticmethod
    def _holder_and_expiry(configmap: dict[str, Any]) -> tuple[str, str | None]:
        annotations = configmap["metadata"].get("annotations") or {}
        return annotations.get(ANNOTATION_HOLDER, "an unknown run"), annotations.get(ANNOTATION_EXPIRES_AT)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
