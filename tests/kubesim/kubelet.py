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
  volumeMounts and its own /proc, and a fresh tmpfs on /run (per instance: a restart starts
  clean). Its pid 1 is `kubesim-init` (forwards SIGTERM & co to the program, pid 2, and reaps).
  The root filesystem is the host's: the image is recorded in the status (image, a made-up
  imageID), never pulled. So `image: docker:24.0.7-dind-alpine3.18` with `command: [dockerd,
  ...]` runs the host's dockerd, isolated per pod; `docker` images see BusyBox applets first in
  their PATH, and an image that cannot be pulled is ErrImagePull/ImagePullBackOff (images.py).
  Pods without spec.nodeName (not scheduled: scheduler.py) are not run.
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
  downwardAPI, serviceAccountToken: a real token of the pod's ServiceAccount, bound to the pod), downwardAPI (files written under the pod's
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
* Restarts: restartPolicy Always/OnFailure/Never; the first exit restarts at once (the kubelet's
  doBackOff), later ones after a back-off of 1 s, 2 s, 4 s ... capped at 30 s (the kubelet's starts at
  10 s; reset after 60 s of running), shown as waiting CrashLoopBackOff with lastState terminated
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

Modules: this one (`Kubelet`: the store's pods to `Pod`s; `Pod`: volumes, sandboxes, init
containers, termination), `node_sandbox` (the holder process and container instances),
`node_container` (one container: instances, restarts, probes, events), `node_status` (the pod
status), `node_runtime` (exec argv, connections, log files, pids of a running pod),
`node_volumes`, `node_probes`, `node_holder` (the process inside the pod's namespaces), `podns`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pathlib
import shutil
import signal
import time

from . import images, node_apiproxy, node_volumes, podns
from .node_container import BACKOFF_CAP, BACKOFF_FIRST, GRACE_CAP, NORMAL, WARNING, Container
from .node_runtime import PodRuntime
from .node_sandbox import Holder
from .node_status import PodStatus
from .store import now

log = logging.getLogger("kubesim.kubelet")

STOP_GRACE = 1.0  # seconds: graceful part of Kubelet.stop()
MIN_DELETION = 0.5  # seconds: a deleted pod leaves the store no sooner (see Pod._leave_store)
TICK = 0.2  # status re-check period (unready faults)
RETRY = 0.5  # waiting for a missing configMap/secret/claim
MOUNT_REPORT_CAP = (
    122.0  # seconds: FailedMount is reported after 0.5, 1, 2, 4 ... s of waiting, then this often
)


class Pod(PodRuntime):
    """One pod on the node; also its PodRuntime (exec_argv, open_connection, log_path, host_pids)."""

    def __init__(self, kubelet: Kubelet, obj: dict) -> None:
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
        self.start_time = now()
        self.holder: Holder | None = None
        self.netns_fd: int | None = None
        self.api_proxy: node_apiproxy.ApiProxy | None = None
        self.initialized = not self.init_containers
        self.init_failed = False
        self.sandbox_up = False
        self.terminating = False
        self.gone = False  # removed from the store (by us or someone else)
        self.remove_when_done = False
        self.status = PodStatus(self)
        self._holder_up = asyncio.Event()
        self._instances = 0
        self.task: asyncio.Task | None = None
        self.term_task: asyncio.Task | None = None

    @property
    def all_containers(self) -> list[Container]:
        return self.init_containers + self.containers

    # ------------------------------------------------------------ used by the containers
    def changed(self) -> None:
        self.status.changed()

    def sync_status(self) -> None:
        self.status.sync()

    def event(self, reason: str, message: str, type_: str = NORMAL, field_path: str | None = None) -> None:
        """An Event from the kubelet about this pod (none while the emulator stops)."""
        if not self.kubelet.stopping:
            self.kubelet.cluster.record_event(self.obj, reason, message, type_, "kubelet", field_path)

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

    # ------------------------------------------------------------ preparing
    def begin(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"pod {self.key}")

    async def _prepare_until_ready(self) -> None:
        """_prepare until nothing is missing; the containers wait meanwhile, with FailedMount
        (or Failed) events as the real kubelet's retries report them."""
        waited, next_report = 0.0, 0.0
        while True:
            try:
                self._prepare()
                return
            except node_volumes.NotReadyYet as e:
                self._show_waiting(e.reason, str(e))
                if waited >= next_report:  # the real kubelet retries a mount with exponential back-off
                    self._report_not_ready(e)
                    next_report = min(max(RETRY, next_report * 2), next_report + MOUNT_REPORT_CAP)
                await asyncio.sleep(RETRY)
                waited += RETRY

    def _prepare(self) -> None:
        """Volumes, mounts, log dirs and the holder's spec file. Raises NotReadyYet."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.volumes = node_volumes.prepare_volumes(self.kubelet.cluster, self.obj, self.dir, self.pod_ip)
        self.source_index = {}
        sources: list[str] = []
        for c in self.all_containers:
            self._prepare_mounts(c)
            for src, _, _ in c.mounts:
                if src not in self.source_index:
                    self.source_index[src] = len(sources)
                    sources.append(src)
            (self.dir / "logs" / c.name).mkdir(parents=True, exist_ok=True)
        spec = {
            "hostname": self.name[:63],
            "sources": sources,
            "hostNetwork": bool(self.spec.get("hostNetwork")),
            "logdirs": {c.name: str(self.dir / "logs" / c.name) for c in self.all_containers},
        }
        (self.dir / "holder.json").write_text(json.dumps(spec))

    def _prepare_mounts(self, c: Container) -> None:
        try:
            env = node_volumes.container_env(
                self.kubelet.cluster.store, self.obj, c.spec, self.pod_ip, self.service_env()
            )
            c.mounts = node_volumes.container_mounts(c.spec, self.volumes, env)
        except node_volumes.NotReadyYet as e:
            e.container = c
            raise
        if images.is_docker_image(c.spec.get("image", "")):
            applets = self.kubelet.cluster.images.applet_dir()
            if applets is not None:  # the image's BusyBox userland, first in its PATH
                c.mounts.insert(0, (str(applets), images.APPLET_DIR, True))
            c.mounts.extend(self.kubelet.cluster.images.masks())  # nor more than the image has

    def service_env(self) -> dict[str, str]:
        return node_apiproxy.service_env(self.kubelet.cluster, bool(self.spec.get("hostNetwork")))

    def _report_not_ready(self, e: node_volumes.NotReadyYet) -> None:
        if e.mount_failure:
            self.event("FailedMount", e.mount_failure, WARNING)
        elif e.container is not None:
            e.container.event("Failed", f"Error: {e}", WARNING)

    def _show_waiting(self, reason: str, message: str) -> None:
        for c in self.all_containers:
            if "waiting" in c.state and c.state["waiting"] != {"reason": reason, "message": message}:
                c.wait(reason, message)

    def _clear_waiting_messages(self) -> None:
        for c in self.all_containers:
            if c.state.get("waiting", {}).get("message"):
                initializing = self.init_containers and not c.init
                c.wait("PodInitializing" if initializing else "ContainerCreating")

    # ------------------------------------------------------------ running
    async def _run(self) -> None:
        """Prepare, then run the pod in one sandbox after another (a new one when one dies)."""
        self.changed()
        await self._prepare_until_ready()
        self._clear_waiting_messages()
        failures = 0
        while not self.terminating:
            holder = Holder(self)
            self.holder = holder
            if not await self._start_sandbox(holder):
                failures += 1
                await asyncio.sleep(min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (failures - 1)))
                continue
            if failures:
                self._clear_waiting_messages()
            failures = 0
            if not await self._run_in_sandbox(holder):
                return

    async def _start_sandbox(self, holder: Holder) -> bool:
        try:
            await holder.start(self.dir / "holder.json")
            self.netns_fd = os.open(f"/proc/{holder.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            if not self.spec.get("hostNetwork"):
                self.api_proxy = await node_apiproxy.ApiProxy.start(
                    self.kubelet.netns, self.netns_fd, node_apiproxy.tls_port(self.kubelet.cluster)
                )
            return True
        except (OSError, RuntimeError, asyncio.TimeoutError) as e:
            log.error("pod %s: cannot start its sandbox: %s", self.key, e)
            self._show_waiting("ContainerCreating", f"pod sandbox: {e}")
            holder.sigkill()
            holder.close()
            await holder.wait_gone(5)
            return False

    async def _run_in_sandbox(self, holder: Holder) -> bool:
        """Init containers, then the containers, until the sandbox dies. False: run no other sandbox."""
        self.sandbox_up = True
        self._holder_up.set()
        log.info("pod %s (%s): sandbox up, holder pid %s", self.key, self.uid, holder.pid)
        self.changed()
        if not self.initialized and await self._run_init_containers() is False:
            return False
        if self.initialized:
            for c in self.containers:
                if c.task is None:
                    c.task = asyncio.create_task(c.run(), name=f"container {self.key}/{c.name}")
        await asyncio.shield(holder.dead)  # a cancelled wait must not mark the holder dead
        self._holder_up.clear()
        self._close_netns()
        if self.terminating:
            return False
        log.error("pod %s: its sandbox died; starting a new one", self.key)
        holder.close()
        await holder.wait_gone(5)
        await asyncio.sleep(1)
        return True

    async def _run_init_containers(self) -> bool | None:
        """True once all completed, False when one failed for good, None if the sandbox went away."""
        for c in self.init_containers:
            if c.done and c.exit_code == 0:
                continue
            ok = await c.run_to_completion()
            if ok is None:
                return None
            if not ok:
                self.init_failed = True
                self.changed()
                return False
        self.initialized = True
        self.changed()
        return True

    def _close_netns(self) -> None:
        if self.api_proxy is not None:
            self.api_proxy.close()
            self.api_proxy = None
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

    # ------------------------------------------------------------ terminating
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
        try:
            if self.holder is not None:
                await self._stop_processes(self.holder, min(max(grace, 0.0), GRACE_CAP))
            self._close_netns()
            shutil.rmtree(self.dir, ignore_errors=True)
        finally:
            self.kubelet.forget(self)
            if self.remove_when_done and not self.gone:
                await self._leave_store(began)
            log.info(
                "pod %s (%s): stopped in %.2fs%s",
                self.key,
                self.uid,
                time.monotonic() - began,
                ", removed" if self.remove_when_done else "",
            )

    async def _stop_processes(self, holder: Holder, wait: float) -> None:
        """SIGTERM to each running instance, up to `wait` seconds for them to exit, then SIGKILL
        to the pod's pid-namespace init (every process of the pod)."""
        if holder.alive:
            pending = [inst for inst in holder.instances.values() if not inst.exited.done()]
            for c in self.all_containers:
                if c.instance is not None and c.instance in pending:
                    c.event("Killing", f"Stopping container {c.name}")
            if pending and wait > 0:
                for inst in pending:
                    holder.kill(inst.id, signal.SIGTERM)
                await asyncio.wait([asyncio.shield(inst.exited) for inst in pending], timeout=wait)
        holder.sigkill()
        holder.close()
        await holder.wait_gone(10)

    async def _leave_store(self, began: float) -> None:
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


class Kubelet:
    def __init__(self, cluster) -> None:
        self.cluster = cluster
        self.pods: dict[str, Pod] = {}  # by uid
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

    async def kill_container(
        self, namespace: str, pod: str, container: str, reason: str | None = None
    ) -> bool:
        """SIGKILL the container's running instance; reason "OOMKilled" records it as the kernel's
        OOM killer's victim (terminated reason OOMKilled, exit code 137)."""
        p = self.runtime(namespace, pod)
        if p is None or p.holder is None:
            return False
        c = p.by_name.get(container)
        inst = c.instance if c is not None else None
        if inst is None or not inst.running:
            return False
        c.kill_reason = reason
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
                except Exception:
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
                asyncio.get_running_loop().call_soon(
                    self._remove_unknown, meta["namespace"], meta["name"], uid
                )
            return
        if pod is None:
            if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return
            if not (obj.get("spec") or {}).get("nodeName"):
                return  # not scheduled (yet): not this node's
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
