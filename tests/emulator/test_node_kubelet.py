"""The node half of kubesim (kubelet): pods as host processes in per-pod namespaces, driven by
the real kubectl."""

from __future__ import annotations

import json
import os
import shutil
import time

from tests.kubesim.launcher import Kubesim
from tests.prerequisites import require_tool

# ---------------------------------------------------------------- helpers


def _pod(sim, ns, name):
    res = sim.kubectl("get", "pod", name, "-n", ns, "-o", "json", check=False)
    return json.loads(res.stdout) if res.returncode == 0 else None


def _until(pred, timeout=30.0, what="condition", interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def _condition(pod, kind):
    for c in (pod or {}).get("status", {}).get("conditions", []):
        if c["type"] == kind:
            return c["status"]
    return None


def _container_status(pod, name):
    for s in (pod or {}).get("status", {}).get("containerStatuses", []):
        if s["name"] == name:
            return s
    return None


def _ready(sim, ns, name):
    return _condition(_pod(sim, ns, name), "Ready") == "True"


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _exec(sim, ns, pod, *command, container=None, check=True):
    args = ["exec", "-n", ns, pod]
    if container:
        args += ["-c", container]
    return sim.kubectl(*args, "--", *command, check=check)


def _apply(sim, ns, manifest):
    return sim.kubectl(
        "apply", "-n", ns, "-f", "-", input=json.dumps(manifest) if isinstance(manifest, dict) else manifest
    )


def pod_manifest(name, containers, volumes=(), **spec):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": list(containers),
            "volumes": list(volumes),
            **spec,
        },
    }


def container(name="main", command=("sleep", "3600"), **fields):
    out = {"name": name, "image": "busybox:1.36", **fields}
    if command is not None:
        out["command"] = list(command)
    return out


def pvc_manifest(name):
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def _mountinfo():
    with open("/proc/self/mountinfo") as f:
        return sorted(line.split(" ", 4)[4] for line in f)  # without the mount ids


STS_HELLO = """apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: hello
spec:
  serviceName: hello
  replicas: 1
  selector:
    matchLabels: {app: hello}
  template:
    metadata:
      labels: {app: hello}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: main
        image: busybox:1.36
        command: ["sh", "-c", "echo hello; echo to-stderr >&2; sleep 3600"]
"""


# ---------------------------------------------------------------- basics


def test_statefulset_pod_becomes_ready_and_logs(kubesim, namespace):
    _apply(kubesim, namespace, STS_HELLO)
    kubesim.kubectl("rollout", "status", "statefulset/hello", "-n", namespace, "--timeout=30s")
    pod = _pod(kubesim, namespace, "hello-0")
    assert pod["status"]["phase"] == "Running"
    for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready"):
        assert _condition(pod, kind) == "True", kind
    status = _container_status(pod, "main")
    assert status["ready"] and status["started"] and status["restartCount"] == 0
    assert "running" in status["state"] and status["image"] == "busybox:1.36"
    assert status["containerID"].startswith("kubesim://") and "@sha256:" in status["imageID"]
    assert (
        pod["status"]["podIP"].startswith("10.244.")
        and pod["status"]["hostIP"]
        and pod["status"]["startTime"]
    )
    logs = _until(lambda: kubesim.kubectl("logs", "-n", namespace, "hello-0").stdout, what="logs")
    assert logs.splitlines()[:2] == ["hello", "to-stderr"]


def test_pod_has_own_namespaces_and_env(kubesim, namespace):
    _apply(
        kubesim,
        namespace,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "envcm"}, "data": {"k": "from-cm"}},
    )
    _apply(
        kubesim,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "envsec"},
            "stringData": {"s": "from-secret"},
        },
    )
    env = [
        {"name": "PLAIN", "value": "plain"},
        {"name": "EXPANDED", "value": "x-$(PLAIN)-y"},
        {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "envcm", "key": "k"}}},
        {"name": "SEC", "valueFrom": {"secretKeyRef": {"name": "envsec", "key": "s"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]
    _apply(kubesim, namespace, pod_manifest("envpod", [container(env=env, workingDir="/tmp/work")]))
    _until(lambda: _ready(kubesim, namespace, "envpod"), what="envpod ready")
    out = _exec(
        kubesim,
        namespace,
        "envpod",
        "sh",
        "-c",
        "echo $PLAIN $EXPANDED $CM $SEC $POD_NAME $POD_NS; pwd; hostname; echo $$; "
        "ip -o link | cut -d: -f2 | tr -d ' \\n'; echo; touch /tmp/pod-private-file",
    ).stdout.splitlines()
    assert out[0] == f"plain x-plain-y from-cm from-secret envpod {namespace}"
    assert out[1] == "/tmp/work"
    assert out[2] == "envpod"  # own uts namespace
    assert int(out[3]) < 100  # own pid namespace: small pids
    assert out[4] == "lo"  # own network namespace: loopback only
    assert not os.path.exists("/tmp/pod-private-file") and not os.path.exists("/tmp/work")  # private /tmp


def test_container_without_known_program_runs_idle(kubesim, namespace):
    _apply(
        kubesim,
        namespace,
        pod_manifest(
            "idle", [container("a", command=None), container("b", command=("no-such-program-kubesim",))]
        ),
    )
    _until(lambda: _ready(kubesim, namespace, "idle"), what="idle pod ready")
    pod = _pod(kubesim, namespace, "idle")
    assert all("running" in s["state"] for s in pod["status"]["containerStatuses"])
    assert "not found on the host" in kubesim.kubectl("logs", "-n", namespace, "idle", "-c", "b").stdout
    assert _exec(kubesim, namespace, "idle", "true", container="a").returncode == 0


# ---------------------------------------------------------------- volumes


def test_volumes_are_mounted_inside_the_pod_only(kubesim, namespace):
    top = f"/kubesim-test-{namespace}"  # a missing directory right below /: created on the host (empty)
    try:
        _check_volumes(kubesim, namespace, top)
    finally:
        if os.path.isdir(top) and not os.listdir(top):
            os.rmdir(top)


def _check_volumes(kubesim, namespace, top):
    _apply(kubesim, namespace, pvc_manifest("claim"))
    _apply(
        kubesim,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg"},
            "data": {"daemon.json": '{"tls": false}', "other": "x"},
        },
    )
    _apply(
        kubesim,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "sec"},
            "stringData": {"password": "hunter2"},
        },
    )
    mounts = [
        {"name": "data", "mountPath": "/var/lib/kubesim-test-data", "subPath": "sub/dir"},
        {"name": "cfg", "mountPath": "/etc/kubesim-test-cfg"},
        {"name": "cfg", "mountPath": "/etc/kubesim-test-file.json", "subPath": "daemon.json"},
        {"name": "items", "mountPath": "/opt/kubesim-test-items", "readOnly": True},
        {"name": "sec", "mountPath": "/run/secrets/kubesim"},
        {"name": "scratch", "mountPath": top},
    ]
    volumes = [
        {"name": "data", "persistentVolumeClaim": {"claimName": "claim"}},
        {"name": "cfg", "configMap": {"name": "cfg"}},
        {
            "name": "items",
            "configMap": {
                "name": "cfg",
                "items": [{"key": "other", "path": "nested/renamed"}],
                "defaultMode": 0o600,
            },
        },
        {"name": "sec", "secret": {"secretName": "sec"}},
        {"name": "scratch", "emptyDir": {}},
    ]
    _apply(kubesim, namespace, pod_manifest("vols", [container(volumeMounts=mounts)], volumes))
    _until(lambda: _ready(kubesim, namespace, "vols"), what="vols ready")
    before = _mountinfo()
    out = _exec(
        kubesim,
        namespace,
        "vols",
        "sh",
        "-c",
        "set -e; echo written > /var/lib/kubesim-test-data/f; cat /etc/kubesim-test-cfg/daemon.json; echo;"
        " cat /etc/kubesim-test-file.json; echo; cat /opt/kubesim-test-items/nested/renamed; echo;"
        " stat -c %a /opt/kubesim-test-items/nested/renamed; cat /run/secrets/kubesim/password; echo;"
        " if touch /opt/kubesim-test-items/x 2>/dev/null; then echo writable; else echo read-only; fi;"
        f" echo e > {top}/e; ls /etc/kubesim-test-cfg | tr '\\n' ' '",
    ).stdout.splitlines()
    assert out == [
        '{"tls": false}',
        '{"tls": false}',
        "x",
        "600",
        "hunter2",
        "read-only",
        "daemon.json other ",
    ]
    # The PVC subPath is a directory of the claim's PV directory on the host ...
    pv = kubesim.state_dir / "volumes" / namespace / "claim" / "sub" / "dir"
    assert (pv / "f").read_text() == "written\n"
    # ... but nothing is mounted on the host, and the mount points were not created on it
    # (they live in private overlays), except the top-level directory.
    assert _mountinfo() == before
    for path in (
        "/var/lib/kubesim-test-data",
        "/etc/kubesim-test-cfg",
        "/etc/kubesim-test-file.json",
        "/opt/kubesim-test-items",
        "/run/secrets/kubesim",
    ):
        assert not os.path.exists(path), path
    assert os.listdir(top) == []
    # configMap changes reach the running pod
    _apply(
        kubesim,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg"},
            "data": {"daemon.json": '{"tls": true}', "other": "x"},
        },
    )
    _until(
        lambda: (
            "true" in _exec(kubesim, namespace, "vols", "cat", "/etc/kubesim-test-cfg/daemon.json").stdout
        ),
        what="configMap update",
    )
    uid = _pod(kubesim, namespace, "vols")["metadata"]["uid"]
    assert (kubesim.state_dir / "pods" / uid).is_dir()
    kubesim.kubectl("delete", "pod", "vols", "-n", namespace, "--wait=true", "--timeout=30s")
    assert not (kubesim.state_dir / "pods" / uid).exists()  # emptyDir, configMap files, logs: gone
    assert (pv / "f").exists()  # the claim's data stays


def test_pod_waits_for_missing_configmap(kubesim, namespace):
    _apply(
        kubesim,
        namespace,
        pod_manifest(
            "waits",
            [container(volumeMounts=[{"name": "c", "mountPath": "/c"}])],
            [{"name": "c", "configMap": {"name": "late"}}],
        ),
    )
    time.sleep(1)
    pod = _pod(kubesim, namespace, "waits")
    assert pod["status"]["phase"] == "Pending"
    assert _container_status(pod, "main")["state"]["waiting"]["reason"] == "ContainerCreating"
    _apply(
        kubesim,
        namespace,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}, "data": {"a": "b"}},
    )
    _until(lambda: _ready(kubesim, namespace, "waits"), what="pod ready once its configMap exists")
    # a pod waiting for something that never comes is deleted at once
    _apply(
        kubesim,
        namespace,
        pod_manifest(
            "stuck",
            [container(volumeMounts=[{"name": "c", "mountPath": "/c"}])],
            [{"name": "c", "persistentVolumeClaim": {"claimName": "never"}}],
        ),
    )
    time.sleep(0.5)
    assert _pod(kubesim, namespace, "stuck")["status"]["phase"] == "Pending"
    start = time.monotonic()
    kubesim.kubectl("delete", "pod", "stuck", "-n", namespace, "--wait=true", "--timeout=30s")
    assert time.monotonic() - start < 5


def test_host_network_pod(kubesim, namespace):
    _apply(kubesim, namespace, pod_manifest("hostnet", [container()], hostNetwork=True))
    _until(lambda: _ready(kubesim, namespace, "hostnet"), what="ready")
    links = _exec(kubesim, namespace, "hostnet", "ip", "-o", "link").stdout
    with open("/proc/net/dev") as f:
        host_links = [line.split(":")[0].strip() for line in f.readlines()[2:]]
    assert sorted(line.split(":")[1].strip().split("@")[0] for line in links.splitlines()) == sorted(
        host_links
    )
    assert _pod(kubesim, namespace, "hostnet")["status"]["podIP"] == "127.0.0.1"


def test_init_container_runs_first(kubesim, namespace):
    shared = [{"name": "shared", "mountPath": "/shared"}]
    _apply(
        kubesim,
        namespace,
        pod_manifest(
            "init",
            [container(command=("sh", "-c", "cat /shared/from-init; sleep 3600"), volumeMounts=shared)],
            [{"name": "shared", "emptyDir": {}}],
            initContainers=[
                container(
                    "setup", command=("sh", "-c", "echo prepared > /shared/from-init"), volumeMounts=shared
                )
            ],
        ),
    )
    _until(lambda: _ready(kubesim, namespace, "init"), what="init pod ready")
    pod = _pod(kubesim, namespace, "init")
    assert pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert _until(lambda: kubesim.kubectl("logs", "-n", namespace, "init").stdout) == "prepared\n"


# ---------------------------------------------------------------- probes, restarts, faults


def test_readiness_exec_probe(kubesim, namespace):
    probe = {"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1}
    _apply(kubesim, namespace, pod_manifest("probed", [container(readinessProbe=probe)]))
    _until(
        lambda: (_pod(kubesim, namespace, "probed") or {}).get("status", {}).get("phase") == "Running",
        what="running",
    )
    time.sleep(2.5)
    pod = _pod(kubesim, namespace, "probed")
    assert _condition(pod, "Ready") == "False" and _condition(pod, "ContainersReady") == "False"
    assert _container_status(pod, "main")["ready"] is False
    _exec(kubesim, namespace, "probed", "touch", "/tmp/ready")
    kubesim.kubectl("wait", "--for=condition=Ready", "pod/probed", "-n", namespace, "--timeout=10s")
    _exec(kubesim, namespace, "probed", "rm", "/tmp/ready")
    _until(
        lambda: not _ready(kubesim, namespace, "probed"),
        timeout=10,
        what="unready again (failureThreshold 3)",
    )


def test_http_and_tcp_probes(kubesim, namespace):
    server = container(
        command=(
            "sh",
            "-c",
            "mkdir -p /tmp/www && echo ok > /tmp/www/health && exec busybox httpd -f -p 8080 -h /tmp/www",
        ),
        readinessProbe={"httpGet": {"path": "/health", "port": "web"}, "periodSeconds": 1},
        livenessProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 1, "initialDelaySeconds": 1},
        ports=[{"name": "web", "containerPort": 8080}],
    )
    _apply(kubesim, namespace, pod_manifest("web", [server]))
    _until(lambda: _ready(kubesim, namespace, "web"), what="http probe success")
    _exec(kubesim, namespace, "web", "rm", "/tmp/www/health")  # 404: unready, still alive
    _until(lambda: not _ready(kubesim, namespace, "web"), timeout=10, what="http probe failure")
    assert _container_status(_pod(kubesim, namespace, "web"), "main")["restartCount"] == 0


def test_liveness_probe_restarts_container(kubesim, namespace):
    probe = {"exec": {"command": ["test", "-f", "/tmp/alive"]}, "periodSeconds": 1, "failureThreshold": 2}
    _apply(
        kubesim,
        namespace,
        pod_manifest(
            "live", [container(command=("sh", "-c", "touch /tmp/alive; sleep 3600"), livenessProbe=probe)]
        ),
    )
    _until(lambda: _ready(kubesim, namespace, "live"), what="ready")
    _exec(kubesim, namespace, "live", "rm", "/tmp/alive")
    status = _until(
        lambda: (
            (s := _container_status(_pod(kubesim, namespace, "live"), "main"))
            and s["restartCount"] >= 1
            and s
        ),
        timeout=20,
        what="liveness restart",
    )
    assert status["lastState"]["terminated"]["exitCode"] in (137, 143)


def test_crashing_container_restarts_with_backoff(kubesim, namespace):
    _apply(
        kubesim, namespace, pod_manifest("crash", [container(command=("sh", "-c", "echo crashing; exit 3"))])
    )
    status = _until(
        lambda: (
            (s := _container_status(_pod(kubesim, namespace, "crash"), "main"))
            and s["restartCount"] >= 2
            and s
        ),
        timeout=20,
        what="two restarts",
    )
    assert status["lastState"]["terminated"]["exitCode"] == 3
    assert status["lastState"]["terminated"]["reason"] == "Error"
    seen = _until(
        lambda: (
            (s := _container_status(_pod(kubesim, namespace, "crash"), "main"))
            and s["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff"
            and s
        ),
        timeout=10,
        what="back-off",
    )
    assert not seen["ready"]
    assert _pod(kubesim, namespace, "crash")["status"]["phase"] == "Running"
    assert _condition(_pod(kubesim, namespace, "crash"), "Ready") == "False"
    assert kubesim.kubectl("logs", "-n", namespace, "crash").stdout == "crashing\n"


def test_a_first_exit_restarts_at_once_and_the_next_ones_back_off(kubesim, namespace):
    """As the kubelet's doBackOff: no back-off entry before the first exit, so no CrashLoopBackOff then."""
    _apply(kubesim, namespace, pod_manifest("twice", [container(command=("sh", "-c", "sleep 5; exit 3"))]))
    restarted = _until(
        lambda: (
            (s := _container_status(_pod(kubesim, namespace, "twice"), "main"))
            and s["restartCount"] == 1
            and "running" in s["state"]
            and s
        ),
        timeout=20,
        what="a restart",
    )
    assert restarted["lastState"]["terminated"]["exitCode"] == 3
    events = kubesim.kubectl(
        "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=twice",
        "-o", "jsonpath={range .items[*]}{.reason}={.count} {end}",
    ).stdout.split()  # fmt: skip
    counts = {reason: int(count or 1) for reason, count in (e.split("=") for e in events)}
    assert "BackOff" not in counts and counts["Started"] == 2, events
    _until(
        lambda: (
            (s := _container_status(_pod(kubesim, namespace, "twice"), "main"))
            and s["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff"
        ),
        timeout=20,
        what="the second exit's back-off",
    )


def test_restart_policy_never_and_onfailure(kubesim, namespace):
    _apply(kubesim, namespace, pod_manifest("once", [container(command=("true",))], restartPolicy="Never"))
    _apply(
        kubesim,
        namespace,
        pod_manifest("fails", [container(command=("sh", "-c", "exit 7"))], restartPolicy="Never"),
    )
    _apply(
        kubesim,
        namespace,
        pod_manifest("retry", [container(command=("sh", "-c", "exit 1"))], restartPolicy="OnFailure"),
    )
    _until(lambda: _pod(kubesim, namespace, "once")["status"]["phase"] == "Succeeded", what="Succeeded")
    _until(lambda: _pod(kubesim, namespace, "fails")["status"]["phase"] == "Failed", what="Failed")
    state = _container_status(_pod(kubesim, namespace, "fails"), "main")["state"]
    assert (
        state["terminated"]["exitCode"] == 7
        and _container_status(_pod(kubesim, namespace, "fails"), "main")["restartCount"] == 0
    )
    _until(
        lambda: _container_status(_pod(kubesim, namespace, "retry"), "main")["restartCount"] >= 1,
        what="OnFailure restart",
    )


def test_kill_container_fault_restarts_it(kubesim, namespace):
    _apply(kubesim, namespace, pod_manifest("victim", [container()]))
    _until(lambda: _ready(kubesim, namespace, "victim"), what="ready")
    before = set(kubesim.pod_pids(namespace, "victim"))
    kubesim.kill_container(namespace, "victim", "main")
    status = _until(
        lambda: (
            (s := _container_status(_pod(kubesim, namespace, "victim"), "main"))
            and s["restartCount"] == 1
            and s["ready"]
            and s
        ),
        timeout=15,
        what="restarted and ready",
    )
    assert status["lastState"]["terminated"]["exitCode"] == 137
    after = set(kubesim.pod_pids(namespace, "victim"))
    assert before & after and before - after  # the sandbox stayed, the container's processes are new


def test_hold_unready_fault(kubesim, namespace):
    _apply(kubesim, namespace, pod_manifest("held", [container()]))
    _until(lambda: _ready(kubesim, namespace, "held"), what="ready")
    kubesim.hold_unready(namespace, "held")
    _until(lambda: not _ready(kubesim, namespace, "held"), timeout=5, what="held unready")
    time.sleep(0.5)
    pod = _pod(kubesim, namespace, "held")
    assert _condition(pod, "Ready") == "False" and pod["status"]["phase"] == "Running"
    kubesim.hold_unready(namespace, "held", hold=False)
    _until(lambda: _ready(kubesim, namespace, "held"), timeout=5, what="ready again")


def test_delete_kills_every_process_of_the_pod(kubesim, namespace):
    # A daemon that escapes its session and the shell's process group still dies with the pod.
    cmd = ("sh", "-c", "setsid sleep 1000 & (trap '' TERM; sleep 2000) & sleep 3000")
    _apply(
        kubesim, namespace, pod_manifest("doomed", [container(command=cmd)], terminationGracePeriodSeconds=1)
    )
    _until(lambda: _ready(kubesim, namespace, "doomed"), what="ready")
    pids = _until(
        lambda: (p := kubesim.pod_pids(namespace, "doomed")) and len(p) >= 6 and p, what="all processes"
    )
    assert all(_alive(p) for p in pids)
    start = time.monotonic()
    kubesim.kubectl("delete", "pod", "doomed", "-n", namespace, "--wait=true", "--timeout=30s")
    assert time.monotonic() - start < 10
    assert [p for p in pids if _alive(p)] == []
    assert _pod(kubesim, namespace, "doomed") is None


# ---------------------------------------------------------------- dockerd, as the product runs it

DIND_STS = """apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {name}
spec:
  serviceName: {name}
  replicas: 1
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: docker
        image: docker:24.0.7-dind-alpine3.18
        securityContext: {{privileged: true}}
        command: ["dockerd", "--host=tcp://0.0.0.0:2375", "--host=unix:///var/run/docker.sock"]
        readinessProbe:
          httpGet: {{path: /_ping, port: 2375}}
          periodSeconds: 1
          failureThreshold: 30
        volumeMounts:
        - {{name: docker-config, mountPath: /etc/docker}}
        - {{name: data, subPath: docker, mountPath: /var/lib/docker}}
        - {{name: data, subPath: preevy, mountPath: /var/lib/preevy}}
      volumes:
      - name: docker-config
        configMap: {{name: {name}-dc}}
  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}-dc
data:
  daemon.json: |
    {{"tls": false}}
"""

BUILD_AND_RUN = r"""
set -e
mkdir -p /tmp/ctx
cp /bin/busybox /tmp/ctx/busybox
printf 'FROM scratch\nCOPY busybox /busybox\nCMD ["/busybox", "httpd", "-f", "-p", "8080", "-h", "/"]\n' > /tmp/ctx/Dockerfile
DOCKER_BUILDKIT=0 docker build -q -t kubesim-web /tmp/ctx >/dev/null
docker run -d --stop-timeout 1 -p 8080:8080 kubesim-web >/dev/null
docker info --format '{{.Name}} {{.DockerRootDir}} {{.Containers}}'
"""


def test_dockerd_pods_ready_fast_and_isolated(kubesim, namespace):
    require_tool("dockerd")
    require_tool("docker")
    manifest = DIND_STS.format(name="dind-a") + "---\n" + DIND_STS.format(name="dind-b")
    start = time.monotonic()
    _apply(kubesim, namespace, manifest)
    for name in ("dind-a", "dind-b"):
        kubesim.kubectl("rollout", "status", f"statefulset/{name}", "-n", namespace, "--timeout=60s")
    elapsed = time.monotonic() - start
    print(f"two dockerd pods Ready {elapsed:.2f}s after kubectl apply")
    assert elapsed < 10
    for name in ("dind-a", "dind-b"):
        pod = f"{name}-0"
        out = _exec(kubesim, namespace, pod, "sh", "-c", BUILD_AND_RUN).stdout.split()
        assert out == [pod, "/var/lib/docker", "1"]  # its own daemon, one container each
        # both published 8080 in their own network namespace
        web = _exec(
            kubesim,
            namespace,
            pod,
            "sh",
            "-c",
            "wget -q -O /dev/null -S http://127.0.0.1:8080/ 2>&1 | head -1",
            check=False,
        ).stdout
        assert "HTTP/1." in web
        claim_dir = kubesim.state_dir / "volumes" / namespace / f"data-{pod}"
        assert (claim_dir / "docker" / "image").is_dir()  # /var/lib/docker is the claim's subPath
        assert (claim_dir / "preevy").is_dir()
    assert not os.path.exists("/var/lib/preevy") and not os.path.exists("/var/run/docker.sock")
    pids = kubesim.pod_pids(namespace, "dind-a-0")
    assert len(pids) >= 6  # wrapper, holder, container init, dockerd, containerd, shim, httpd
    kubesim.kubectl("delete", "pod", "dind-a-0", "-n", namespace, "--wait=true", "--timeout=30s")
    assert [p for p in pids if _alive(p)] == []
    _until(lambda: _ready(kubesim, namespace, "dind-a-0"), timeout=30, what="recreated dockerd pod ready")
    # the images survived on the claim
    assert (
        "kubesim-web"
        in _exec(kubesim, namespace, "dind-a-0", "docker", "images", "--format", "{{.Repository}}").stdout
    )


# ---------------------------------------------------------------- emulator shutdown


def test_emulator_sigterm_leaves_no_process_and_no_mount(tmp_path):
    require_tool("kubectl")
    mounts_before = _mountinfo()
    sim = Kubesim(tmp_path).start()
    try:
        manifests = [
            pod_manifest(
                "p1",
                [
                    container(
                        command=("sh", "-c", "(trap '' TERM; sleep 1000) & sleep 1000"),
                        volumeMounts=[{"name": "d", "mountPath": "/var/lib/kubesim-shutdown"}],
                    )
                ],
                [{"name": "d", "emptyDir": {}}],
            ),
            pod_manifest("p2", [container(command=None)]),
        ]
        for m in manifests:
            _apply(sim, "default", m)
        if shutil.which("dockerd"):
            _apply(sim, "default", DIND_STS.format(name="dind"))
        _until(lambda: _ready(sim, "default", "p1") and _ready(sim, "default", "p2"), what="pods ready")
        if shutil.which("dockerd"):
            _until(lambda: _ready(sim, "default", "dind-0"), what="dockerd ready")
        pids = set()
        for name in ["p1", "p2"] + (["dind-0"] if shutil.which("dockerd") else []):
            pids |= set(sim.pod_pids("default", name))
        assert len(pids) >= 6 and all(_alive(p) for p in pids)
        assert _mountinfo() == mounts_before
    finally:
        code = sim.stop()
    assert code == 0, sim.log()
    assert [p for p in pids if _alive(p)] == []
    assert _mountinfo() == mounts_before
    assert not (tmp_path / "state" / "pods").exists() or list((tmp_path / "state" / "pods").iterdir()) == []
