"""One `up` or `down` of an environment at a time: a lock ConfigMap in the environment's namespace.

Preevy has no lock: two concurrent ups create the environment twice and the newest wins (#456).
`kubectl create` of the lock is atomic (AlreadyExists while another run holds it). The holder
renews the lock's expiry while it runs; a lock whose expiry has passed was left by a run that
died without releasing it, and is taken over by a replace at its resourceVersion, so that of two
waiters only one gets it. Expiries are compared with this machine's clock: the lease is long
enough for ordinary clock skew.
"""

import contextlib
import datetime
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from kubectl_preevy import console, messages, naming
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.kubectl import Kubectl

NAME_PREFIX = "preevy-lock-"
MAX_NAME_LENGTH = naming.MAX_NAME_LENGTH
ANNOTATION_HOLDER = "preevy.dev/lock-holder"
ANNOTATION_EXPIRES_AT = "preevy.dev/lock-expires-at"
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


def holder_description(command: str) -> str:
    return f"`kubectl preevy {command}` on {socket.gethostname()} (pid {os.getpid()})"


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
        self._released = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self, timeout_seconds: float) -> None:
        deadline = time.monotonic() + timeout_seconds
        announced = None
        while True:
            self._resource_version = self._write(None)
            if self._resource_version is not None:
                break
            current = self._current()
            if current is None:
                continue  # released meanwhile: create it again at once
            holder, expires_at = self._holder_and_expiry(current)
            if has_expired(expires_at, _now()):
                self._resource_version = self._take_over(current, holder, expires_at)
                if self._resource_version is not None:
                    break
            elif time.monotonic() > deadline:
                raise PreevyError(
                    messages.LOCK_TIMEOUT.format(
                        env_id=self.env_id,
                        holder=holder,
                        timeout=f"{timeout_seconds:g}s",
                        expires_at=expires_at,
                    ),
                    ExitCode.TIMEOUT,
                )
            elif holder != announced:
                console.step(messages.LOCK_WAITING.format(holder=holder, env_id=self.env_id))
                announced = holder
            time.sleep(POLL_SECONDS)
        self._renewer = threading.Thread(target=self._renew_until_released, daemon=True)
        self._renewer.start()

    def release(self) -> None:
        """Stop renewing, and delete the lock if it is still ours. A cluster that does not answer now does
        not hide the error the run may be ending with: the lock then expires on its own."""
        self._released.set()
        if self._renewer is not None:
            self._renewer.join()
        try:
            current = self._current()
            if current is not None and self._holder_and_expiry(current)[0] == self.holder:
                self.kubectl.run("delete", "configmap", self.name, "--ignore-not-found")
        except PreevyError as err:
            console.warn(
                messages.LOCK_NOT_RELEASED.format(
                    env_id=self.env_id, error=err.message, seconds=LEASE_SECONDS
                )
            )

    def _take_over(self, current: dict[str, Any], holder: str, expires_at: str | None) -> str | None:
        resource_version = self._write(current["metadata"]["resourceVersion"])
        if resource_version is not None:
            console.warn(
                messages.LOCK_BROKEN.format(env_id=self.env_id, holder=holder, expires_at=expires_at)
            )
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
            },
        }
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version
        verb = "create" if resource_version is None else "replace"
        result = self.kubectl.run(
            verb,
            "-f",
            "-",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
            stdin=json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}),
        )
        if result.ok:
            return result.stdout.strip()
        if any(reason in result.stderr for reason in ("(AlreadyExists)", "(Conflict)", "(NotFound)")):
            return None
        raise self.kubectl.error(result)

    def _current(self) -> dict[str, Any] | None:
        result = self.kubectl.check("get", "configmap", self.name, "--ignore-not-found", "-o", "json")
        return json.loads(result.stdout) if result.stdout.strip() else None

    @staticmethod
    def _holder_and_expiry(configmap: dict[str, Any]) -> tuple[str, str | None]:
        annotations = configmap["metadata"].get("annotations") or {}
        return annotations.get(ANNOTATION_HOLDER, "an unknown run"), annotations.get(ANNOTATION_EXPIRES_AT)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
