"""The kubesim kubelet: runs each pod's containers as host processes in per-pod namespaces.

How a pod runs
--------------
* One holder process per pod (`node_holder.py`, like a pause container) is pid 1 of the pod's
  own pid namespace and owns its network (loopback only, lo up), mount, uts (hostname = pod
  name) and ipc namespaces. In its mount namespace /proc is the pod's own, and /run, /tmp and
  /dev/shm are private tmpfs (so /var/run/docker.sock, /var/run -> /run on Debian, is per pod).
  Every mount is made inside the pod's mount namespaces (all private): the host's mount table
  never changes, and the mounts vanish with the pod's processes.
* `hostNetwork: true` pods keep the host's network and uts namespaces (podIP 127.0.0.1).
  securityContext (runAsUser, privileged, capabilities...) and resources are ignored: every
  process runs as the emulator's user (root).
* Each container is a host process in the pod's network/uts/ipc namespaces, with its own pid
  namespace (a child of the pod's: when the container's program exits, whatever it left
  behind dies with it) and its own mount namespace (a copy of the pod's) holding its
  volumeMounts and its own /proc. Its pid 1 is `kubesim-init` (forwards SIGTERM & co to the
  program, pid 2, and reaps). The root filesystem is the host's: the image is recorded in the status
  (image, a made-up imageID), never pulled. So `image: docker:24.0.7-dind-alpine3.18` with
  `command: [dockerd, ...]` runs the host's dockerd, isolated per pod.
* `command` + `args` run with the container's env (value, valueFrom configMapKeyRef /
  secretKeyRef / fieldRef, envFrom; $(VAR) expansion; PATH, HOME, HOSTNAME defaults) in
  workingDir (default /). With `args` but no `command`, the args are run as the command.
  A container with neither, or whose program is not found on the host (looked up with the
  container's PATH, inside its mount namespace), stays running idle (state running, ready per
  its probe, or at once without one); an init container in that case counts as completed.
  The log file then says why.
* stdout+stderr go to `state_dir/pods/<uid>/logs/<container>/<restartCount>.log`, plain text
  (no timestamps). `log_path(c)` is the current instance's file (running, else the newest
  terminated one), `log_path(c, previous=True)` that of lastState.terminated, as the real
  kubelet picks them (during a crash-loop back-off both are the newest, dead, instance).
* Volumes: persistentVolumeClaim (the claim's directory `cluster.pvc_path`; the pod waits in
  ContainerCreating until the claim exists), configMap, secret, projected (configMap, secret,
  downwardAPI, serviceAccountToken: a dummy token), downwardAPI (files written under the pod's
  state dir, `items`, `defaultMode`/`mode` honoured; rewritten when the object changes), emptyDir
  (a directory under the pod's state dir, removed with the pod), hostPath (type checks and
  DirectoryOrCreate/FileOrCreate). subPath/subPathExpr (subdirectories created on demand in
  PVC/emptyDir/hostPath volumes; for configMap/secret volumes the key must exist and can be a
  file bind-mounted onto a file). readOnly honoured; unlike Kubernetes, configMap/secret
  volumes are writable unless readOnly is set (dockerd 20.10 writes /etc/docker/key.json).
  A missing mountPath/workingDir is created without touching the host's files: inside a
  pod-private filesystem (/run, /tmp, another volume) directly, elsewhere under a private
  overlay of its deepest existing ancestor; only a missing directory right below `/` (e.g.
  /data) is created on the host itself (empty), and a missing file right below `/` is refused
  (CreateContainerError).
* Probes: readiness, liveness (the container is killed and restarted) and startup; exec (run in
  the container's namespaces through the `kubectl exec` argv, under `timeout -s KILL`),
  httpGet (200-399) and tcpSocket (grpc: a TCP connect) against 127.0.0.1 inside the pod's
  network namespace. initialDelaySeconds, periodSeconds, timeoutSeconds, successThreshold and
  failureThreshold are honoured; the first probe runs right after start + initialDelay.
  Without a readiness probe a container is ready once started. A (namespace, pod) in
  `cluster.faults.unready` keeps the pod's Ready condition False (checked every 0.2 s).
* Restarts: restartPolicy Always/OnFailure/Never; back-off 1 s, 2 s, 4 s ... capped at 30 s
  (reset after 60 s of running), shown as waiting CrashLoopBackOff with lastState terminated
  and restartCount. Phase: Pending until the holder is up and init containers completed,
  Running, or Succeeded/Failed once no container will run again (OnFailure/Never).
* Status (written only when it changed): phase, conditions PodScheduled, Initialized,
  ContainersReady, Ready (with lastTransitionTime), containerStatuses /
  initContainerStatuses (state, lastState, ready, started, restartCount, image, imageID,
  containerID), podIP 10.244.0.x (never used for traffic: connections go through the pod's
  netns), hostIP 127.0.0.1, startTime, qosClass.
* Events (`cluster.record_event`: source kubelet, involvedObject the pod, fieldPath
  `spec.containers{name}` for a container's; repeats aggregated into one Event with a count), as
  a real kubelet words them: Pulled (`Container image "x" already present on machine`; Pulling +
  Pulled for imagePullPolicy Always), Created, Started, Killing (`Stopping container x`, or
  `Container x failed liveness probe, will be restarted`), BackOff (Warning, once per back-off),
  Unhealthy (Warning, every failed probe: `Readiness probe failed: HTTP probe failed with
  statuscode: 500`...), Failed (Warning, `Error: ...`: a missing env reference, a container that
  cannot be created) and FailedMount (Warning, a missing configMap/secret/claim, reported after
  0.5, 1, 2, 4 ... s of waiting, as the kubelet's mount retries).
* Deletion: a pod with deletionTimestamp gets SIGTERM (forwarded to each container's program),
  then after min(grace period, 5 s) the pod's pid-namespace init is SIGKILLed (killing every
  process of the pod, dockerd's shims and containers included), its state dir is removed (not
  PVC directories) and the pod is removed from the store, never sooner than 0.5 s after the
  deletion began (as a real kubelet: `kubectl delete` could otherwise miss the deletion of a
  StatefulSet pod that is recreated at once under the same name). A pod that vanishes from
  the store otherwise is stopped the same way. `stop()` does this for every pod with a 1 s
  grace. Processes are only ever signalled through pidfds / pids kubesim started, never by
  name. If the emulator dies (even by SIGKILL), each holder sees its control socket close and
  exits, which kills its pod's processes.
"""
from __future__ import annotations

import asyncio
import datetime
import errno
import hashlib
import json
import logging
import os
import pathlib
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

from . import node_probes, node_volumes, podns

log = logging.getLogger("kubesim.kubelet")

HOLDER = str(pathlib.Path(__file__).with_name("node_holder.py"))
NSENTER = shutil.which("nsenter") or "/usr/bin/nsenter"
ENV = shutil.which("env") or "/usr/bin/env"

GRACE_CAP = 5.0            # seconds: longest graceful termination
STOP_GRACE = 1.0           # seconds: graceful part of Kubelet.stop()
MIN_DELETION = 0.5         # seconds: a deleted pod leaves the store no sooner (see Pod._terminate)
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 30.0
BACKOFF_RESET_AFTER = 60.0  # a container that ran this long restarts without back-off
TICK = 0.2                  # status re-check period (unready faults)
RETRY = 0.5                 # waiting for a missing configMap/secret/claim
MOUNT_REPORT_CAP = 122.0    # seconds: FailedMount is reported after 0.5, 1, 2, 4 ... s of waiting, then this often
NORMAL, WARNING = "Normal", "Warning"
HOLDER_START_TIMEOUT = 30.0


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _image_id(image: str) -> str:
    repo = image.split("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:
        repo = repo[: len(repo) - len(last)] + last.split(":", 1)[0]
    if "/" not in repo:
        repo = "docker.io/library/" + repo
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


class SandboxGone(Exception):
    """The pod's holder died: the container will start in the next one."""


class Instance:
    """One run of a container (what a container runtime calls a container)."""

    def __init__(self, cid: str) -> None:
        loop = asyncio.get_running_loop()
        self.id = cid
        self.host_pid: int | None = None   # the container's pid-namespace init, on the host
        self.idle = False
        self.started: asyncio.Future = loop.create_future()   # -> the "started" event (dict)
        self.exited: asyncio.Future = loop.create_future()    # -> exit code
        self.started_at = _now()
        self.started_mono = time.monotonic()

    @property
    def running(self) -> bool:
        return self.started.done() and not self.exited.done()


class Holder:
    """The kubelet's end of one pod holder process (see node_holder.py)."""

    def __init__(self, pod: "Pod") -> None:
        self.pod = pod
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future = loop.create_future()
        self.dead: asyncio.Future = loop.create_future()
        self.instances: dict[str, Instance] = {}
        self.proc: asyncio.subprocess.Process | None = None
        self.pid: int | None = None          # host pid of the pod's pid-namespace init
        self.pidfd: int | None = None
        self.sock: socket.socket | None = None

    @property
    def alive(self) -> bool:
        return self.ready.done() and not self.ready.exception() and not self.dead.done()

    async def start(self, spec_path: pathlib.Path) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        ours.setblocking(False)
        self.sock = ours
        loop.add_reader(ours.fileno(), self._readable)
        try:
            with open(self.pod.dir / "holder.log", "ab") as errors:
                self.proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-I", "-S", HOLDER, str(spec_path), str(theirs.fileno()),
                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=errors, stderr=errors,
                    start_new_session=True)
        finally:
            theirs.close()
        await asyncio.wait_for(asyncio.shield(self.ready), HOLDER_START_TIMEOUT)
        self.pidfd = podns.pidfd_open(self.pid)

    def _readable(self) -> None:
        while self.sock is not None:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(1 << 16, socket.CMSG_SPACE(12))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._gone()
                return
            pid = None
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(payload) >= 12:
                    pid = struct.unpack("3i", payload[:12])[0]
            try:
                self._dispatch(json.loads(data), pid)
            except Exception:  # noqa: BLE001
                log.exception("pod %s: bad message from the holder: %r", self.pod.key, data[:200])

    def _dispatch(self, msg: dict, pid: int | None) -> None:
        event = msg.get("ev")
        if event == "ready":
            self.pid = pid
            if not self.ready.done():
                self.ready.set_result(pid)
        elif event == "fatal":
            if not self.ready.done():
                self.ready.set_exception(RuntimeError(f"pod sandbox: {msg.get('msg')}"))
        elif event == "started":
            inst = self.instances.get(msg.get("id"))
            if inst is not None and not inst.started.done():
                inst.host_pid = pid
                inst.idle = bool(msg.get("idle"))
                inst.started.set_result(msg)
        elif event == "exit":
            inst = self.instances.pop(msg.get("id"), None)
            if inst is not None:
                if not inst.started.done():
                    inst.started.set_result({"error": "the container exited during its creation"})
                if not inst.exited.done():
                    inst.exited.set_result(int(msg.get("code", 128)))

    def _gone(self) -> None:
        if self.sock is not None:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
        if not self.ready.done():
            self.ready.set_exception(RuntimeError("pod sandbox exited during its start (see holder.log)"))
        for inst in list(self.instances.values()):
            if not inst.started.done():
                inst.started.set_result({"error": "pod sandbox gone"})
            if not inst.exited.done():
                inst.exited.set_result(137)
        self.instances.clear()
        if not self.dead.done():
            self.dead.set_result(None)

    def send(self, msg: dict) -> None:
        if self.sock is None or self.dead.done():
            raise ConnectionError("pod sandbox gone")
        try:
            self.sock.send(json.dumps(msg).encode())
        except BlockingIOError:  # the holder is not reading: it is stuck or dying
            raise ConnectionError("pod sandbox not responding") from None

    def kill(self, cid: str, sig: int) -> bool:
        try:
            self.send({"op": "kill", "id": cid, "sig": int(sig)})
            return True
        except ConnectionError:
            return False

    def sigkill(self) -> None:
        """SIGKILL the pod's pid-namespace init: every process of the pod dies."""
        if self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
        elif self.proc is not None and self.proc.returncode is None:
            try:
                self.proc.kill()  # the holder itself then exits on the socket's EOF (close())
            except ProcessLookupError:
                pass

    def close(self) -> None:
        if self.sock is not None:
            try:
                asyncio.get_running_loop().remove_reader(self.sock.fileno())
            except Exception:  # noqa: BLE001
                pass
            self.sock.close()
            self.sock = None
        if not self.dead.done():
            self._gone()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None

    async def wait_gone(self, timeout: float) -> None:
        if self.proc is None:
            return
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            log.error("pod %s: holder wrapper %s did not exit", self.pod.key, self.proc.pid)
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass


class Container:
    def __init__(self, pod: "Pod", spec: dict, init: bool) -> None:
        self.pod = pod
        self.spec = spec
        self.name = spec.get("name", "")
        self.init = init
        self.restart_count = 0
        self.state: dict = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state: dict = {}
        self.ready = False
        self.started = False
        self.done = False              # will not run again
        self.exit_code: int | None = None
        self.container_id: str | None = None
        self.instance: Instance | None = None
        self.env: dict[str, str] | None = None
        self.mounts: list[tuple[str, str, bool]] = []
        self.task: asyncio.Task | None = None
        self.log_files: dict[str, pathlib.Path] = {}   # by containerID: each instance's output
        self._backoff = 0.0

    # ------------------------------------------------------------ status
    def status(self) -> dict:
        image = self.spec.get("image", "")
        out = {"name": self.name, "image": image, "imageID": _image_id(image) if self.container_id else "",
               "ready": self.ready, "started": self.started, "restartCount": self.restart_count,
               "state": self.state, "lastState": self.last_state}
        if self.container_id:
            out["containerID"] = self.container_id
        return out

    def log_file(self, previous: bool = False) -> pathlib.Path:
        """The output file of the instance `kubectl logs [--previous]` reads (see podlogs.py): the
        running or terminated one, else that of lastState; previous: that of lastState."""
        if previous or "waiting" in self.state:
            instance = (self.last_state.get("terminated") or {}).get("containerID")
        else:
            instance = (self.state.get("terminated") or {}).get("containerID") or self.container_id
        found = self.log_files.get(instance or "")
        return found or self.pod.dir / "logs" / self.name / f"{self.restart_count}.log"

    def _set(self, **fields) -> None:
        for key, value in fields.items():
            setattr(self, key, value)
        self.pod.changed()

    # ------------------------------------------------------------ runs
    async def _start_instance(self, holder: Holder | None = None) -> Instance | None:
        """None: it could not start (the state says why). Raises SandboxGone."""
        pod = self.pod
        if holder is None:
            holder = await pod.live_holder()
        elif not holder.alive:
            raise SandboxGone()
        self._pull_image()
        try:
            env = node_volumes.container_env(pod.kubelet.cluster.store, pod.obj, self.spec, pod.pod_ip)
        except node_volumes.NotReadyYet as e:
            self._set(state={"waiting": {"reason": e.reason, "message": str(e)}})
            self.event("Failed", f"Error: {e}", WARNING)
            return None
        argv = [node_volumes.expand(str(a), env) for a in (self.spec.get("command") or []) + (self.spec.get("args") or [])]
        cid = f"{self.name}-{pod.next_instance()}"
        inst = Instance(cid)
        holder.instances[cid] = inst
        request = {"op": "start", "id": cid, "argv": argv or None, "env": env,
                   "cwd": self.spec.get("workingDir") or "/",
                   "mounts": [{"src": pod.source_index[src], "dst": dst, "ro": ro} for src, dst, ro in self.mounts],
                   "log": [self.name, f"{self.restart_count}.log"], "missing": "exit0" if self.init else "idle"}
        try:
            holder.send(request)
        except ConnectionError:
            holder.instances.pop(cid, None)
            raise SandboxGone() from None
        started = await asyncio.shield(inst.started)
        if started.get("error"):
            self._set(state={"waiting": {"reason": "CreateContainerError", "message": started["error"]}})
            self.event("Failed", f"Error: {started['error']}", WARNING)
            await asyncio.shield(inst.exited)
            return None
        self.event("Created", f"Created container {self.name}")
        self.event("Started", f"Started container {self.name}")
        self.env = env
        self.instance = inst
        self.container_id = "kubesim://" + hashlib.sha256(f"{pod.uid}/{cid}".encode()).hexdigest()
        self.log_files[self.container_id] = self.pod.dir / "logs" / self.name / f"{self.restart_count}.log"
        self._set(state={"running": {"startedAt": inst.started_at}})
        return inst

    def event(self, reason: str, message: str, type_: str = NORMAL) -> None:
        """An Event about this container (involvedObject.fieldPath spec.containers{name})."""
        self.pod.event(reason, message, type_, field_path=f"spec.{'initContainers' if self.init else 'containers'}{{{self.name}}}")

    def _pull_image(self) -> None:
        """Nothing is pulled (the host's programs run): the events say what a kubelet would."""
        image = self.spec.get("image", "")
        if self.spec.get("imagePullPolicy") == "Always":
            self.event("Pulling", f'Pulling image "{image}"')
            self.event("Pulled", f'Successfully pulled image "{image}" in 0s (0s including waiting). Image size: 0 bytes.')
        else:
            self.event("Pulled", f'Container image "{image}" already present on machine')

    def _record_exit(self, inst: Instance, code: int) -> None:
        reason = "Completed" if code == 0 else "Error"
        terminated = {"exitCode": code, "reason": reason, "startedAt": inst.started_at, "finishedAt": _now(),
                      "containerID": self.container_id}
        if code > 128 and code - 128 < 65:
            terminated["signal"] = code - 128
        self.exit_code = code
        self._set(state={"terminated": terminated}, ready=False, started=False, instance=None)

    def _should_restart(self, code: int | None) -> bool:
        policy = self.pod.spec.get("restartPolicy") or "Always"
        if self.init:
            return code != 0 and policy != "Never"
        return policy == "Always" or (policy == "OnFailure" and code != 0)

    async def _back_off(self, ran_for: float) -> None:
        if ran_for >= BACKOFF_RESET_AFTER:
            self._backoff = 0.0
        self._backoff = BACKOFF_FIRST if not self._backoff else min(BACKOFF_CAP, self._backoff * 2)
        if "terminated" in self.state:
            pod = self.pod
            self._set(last_state=self.state, state={"waiting": {"reason": "CrashLoopBackOff", "message":
                                         f"back-off {self._backoff:g}s restarting failed container={self.name} "
                                         f"pod={pod.name}_{pod.namespace}({pod.uid})"}})
            self.event("BackOff", f"Back-off restarting failed container {self.name} in pod "
                                  f"{pod.name}_{pod.namespace}({pod.uid})", WARNING)
        await asyncio.sleep(self._backoff)

    async def run(self) -> None:
        """A regular container: start, probe, restart per restartPolicy, until cancelled."""
        while True:
            try:
                inst = await self._start_instance()
            except SandboxGone:
                continue  # _start_instance waits for the next sandbox
            ran_for = 0.0
            if inst is not None:
                probes = asyncio.create_task(self._probes(inst))
                try:
                    code = await asyncio.shield(inst.exited)  # a cancel must leave it to _terminate
                finally:
                    probes.cancel()
                ran_for = time.monotonic() - inst.started_mono
                self._record_exit(inst, code)
                if not self._should_restart(code):
                    self._set(done=True)
                    return
            await self._back_off(ran_for)
            if inst is not None:
                self._set(restart_count=self.restart_count + 1)

    async def run_to_completion(self) -> bool | None:
        """An init container: True once it exited 0, False if it failed for good,
        None if the pod sandbox went away meanwhile."""
        while True:
            holder = self.pod.holder
            try:
                inst = await self._start_instance(holder)
            except SandboxGone:
                return None
            ran_for = 0.0
            if inst is not None:
                code = await asyncio.shield(inst.exited)
                ran_for = time.monotonic() - inst.started_mono
                self._record_exit(inst, code)
                if code == 0:
                    self._set(done=True, ready=True)
                    return True
                if not self._should_restart(code):
                    self._set(done=True)
                    return False
            if holder is None or holder.dead.done():
                return None
            await self._back_off(ran_for)
            if inst is not None:
                self._set(restart_count=self.restart_count + 1)

    # ------------------------------------------------------------ probes
    async def _probes(self, inst: Instance) -> None:
        startup = self.spec.get("startupProbe")
        if startup:
            params = node_probes.ProbeParams.of(startup)
            await asyncio.sleep(params.initial_delay)
            failures = 0
            while not await self._probe("Startup", startup):
                failures += 1
                if failures >= params.failure_threshold:
                    await self._kill(inst, "startup")
                    return
                await asyncio.sleep(params.period)
        self._set(started=True)
        loops = []
        readiness = self.spec.get("readinessProbe")
        if readiness:
            loops.append(self._readiness(readiness))
        else:
            self._set(ready=True)
        liveness = self.spec.get("livenessProbe")
        if liveness:
            loops.append(self._liveness(liveness, inst))
        if loops:
            await asyncio.gather(*loops)

    async def _readiness(self, probe: dict) -> None:
        params = node_probes.ProbeParams.of(probe)
        await asyncio.sleep(params.initial_delay)
        successes = failures = 0
        while True:
            if await self._probe("Readiness", probe):
                successes, failures = successes + 1, 0
                if successes >= params.success_threshold and not self.ready:
                    self._set(ready=True)
            else:
                successes, failures = 0, failures + 1
                if failures >= params.failure_threshold and self.ready:
                    self._set(ready=False)
            await asyncio.sleep(params.period)

    async def _liveness(self, probe: dict, inst: Instance) -> None:
        params = node_probes.ProbeParams.of(probe)
        await asyncio.sleep(params.initial_delay)
        failures = 0
        while True:
            if await self._probe("Liveness", probe):
                failures = 0
            else:
                failures += 1
                if failures >= params.failure_threshold:
                    await self._kill(inst, "liveness")
                    return
            await asyncio.sleep(params.period)

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


class Pod:
    """One pod on the node; also its PodRuntime (exec_argv, open_connection, log_path, host_pids)."""

    def __init__(self, kubelet: "Kubelet", obj: dict) -> None:
        self.kubelet = kubelet
        self.obj = obj
        meta = obj["metadata"]
        self.namespace, self.name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.key = f"{self.namespace}/{self.name}"
        self.spec = obj.get("spec") or {}
        self.dir = pathlib.Path(kubelet.cluster.state_dir).absolute() / "pods" / self.uid
        self.init_containers = [Container(self, c, True) for c in self.spec.get("initContainers") or []]
        self.containers = [Container(self, c, False) for c in self.spec.get("containers") or []]
        for c in self.containers:
            if self.init_containers:
                c.state = {"waiting": {"reason": "PodInitializing"}}
        self.by_name = {c.name: c for c in self.init_containers + self.containers}
        self.volumes: dict[str, node_volumes.Volume] = {}
        self.source_index: dict[str, int] = {}
        self.pod_ip = "127.0.0.1" if self.spec.get("hostNetwork") else kubelet.allocate_ip()
        self.start_time = _now()
        self.holder: Holder | None = None
        self.netns_fd: int | None = None
        self.initialized = not self.init_containers
        self.init_failed = False
        self.sandbox_up = False
        self.terminating = False
        self.gone = False             # removed from the store (by us or someone else)
        self.remove_when_done = False
        self._holder_up = asyncio.Event()
        self._instances = 0
        self._conditions: dict[str, tuple[str, str]] = {}
        self._written: dict | None = None
        self._sync_scheduled = False
        self.task: asyncio.Task | None = None
        self.term_task: asyncio.Task | None = None

    # ------------------------------------------------------------ PodRuntime
    def exec_argv(self, container: str, command: list[str]) -> list[str]:
        """Host argv running `command` in the container's namespaces (its mount and pid
        namespaces while it runs, else the pod's), with its env and working directory.
        Raises OSError when the pod has no running sandbox."""
        holder = self.holder
        if holder is None or not holder.alive:
            raise OSError(errno.ESRCH, f"pod {self.key} has no running sandbox")
        c = self.by_name.get(container)
        inst = c.instance if c is not None else None
        target = inst.host_pid if inst is not None and inst.running and inst.host_pid else holder.pid
        env = dict(c.env) if c is not None and c.env else {"PATH": node_volumes.DEFAULT_PATH, "HOME": "/root",
                                                             "HOSTNAME": self.name}
        return [NSENTER, "-t", str(target), "--net", "--mount", "--pid", "--uts", "--ipc", "--wd", "--",
                ENV, "-i", "--", *[f"{k}={v}" for k, v in env.items()], *command]

    async def connect_socket(self, port: int) -> socket.socket:
        """A non-blocking socket connected to 127.0.0.1:port (else [::1]:port) in the pod's netns."""
        holder = self.holder
        if holder is None or not holder.alive or self.netns_fd is None:
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"pod {self.key} is not running")
        loop = asyncio.get_running_loop()
        first_error = None
        for family, address in ((socket.AF_INET, ("127.0.0.1", port)), (socket.AF_INET6, ("::1", port))):
            try:
                sock = await self.kubelet.netns.socket(self.netns_fd, family)
            except OSError as e:
                first_error = first_error or e
                continue
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, address)
                return sock
            except OSError as e:
                sock.close()
                first_error = first_error or e
            except BaseException:
                sock.close()
                raise
        raise first_error

    async def open_connection(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        sock = await self.connect_socket(port)
        try:
            return await asyncio.open_connection(sock=sock)
        except BaseException:
            sock.close()
            raise

    def log_path(self, container: str, previous: bool = False) -> pathlib.Path:
        """The output file of the container's current instance (running, else the newest
        terminated); previous=True: that of lastState.terminated. A file that does not exist
        when there was no such instance."""
        c = self.by_name.get(container)
        if c is None:
            return self.dir / "logs" / container / "none.log"
        return c.log_file(previous)

    def host_pids(self) -> list[int]:
        holder = self.holder
        extra = (holder.proc.pid,) if holder is not None and holder.proc is not None and holder.proc.returncode is None else ()
        if holder is None or holder.pid is None or holder.dead.done():
            return sorted(podns.pod_host_pids(-1, extra))
        return sorted(podns.pod_host_pids(holder.pid, extra))

    def event(self, reason: str, message: str, type_: str = NORMAL, field_path: str | None = None) -> None:
        """An Event from the kubelet about this pod (none while the emulator stops)."""
        if not self.kubelet.stopping:
            self.kubelet.cluster.record_event(self.obj, reason, message, type_, "kubelet", field_path)

    # ------------------------------------------------------------ lifecycle
    def begin(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"pod {self.key}")

    def next_instance(self) -> int:
        self._instances += 1
        return self._instances

    def grace_default(self) -> float:
        try:
            return float(self.spec.get("terminationGracePeriodSeconds", 30))
        except (TypeError, ValueError):
            return 30.0

    async def live_holder(self) -> Holder:
        while True:
            await self._holder_up.wait()
            if self.holder is not None and self.holder.alive:
                return self.holder
            await asyncio.sleep(0.05)

    def _prepare(self) -> None:
        """Volumes, mounts, log dirs and the holder's spec file. Raises NotReadyYet."""
        self.dir.mkdir(parents=True, exist_ok=True)
        store = self.kubelet.cluster.store
        self.volumes = node_volumes.prepare_volumes(self.kubelet.cluster, self.obj, self.dir, self.pod_ip)
        self.source_index = {}
        sources: list[str] = []
        for c in self.init_containers + self.containers:
            try:
                env = node_volumes.container_env(store, self.obj, c.spec, self.pod_ip)
                c.mounts = node_volumes.container_mounts(c.spec, self.volumes, env)
            except node_volumes.NotReadyYet as e:
                e.container = c
                raise
            for src, _, _ in c.mounts:
                if src not in self.source_index:
                    self.source_index[src] = len(sources)
                    sources.append(src)
            (self.dir / "logs" / c.name).mkdir(parents=True, exist_ok=True)
        spec = {"hostname": self.name[:63], "sources": sources, "hostNetwork": bool(self.spec.get("hostNetwork")),
                "logdirs": {c.name: str(self.dir / "logs" / c.name) for c in self.init_containers + self.containers}}
        (self.dir / "holder.json").write_text(json.dumps(spec))

    async def _run(self) -> None:
        self.changed()
        waited, next_report = 0.0, 0.0
        while True:
            try:
                self._prepare()
                break
            except node_volumes.NotReadyYet as e:
                for c in self.init_containers + self.containers:
                    if "waiting" in c.state and c.state["waiting"] != {"reason": e.reason, "message": str(e)}:
                        c._set(state={"waiting": {"reason": e.reason, "message": str(e)}})
                if waited >= next_report:  # the real kubelet retries a mount with exponential back-off
                    self._report_not_ready(e)
                    next_report = min(max(RETRY, next_report * 2), next_report + MOUNT_REPORT_CAP)
                await asyncio.sleep(RETRY)
                waited += RETRY
        self._clear_waiting_messages()
        failures = 0
        while not self.terminating:
            holder = Holder(self)
            self.holder = holder
            try:
                await holder.start(self.dir / "holder.json")
                self.netns_fd = os.open(f"/proc/{holder.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            except (OSError, RuntimeError, asyncio.TimeoutError) as e:
                log.error("pod %s: cannot start its sandbox: %s", self.key, e)
                for c in self.init_containers + self.containers:
                    if "waiting" in c.state:
                        c._set(state={"waiting": {"reason": "ContainerCreating", "message": f"pod sandbox: {e}"}})
                holder.sigkill()
                holder.close()
                await holder.wait_gone(5)
                failures += 1
                await asyncio.sleep(min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (failures - 1)))
                continue
            if failures:
                self._clear_waiting_messages()
            failures = 0
            self.sandbox_up = True
            self._holder_up.set()
            log.info("pod %s (%s): sandbox up, holder pid %s", self.key, self.uid, holder.pid)
            self.changed()
            if not self.initialized:
                for c in self.init_containers:
                    if c.done and c.exit_code == 0:
                        continue
                    ok = await c.run_to_completion()
                    if ok is None:
                        break
                    if not ok:
                        self.init_failed = True
                        self.changed()
                        return
                else:
                    self.initialized = True
                    self.changed()
            if self.initialized:
                for c in self.containers:
                    if c.task is None:
                        c.task = asyncio.create_task(c.run(), name=f"container {self.key}/{c.name}")
            await asyncio.shield(holder.dead)  # a cancelled wait must not mark the holder dead
            self._holder_up.clear()
            self._close_netns()
            if self.terminating:
                return
            log.error("pod %s: its sandbox died; starting a new one", self.key)
            holder.close()
            await holder.wait_gone(5)
            await asyncio.sleep(1)

    def _report_not_ready(self, e: node_volumes.NotReadyYet) -> None:
        if e.mount_failure:
            self.event("FailedMount", e.mount_failure, WARNING)
        elif e.container is not None:
            e.container.event("Failed", f"Error: {e}", WARNING)

    def _clear_waiting_messages(self) -> None:
        for c in self.init_containers + self.containers:
            if c.state.get("waiting", {}).get("message"):
                initializing = self.init_containers and not c.init
                c._set(state={"waiting": {"reason": "PodInitializing" if initializing else "ContainerCreating"}})

    def _close_netns(self) -> None:
        if self.netns_fd is not None:
            os.close(self.netns_fd)
            self.netns_fd = None

    def on_api_object(self, key: str, obj: dict) -> None:
        """A configMap or secret changed: refresh the volumes made from it."""
        name = obj["metadata"]["name"]
        if obj["metadata"].get("namespace") != self.namespace or self.terminating:
            return
        for volume in self.volumes.values():
            if (key, name) in volume.refs:
                try:
                    node_volumes.refresh_api_volume(self.kubelet.cluster, self.obj, volume, self.pod_ip)
                except OSError as e:
                    log.warning("pod %s: cannot refresh volume %s: %s", self.key, volume.name, e)

    def start_termination(self, grace: float, remove: bool) -> asyncio.Task:
        self.remove_when_done = self.remove_when_done or remove
        if self.term_task is None:
            self.term_task = asyncio.create_task(self._terminate(grace), name=f"stop pod {self.key}")
            self.kubelet.terminations.add(self.term_task)
            self.term_task.add_done_callback(self.kubelet.terminations.discard)
        return self.term_task

    async def _terminate(self, grace: float) -> None:
        self.terminating = True
        began = time.monotonic()
        log.info("pod %s (%s): stopping, grace %gs", self.key, self.uid, min(max(grace, 0.0), GRACE_CAP))
        tasks = [t for t in [self.task] + [c.task for c in self.containers] if t is not None and not t.done()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        holder = self.holder
        try:
            if holder is not None:
                if holder.alive:
                    pending = [inst for inst in holder.instances.values() if not inst.exited.done()]
                    wait = min(max(grace, 0.0), GRACE_CAP)
                    for c in self.init_containers + self.containers:
                        if c.instance is not None and c.instance in pending:
                            c.event("Killing", f"Stopping container {c.name}")
                    if pending and wait > 0:
                        for inst in pending:
                            holder.kill(inst.id, signal.SIGTERM)
                        await asyncio.wait([asyncio.shield(inst.exited) for inst in pending], timeout=wait)
                holder.sigkill()
                holder.close()
                await holder.wait_gone(10)
            self._close_netns()
            shutil.rmtree(self.dir, ignore_errors=True)
        finally:
            self.kubelet.forget(self)
            if self.remove_when_done and not self.gone:
                # Never faster than MIN_DELETION: `kubectl delete` GETs the pod, then LISTs and
                # watches it; a pod removed in between and recreated at once by its StatefulSet
                # (same name, new uid) would make kubectl wait for a deletion that never comes.
                if not self.kubelet.stopping:
                    await asyncio.sleep(max(0.0, MIN_DELETION - (time.monotonic() - began)))
                self.gone = True
                store = self.kubelet.cluster.store
                current = store.get("pods", self.namespace, self.name)
                if current is not None and current["metadata"].get("uid") == self.uid:
                    store.remove("pods", self.namespace, self.name)
            log.info("pod %s (%s): stopped in %.2fs%s", self.key, self.uid, time.monotonic() - began,
                     ", removed" if self.remove_when_done else "")

    # ------------------------------------------------------------ status
    def changed(self) -> None:
        if not self._sync_scheduled:
            self._sync_scheduled = True
            asyncio.get_running_loop().call_soon(self._sync_soon)

    def _sync_soon(self) -> None:
        self._sync_scheduled = False
        self.sync_status()

    def _condition(self, kind: str, status: bool, reason: str | None = None, message: str | None = None) -> dict:
        value = "True" if status else "False"
        old = self._conditions.get(kind)
        if old is None or old[0] != value:
            self._conditions[kind] = (value, _now())
        out = {"type": kind, "status": value, "lastProbeTime": None, "lastTransitionTime": self._conditions[kind][1]}
        if not status and reason:
            out["reason"] = reason
            if message:
                out["message"] = message
        return out

    def phase(self) -> str:
        if self.init_failed:
            return "Failed"
        if not self.initialized or not self.sandbox_up or not any(c.container_id for c in self.containers):
            return "Pending"
        if self.containers and all(c.done for c in self.containers):
            return "Succeeded" if all(c.exit_code == 0 for c in self.containers) else "Failed"
        return "Running"

    def compute_status(self) -> dict:
        faults = getattr(self.kubelet.cluster, "faults", None)
        held = faults is not None and (self.namespace, self.name) in getattr(faults, "unready", ())
        phase = self.phase()
        unready = [c.name for c in self.containers if not c.ready]
        containers_ready = not unready and phase == "Running"
        message = f"containers with unready status: [{' '.join(unready)}]" if unready else None
        pending_init = [c.name for c in self.init_containers if not (c.done and c.exit_code == 0)]
        conditions = [
            self._condition("PodReadyToStartContainers", self.sandbox_up),
            self._condition("Initialized", self.initialized, "ContainersNotInitialized",
                            f"containers with incomplete status: [{' '.join(pending_init)}]"),
            self._condition("Ready", containers_ready and not held,
                            "ContainersNotReady" if not containers_ready else "KubesimHeldUnready",
                            message if not containers_ready else "held unready by a kubesim fault"),
            self._condition("ContainersReady", containers_ready, "ContainersNotReady", message),
            self._condition("PodScheduled", True),
        ]
        resources = any((c.get("resources") or {}) for c in self.spec.get("containers") or [])
        status = {"phase": phase, "conditions": conditions, "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
                  "startTime": self.start_time, "qosClass": "Burstable" if resources else "BestEffort",
                  "containerStatuses": [c.status() for c in self.containers]}
        if self.sandbox_up:
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}]
        if self.init_containers:
            status["initContainerStatuses"] = [c.status() for c in self.init_containers]
        return status

    def sync_status(self) -> None:
        if self.gone or self.terminating:
            return
        status = self.compute_status()
        if status != self._written:
            self._written = status
            if self.kubelet.cluster.store.patch_status("pods", self.namespace, self.name, status) is None:
                self.gone = True


class Kubelet:
    def __init__(self, cluster) -> None:
        self.cluster = cluster
        self.pods: dict[str, Pod] = {}     # by uid
        self.netns = podns.NetnsSockets()
        self._ticker: asyncio.Task | None = None
        self.terminations: set[asyncio.Task] = set()
        self.stopping = False
        self._ips: set[int] = set()
        self._next_ip = 2

    # ------------------------------------------------------------ interface
    async def start(self) -> None:
        (pathlib.Path(self.cluster.state_dir) / "pods").mkdir(parents=True, exist_ok=True)
        self.cluster.store.subscribe(self._on_event)
        for pod in self.cluster.store.list("pods"):
            self._on_event("ADDED", "pods", pod)
        self._ticker = asyncio.create_task(self._tick(), name="kubelet ticker")

    async def stop(self) -> None:
        self.stopping = True
        self.cluster.store.unsubscribe(self._on_event)
        if self._ticker is not None:
            self._ticker.cancel()
        for pod in list(self.pods.values()):
            pod.start_termination(STOP_GRACE, remove=False)
        while self.terminations:
            await asyncio.gather(*list(self.terminations), return_exceptions=True)
        self.netns.close()

    def runtime(self, namespace: str, pod: str) -> Pod | None:
        found = [p for p in self.pods.values() if p.namespace == namespace and p.name == pod and not p.gone]
        live = [p for p in found if not p.terminating]
        return (live or found or [None])[-1]

    async def kill_container(self, namespace: str, pod: str, container: str) -> bool:
        p = self.runtime(namespace, pod)
        if p is None or p.holder is None:
            return False
        c = p.by_name.get(container)
        inst = c.instance if c is not None else None
        if inst is None or not inst.running:
            return False
        return p.holder.kill(inst.id, signal.SIGKILL)

    # ------------------------------------------------------------ internals
    def allocate_ip(self) -> str:
        for _ in range(253):
            n = self._next_ip
            self._next_ip = 2 if self._next_ip >= 254 else self._next_ip + 1
            if n not in self._ips:
                self._ips.add(n)
                return f"10.244.0.{n}"
        return "10.244.0.1"

    def forget(self, pod: Pod) -> None:
        if self.pods.get(pod.uid) is pod:
            del self.pods[pod.uid]
        if pod.pod_ip.startswith("10.244.0."):
            self._ips.discard(int(pod.pod_ip.rsplit(".", 1)[1]))

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            for pod in list(self.pods.values()):
                try:
                    pod.sync_status()
                except Exception:  # noqa: BLE001
                    log.exception("pod %s: status", pod.key)

    def _on_event(self, event_type: str, key: str, obj: dict) -> None:
        if self.stopping:
            return
        if key == "pods":
            self._on_pod(event_type, obj)
        elif key in ("configmaps", "secrets") and event_type != "DELETED":
            for pod in list(self.pods.values()):
                pod.on_api_object(key, obj)

    def _on_pod(self, event_type: str, obj: dict) -> None:
        meta = obj["metadata"]
        uid = meta.get("uid")
        pod = self.pods.get(uid)
        if event_type == "DELETED":
            if pod is not None:
                pod.gone = True
                pod.start_termination(0, remove=False)
            return
        if meta.get("deletionTimestamp"):
            grace = meta.get("deletionGracePeriodSeconds")
            if grace is None:
                grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            if pod is not None:
                pod.obj = obj
                pod.start_termination(float(grace), remove=True)
            else:
                asyncio.get_running_loop().call_soon(self._remove_unknown, meta["namespace"], meta["name"], uid)
            return
        if pod is None:
            if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return
            pod = Pod(self, obj)
            self.pods[uid] = pod
            pod.begin()
        else:
            pod.obj = obj

    def _remove_unknown(self, namespace: str, name: str, uid: str) -> None:
        store = self.cluster.store
        current = store.get("pods", namespace, name)
        if current is not None and current["metadata"].get("uid") == uid and uid not in self.pods:
            store.remove("pods", namespace, name)
