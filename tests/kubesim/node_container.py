"""One container of a pod on the kubesim node: its instances, restarts, probes, state and events.

A `Container` starts an instance in the pod's sandbox (node_sandbox.Holder), waits for it to
exit, records the exit (state terminated), and restarts it per restartPolicy: at once after its first exit (as the
kubelet does), then after a back-off (1 s, 2 s, 4 s ... capped at 30 s, reset after 60 s of
running; the kubelet's starts at 10 s), shown as waiting CrashLoopBackOff with the exit moved to
lastState. While an instance of a regular container
runs, its startup, readiness and liveness probes run (node_probes.py); a failed liveness or
startup probe kills the instance (SIGTERM, SIGKILL after the grace period). Every state change
calls `pod.changed()` (the pod then rewrites its status, node_status.py). The events a real
kubelet records about a container are recorded here (see kubelet.py's docstring).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import pathlib
import signal
import time

from . import node_probes, node_volumes
from .node_sandbox import Holder, Instance, SandboxGone
from .store import now

log = logging.getLogger("kubesim.kubelet")

GRACE_CAP = 5.0  # seconds: longest graceful termination
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 30.0
BACKOFF_RESET_AFTER = 60.0  # a container that ran this long restarts without back-off
NORMAL, WARNING = "Normal", "Warning"
PULL_ERROR_SHOWN = 1.0  # seconds an image pull error shows as ErrImagePull before ImagePullBackOff


class Container:
    def __init__(self, pod, spec: dict, init: bool) -> None:
        self.pod = pod
        self.spec = spec
        self.name = spec.get("name", "")
        self.init = init
        self.restart_count = 0
        self.state: dict = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state: dict = {}
        self.ready = False
        self.started = False
        self.done = False  # will not run again
        self.exit_code: int | None = None
        self.container_id: str | None = None
        self.instance: Instance | None = None
        self.env: dict[str, str] | None = None
        self.mounts: list[tuple[str, str, bool]] = []
        self.task: asyncio.Task | None = None
        self.log_files: dict[str, pathlib.Path] = {}  # by containerID: each instance's output
        self._backoff = 0.0
        self.kill_reason: str | None = None  # why the next exit happens, when the node caused it (OOMKilled)

    def update(self, **fields) -> None:
        """Set state fields; the pod's status follows."""
        for key, value in fields.items():
            setattr(self, key, value)
        self.pod.changed()

    def wait(self, reason: str, message: str | None = None) -> None:
        """State waiting with that reason (and message)."""
        self.update(
            state={"waiting": {"reason": reason, "message": message} if message else {"reason": reason}}
        )

    def event(self, reason: str, message: str, type_: str = NORMAL) -> None:
        """An Event about this container (involvedObject.fieldPath spec.containers{name})."""
        field = "initContainers" if self.init else "containers"
        self.pod.event(reason, message, type_, field_path=f"spec.{field}{{{self.name}}}")

    def log_file(self, previous: bool = False) -> pathlib.Path:
        """The output file of the instance `kubectl logs [--previous]` reads (see podlogs.py): the
        running or terminated one, else that of lastState; previous: that of lastState."""
        if previous or "waiting" in self.state:
            instance = (self.last_state.get("terminated") or {}).get("containerID")
        else:
            instance = (self.state.get("terminated") or {}).get("containerID") or self.container_id
        return self.log_files.get(instance or "") or self._next_log_file()

    def _next_log_file(self) -> pathlib.Path:
        return self.pod.dir / "logs" / self.name / f"{self.restart_count}.log"

    # ------------------------------------------------------------ runs
    async def run(self) -> None:
        """A regular container: start, probe, restart per restartPolicy, until cancelled."""
        while True:
            try:
                inst = await self._start_instance()
            except SandboxGone:
                continue  # _start_instance waits for the next sandbox
            if inst is not None:
                code = await self._until_exit(inst, probes=True)
                if not self._should_restart(code):
                    self.update(done=True)
                    return
            await self._restart_after_back_off(inst)

    async def run_to_completion(self) -> bool | None:
        """An init container: True once it exited 0, False if it failed for good,
        None if the pod sandbox went away meanwhile."""
        while True:
            holder = self.pod.holder
            try:
                inst = await self._start_instance(holder)
            except SandboxGone:
                return None
            if inst is not None:
                code = await self._until_exit(inst, probes=False)
                if code == 0:
                    self.update(done=True, ready=True)
                    return True
                if not self._should_restart(code):
                    self.update(done=True)
                    return False
            if holder is None or holder.dead.done():
                return None
            await self._restart_after_back_off(inst)

    async def _until_exit(self, inst: Instance, probes: bool) -> int:
        """Waits for the instance's exit (probing it meanwhile), records it, returns the exit code."""
        prober = asyncio.create_task(self._probes(inst)) if probes else None
        try:
            code = await asyncio.shield(inst.exited)  # a cancel must leave the instance to Pod._terminate
        finally:
            if prober is not None:
                prober.cancel()
        self._record_exit(inst, code)
        return code

    def _record_exit(self, inst: Instance, code: int) -> None:
        reason = self.kill_reason or ("Completed" if code == 0 else "Error")
        self.kill_reason = None
        terminated = {
            "exitCode": code,
            "reason": reason,
            "startedAt": inst.started_at,
            "finishedAt": now(),
            "containerID": self.container_id,
        }
        if code > 128 and code - 128 < 65:
            terminated["signal"] = code - 128
        self.exit_code = code
        self.update(state={"terminated": terminated}, ready=False, started=False, instance=None)

    def _should_restart(self, code: int | None) -> bool:
        policy = self.pod.spec.get("restartPolicy") or "Always"
        if self.init:
            return code != 0 and policy != "Never"
        return policy == "Always" or (policy == "OnFailure" and code != 0)

    async def _restart_after_back_off(self, inst: Instance | None) -> None:
        """inst: the instance that exited (None: none could start, the state says why)."""
        ran_for = time.monotonic() - inst.started_mono if inst is not None else 0.0
        if ran_for >= BACKOFF_RESET_AFTER:
            self._backoff = 0.0
        if inst is not None and not self._backoff:
            # the kubelet restarts a container that exited at once the first time: its back-off entry is made
            # then (kuberuntime_manager.go doBackOff: IsInBackOffSince is false without one, then Next)
            self._backoff = BACKOFF_FIRST
            if "terminated" in self.state:
                self.update(last_state=self.state)
            self.update(restart_count=self.restart_count + 1)
            return
        delay = self._backoff or BACKOFF_FIRST
        self._backoff = min(BACKOFF_CAP, delay * 2)
        if "terminated" in self.state:
            pod = self.pod
            self.update(last_state=self.state)
            self.wait(
                "CrashLoopBackOff",
                f"back-off {delay:g}s restarting failed container={self.name} "
                f"pod={pod.name}_{pod.namespace}({pod.uid})",
            )
            self.event(
                "BackOff",
                f"Back-off restarting failed container {self.name} in pod "
                f"{pod.name}_{pod.namespace}({pod.uid})",
                WARNING,
            )
        await asyncio.sleep(delay)
        if inst is not None:
            self.update(restart_count=self.restart_count + 1)

    # ------------------------------------------------------------ one instance
    async def _start_instance(self, holder: Holder | None = None) -> Instance | None:
        """None: it could not start (the state says why). Raises SandboxGone."""
        if holder is None:
            holder = await self.pod.live_holder()
        elif not holder.alive:
            raise SandboxGone
        if not await self._pull_image():
            return None
        env = self._env()
        if env is None:
            return None
        inst = Instance(f"{self.name}-{self.pod.next_instance()}")
        holder.instances[inst.id] = inst
        try:
            holder.send(self._start_request(inst, env))
        except ConnectionError:
            holder.instances.pop(inst.id, None)
            raise SandboxGone from None
        started = await asyncio.shield(inst.started)
        if started.get("error"):
            self.wait("CreateContainerError", started["error"])
            self.event("Failed", f"Error: {started['error']}", WARNING)
            await asyncio.shield(inst.exited)
            return None
        self._running(inst, env)
        return inst

    async def _pull_image(self) -> bool:
        """Nothing is pulled (the host's programs run): the events and states say what a kubelet
        would. An image the node cannot pull (images.py) is ErrImagePull, then ImagePullBackOff
        until the next attempt (the caller backs off); False then."""
        image = self.spec.get("image", "")
        error = self.pod.kubelet.cluster.images.pull_error(image)
        if error is None and self.spec.get("imagePullPolicy") != "Always":
            self.event("Pulled", f'Container image "{image}" already present on machine')
            return True
        self.event("Pulling", f'Pulling image "{image}"')
        if error is None:
            self.event(
                "Pulled",
                f'Successfully pulled image "{image}" in 0s (0s including waiting). Image size: 0 bytes.',
            )
            return True
        self.event("Failed", f'Failed to pull image "{image}": {error}', WARNING)
        self.event("Failed", "Error: ErrImagePull", WARNING)
        self.wait("ErrImagePull", error)
        await asyncio.sleep(PULL_ERROR_SHOWN)
        self.event("BackOff", f'Back-off pulling image "{image}"')
        self.event("Failed", "Error: ImagePullBackOff", WARNING)
        self.wait("ImagePullBackOff", f'Back-off pulling image "{image}": ErrImagePull: {error}')
        return False

    def _env(self) -> dict[str, str] | None:
        """The instance's environment; None (state waiting, a Failed event) when a reference is missing."""
        pod = self.pod
        try:
            env = node_volumes.container_env(
                pod.kubelet.cluster.store, pod.obj, self.spec, pod.pod_ip, pod.service_env()
            )
            programs = pod.kubelet.cluster.images.program_dirs(self.spec.get("image", ""))
            if programs:  # the image's own programs come first, as its filesystem's would
                env["PATH"] = ":".join([*programs, env.get("PATH", node_volumes.DEFAULT_PATH)])
            return env
        except node_volumes.NotReadyYet as e:
            self.wait(e.reason, str(e))
            self.event("Failed", f"Error: {e}", WARNING)
            return None

    def _start_request(self, inst: Instance, env: dict[str, str]) -> dict:
        words = (self.spec.get("command") or []) + (self.spec.get("args") or [])
        argv = [node_volumes.expand(str(a), env) for a in words]
        mounts = [{"src": self.pod.source_index[src], "dst": dst, "ro": ro} for src, dst, ro in self.mounts]
        return {
            "op": "start",
            "id": inst.id,
            "argv": argv or None,
            "env": env,
            "cwd": self.spec.get("workingDir") or "/",
            "mounts": mounts,
            "log": [self.name, self._next_log_file().name],
            "missing": "exit0" if self.init else "idle",
        }

    def _running(self, inst: Instance, env: dict[str, str]) -> None:
        self.event("Created", f"Created container {self.name}")
        self.event("Started", f"Started container {self.name}")
        self.env = env
        self.instance = inst
        self.container_id = "kubesim://" + hashlib.sha256(f"{self.pod.uid}/{inst.id}".encode()).hexdigest()
        self.log_files[self.container_id] = self._next_log_file()
        self.update(state={"running": {"startedAt": inst.started_at}})

    # ------------------------------------------------------------ probes
    async def _probes(self, inst: Instance) -> None:
        startup = self.spec.get("startupProbe")
        if startup and not await self._probe_loop(
            "Startup", startup, functools.partial(self._startup_result, inst)
        ):
            return
        self.update(started=True)
        loops = []
        readiness = self.spec.get("readinessProbe")
        if readiness:
            loops.append(self._probe_loop("Readiness", readiness, self._readiness_result))
        else:
            self.update(ready=True)
        liveness = self.spec.get("livenessProbe")
        if liveness:
            loops.append(
                self._probe_loop("Liveness", liveness, functools.partial(self._liveness_result, inst))
            )
        if loops:
            await asyncio.gather(*loops)

    async def _probe_loop(self, kind: str, probe: dict, react) -> bool:
        """Probes after initialDelaySeconds, then every periodSeconds, until `await react(params,
        consecutive successes, consecutive failures)` says how it ended (not None)."""
        params = node_probes.ProbeParams.of(probe)
        await asyncio.sleep(params.initial_delay)
        successes = failures = 0
        while True:
            if await self._probe(kind, probe):
                successes, failures = successes + 1, 0
            else:
                successes, failures = 0, failures + 1
            outcome = await react(params, successes, failures)
            if outcome is not None:
                return outcome
            await asyncio.sleep(params.period)

    async def _startup_result(self, inst: Instance, params, successes: int, failures: int) -> bool | None:
        """True: started; False: failed for good (the instance is killed)."""
        if successes:
            return True
        if failures >= params.failure_threshold:
            await self._kill(inst, "startup")
            return False
        return None

    async def _readiness_result(self, params, successes: int, failures: int) -> None:
        if successes >= params.success_threshold and not self.ready:
            self.update(ready=True)
        elif failures >= params.failure_threshold and self.ready:
            self.update(ready=False)

    async def _liveness_result(self, inst: Instance, params, successes: int, failures: int) -> bool | None:
        """False once it failed for good (the instance is killed)."""
        if failures >= params.failure_threshold:
            await self._kill(inst, "liveness")
            return False
        return None

    async def _probe(self, kind: str, probe: dict) -> bool:
        """One attempt; a failure is an Unhealthy event, as the real kubelet records each one."""
        result = await node_probes.run_probe(self.pod, self.name, self.spec, probe)
        if not result.ok:
            self.event("Unhealthy", f"{kind} probe failed: {result.output}", WARNING)
        return result.ok

    async def _kill(self, inst: Instance, probe: str) -> None:
        log.info("pod %s container %s: %s probe failed, restarting", self.pod.key, self.name, probe)
        holder = self.pod.holder
        if holder is None:
            return
        self.event("Killing", f"Container {self.name} failed {probe} probe, will be restarted")
        holder.kill(inst.id, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(inst.exited), min(self.pod.grace_default(), GRACE_CAP))
        except asyncio.TimeoutError:
            holder.kill(inst.id, signal.SIGKILL)
