"""Issue 10, the plugin: `doctor`, `rbac`, the checks before `up`, true failures ending `up` while it waits,
and `down` with partial RBAC; real kubectl against the emulator, as the admin or a restricted identity."""

import json
import pathlib
import signal
import time

import yaml

from tests.e2e import (
    REPO_ROOT,
    UP_TIMEOUT,
    connect,
    environment_objects,
    error_lines,
    hello_project,
    http_get,
    preevy,
    start,
    stop,
    up_json,
)

DEFAULT_TEMPLATE = REPO_ROOT / "templates" / "default.yaml.njk"
DOCKERD_COMMAND = (
    '        command: ["dockerd", "--host=tcp://0.0.0.0:2375", "--host=unix:///var/run/docker.sock"]\n'
)
REFUSED, FAILURE, CLUSTER = 6, 1, 4


def custom_template(directory: pathlib.Path, old: str, new: str) -> pathlib.Path:
    text = DEFAULT_TEMPLATE.read_text()
    assert old in text
    path = directory / "custom.yaml.njk"
    path.write_text(text.replace(old, new))
    return path


def objects_of(kubesim, namespace: str, env_id: str) -> list[str]:
    return kubesim.kubectl(
        "get", "sts,configmaps", "-n", namespace, "-l", f"preevy.dev/env-id={env_id}", "-o", "name"
    ).stdout.split()


def test_doctor_prints_one_row_per_check_and_a_json_document(kubesim, namespace, env, tmp_path):
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "doc"]
    table = preevy("doctor", *flags, cwd=project, env=env, check=True)
    rows = {tuple(line.split()[:3]) for line in table.stdout.splitlines()[1:]}
    for row in [
        ("namespace", namespace, "ok"),
        ("permission", "statefulsets.apps", "ok"),
        ("permission", "pods/exec", "ok"),
        ("permission", "pods/portforward", "ok"),
        ("permission", "configmaps", "ok"),
        ("permission", "roles.rbac.authorization.k8s.io", "ok"),
    ]:
        assert row in rows, table.stdout
    assert table.stdout.splitlines()[0].split() == ["CHECK", "SUBJECT", "RESULT", "DETAIL", "FIX"]

    document = json.loads(preevy("doctor", *flags, "-o", "json", cwd=project, env=env, check=True).stdout)
    assert (document["apiVersion"], document["kind"], document["namespace"], document["ok"]) == (
        "kubectl-preevy/v1",
        "Doctor",
        namespace,
        True,
    )
    pod_security = [c for c in document["checks"] if c["check"] == "pod security"]
    assert [(c["result"], c["detail"]) for c in pod_security] == [("ok", "enforce=privileged")]
    assert objects_of(kubesim, namespace, "doc") == []  # doctor creates nothing


def test_up_in_a_terminating_namespace_names_it(kubesim, namespace, env, tmp_path):
    project = hello_project(tmp_path / "hello")
    hold = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hold\n  namespace: {namespace}\n  finalizers: [example.com/hold]\n"
    kubesim.kubectl("create", "-f", "-", input=hold)
    kubesim.kubectl("delete", "namespace", namespace, "--wait=false")
    try:
        up = preevy("up", "-n", namespace, "--id", "term", cwd=project, env=env)
        assert up.returncode == CLUSTER, up.stderr
        assert error_lines(up.stderr) == [
            f"error: namespace {namespace} is being deleted (Terminating): wait until `kubectl get namespace "
            f"{namespace}` says NotFound and create it again, or choose another with -n"
        ]
    finally:
        kubesim.kubectl(
            "patch",
            "configmap",
            "hold",
            "-n",
            namespace,
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
        )


def test_a_crash_looping_container_ends_up_at_once_with_its_last_log_line(kubesim, namespace, env, tmp_path):
    project = hello_project(tmp_path / "hello")
    crashing = custom_template(
        tmp_path, DOCKERD_COMMAND, '        command: ["sh", "-c", "echo no docker server here; exit 3"]\n'
    )
    flags = ["-n", namespace, "--id", "crash", "--kube-pod-template", str(crashing)]
    # a 10-minute --timeout: only a diagnosis ends this `up` within the test's 90 s
    up = preevy("up", *flags, "--timeout", "10m", cwd=project, env=env)
    assert up.returncode == FAILURE, up.stderr
    (line,) = error_lines(up.stderr)
    assert line.startswith("error: environment crash cannot start: container docker exited with code 3"), line
    assert "its last log line: no docker server here" in line
    assert f"remove it with `kubectl preevy down --id crash --namespace={namespace}`" in line
    preevy("down", *flags, cwd=project, env=env, check=True)


def ci_identity(kubesim, namespace: str, env: dict[str, str], rbac_yaml: str) -> dict[str, str]:
    """Apply what `kubectl preevy rbac` printed (as the admin) and return the environment of a user whose
    kubeconfig holds the ServiceAccount's token, and nothing else."""
    kubesim.kubectl("apply", "-f", "-", input=rbac_yaml)
    kubeconfig = kubesim.kubeconfig_for_service_account(namespace, "ci")
    return {**env, "KUBECONFIG": str(kubeconfig)}


def without_rule(rbac_yaml: str, resources: list[str]) -> str:
    documents = list(yaml.safe_load_all(rbac_yaml))
    (role,) = [d for d in documents if d["kind"] == "Role"]
    before = len(role["rules"])
    role["rules"] = [r for r in role["rules"] if r["resources"] != resources]
    assert len(role["rules"]) == before - 1
    return yaml.safe_dump_all(documents)


def test_the_minimal_role_runs_up_connect_and_down_and_one_rule_less_is_refused_by_name(
    kubesim, namespace, env, tmp_path
):
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "ci-flow"]
    rbac_yaml = preevy(
        "rbac", "-n", namespace, "--service-account", "ci", cwd=tmp_path, env=env, check=True
    ).stdout
    assert [d["kind"] for d in yaml.safe_load_all(rbac_yaml)] == ["ServiceAccount", "Role", "RoleBinding"]
    ci = ci_identity(kubesim, namespace, env, rbac_yaml)

    doctor = json.loads(preevy("doctor", *flags, "-o", "json", cwd=project, env=ci, check=True).stdout)
    results = {(c["check"], c["subject"]): c["result"] for c in doctor["checks"]}
    assert results[("permission", "statefulsets.apps")] == "ok"
    # a Role cannot grant cluster-scoped reads: those checks are skipped, not failed
    assert results[("permission", "storageclasses.storage.k8s.io")] == "skipped"
    assert results[("permission", "namespaces")] == "skipped"
    assert results[("pod security", namespace)] == "skipped"
    assert doctor["ok"] is True

    first = up_json(*flags, cwd=project, env=ci)
    served = connect(flags, project, ci, services=2)
    try:
        assert http_get(served.urls["web"]) == (project / "site" / "index.html").read_bytes()
    finally:
        assert stop(served.proc, signal.SIGINT) == 0
    preevy("down", *flags, cwd=project, env=ci, check=True)
    assert environment_objects(kubesim, namespace, f"preevy.dev/instance={first['statefulSet']}") == []

    kubesim.kubectl("apply", "-f", "-", input=without_rule(rbac_yaml, ["pods/exec", "pods/portforward"]))
    refused = preevy("doctor", *flags, cwd=project, env=ci)
    assert refused.returncode == REFUSED, refused.stderr
    failed = {line.split()[1] for line in refused.stdout.splitlines() if line.split()[2:3] == ["fail"]}
    assert failed == {"pods/exec", "pods/portforward"}
    assert f"create pods/exec in namespace {namespace}" in refused.stdout

    up = preevy("up", *flags, cwd=project, env=ci)
    assert up.returncode == REFUSED, up.stderr
    (line,) = error_lines(up.stderr)
    assert line.startswith(
        "error: `kubectl preevy up` needs permissions this identity lacks: create pods/exec"
    )
    assert "create pods/portforward" in line and f"`kubectl preevy rbac -n {namespace}`" in line
    assert objects_of(kubesim, namespace, "ci-flow") == []  # refused before anything was created


def test_down_with_partial_rbac_deletes_what_it_may_and_names_the_rest(kubesim, namespace, env, tmp_path):
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "partial"]
    rbac_yaml = preevy(
        "rbac", "-n", namespace, "--service-account", "ci", cwd=tmp_path, env=env, check=True
    ).stdout
    documents = list(yaml.safe_load_all(rbac_yaml))
    (role,) = [d for d in documents if d["kind"] == "Role"]
    (rbac_rule,) = [r for r in role["rules"] if r["apiGroups"] == ["rbac.authorization.k8s.io"]]
    rbac_rule["verbs"].remove("delete")
    ci = ci_identity(kubesim, namespace, env, yaml.safe_dump_all(documents))

    doctor = preevy("doctor", *flags, cwd=project, env=ci)
    assert doctor.returncode == REFUSED  # down would not remove everything...
    first = up_json(*flags, cwd=project, env=ci)  # ...but up needs no delete
    instance = first["statefulSet"]

    down = preevy("down", *flags, cwd=project, env=ci)
    assert down.returncode == REFUSED, down.stderr
    assert error_lines(down.stderr) == [
        "error: deleted what this identity may; the cluster refused: delete roles.rbac.authorization.k8s.io, "
        f"delete rolebindings.rbac.authorization.k8s.io: have an administrator grant `kubectl preevy rbac -n {namespace}`, "
        f"then run `kubectl preevy down --id partial --namespace={namespace} --force` again"
    ]
    left = environment_objects(kubesim, namespace, f"preevy.dev/instance={instance}")
    assert sorted(left) == [
        f"role.rbac.authorization.k8s.io/{instance}-role",
        f"rolebinding.rbac.authorization.k8s.io/{instance}-rolebind",
    ]
    assert (
        kubesim.kubectl(
            "get", "configmap", "-n", namespace, "-l", "preevy.dev/env-id=partial", "-o", "name"
        ).stdout
        == ""
    )  # the lock is released


PRIVILEGED = 'privileged (container "docker" must not set securityContext.privileged=true)'


def ci_with_role(kubesim, namespace: str, env: dict[str, str], tmp_path, edit=None) -> dict[str, str]:
    """The CI identity with the Role `kubectl preevy rbac` prints (edit(role) may change it first)."""
    rbac_yaml = preevy(
        "rbac", "-n", namespace, "--service-account", "ci", cwd=tmp_path, env=env, check=True
    ).stdout
    documents = list(yaml.safe_load_all(rbac_yaml))
    if edit:
        edit(next(d for d in documents if d["kind"] == "Role"))
    return ci_identity(kubesim, namespace, env, yaml.safe_dump_all(documents))


def test_a_baseline_namespace_refuses_the_privileged_pod_before_up_or_at_once(
    kubesim, namespace, env, tmp_path
):
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "psa"]
    kubesim.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=baseline")

    doctor = preevy("doctor", *flags, cwd=project, env=env)
    assert doctor.returncode == REFUSED, doctor.stderr
    (row,) = [line for line in doctor.stdout.splitlines() if line.startswith("pod security")]
    assert " fail " in row and PRIVILEGED in row and "kubectl preevy template --variant sysbox" in row

    up = preevy("up", *flags, cwd=project, env=env)  # the admin reads the namespace: refused before creating
    assert up.returncode == REFUSED, up.stderr
    (line,) = error_lines(up.stderr)
    assert f'namespace {namespace} enforces Pod Security "baseline"' in line and PRIVILEGED in line
    assert (
        f"kubectl label namespace {namespace} pod-security.kubernetes.io/enforce=privileged --overwrite"
        in line
    )
    assert objects_of(kubesim, namespace, "psa") == []

    # an identity that cannot read the namespace: the check is skipped, the StatefulSet's FailedCreate ends up
    ci = ci_with_role(kubesim, namespace, env, tmp_path)
    up = preevy("up", *flags, "--timeout", "10m", cwd=project, env=ci)
    assert up.returncode == REFUSED, up.stderr
    assert "the Pod Security check is skipped: cannot read namespace" in up.stderr
    assert (
        f'warning: the cluster warns: would violate PodSecurity "baseline:latest": {PRIVILEGED}' in up.stderr
    )
    (line,) = error_lines(up.stderr)
    assert line.startswith(
        f'error: environment psa cannot start: the namespace\'s Pod Security policy "baseline:latest" refuses '
        f"the pod: {PRIVILEGED}; use a template without privileged containers"
    ), line
    assert f"remove it with `kubectl preevy down --id psa --namespace={namespace}`" in line
    preevy("down", *flags, cwd=project, env=ci, check=True)
    assert objects_of(kubesim, namespace, "psa") == []


def test_a_warn_label_is_shown_and_up_goes_on(kubesim, namespace, env, tmp_path):
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "warned"]
    kubesim.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/warn=baseline")
    doctor = preevy("doctor", *flags, cwd=project, env=env, check=True)
    (row,) = [line for line in doctor.stdout.splitlines() if line.startswith("pod security")]
    assert " warn " in row and PRIVILEGED in row
    up = preevy("up", *flags, "--timeout", "60s", cwd=project, env=env, timeout=UP_TIMEOUT, check=True)
    assert (
        f'warning: the cluster warns: would violate PodSecurity "baseline:latest": {PRIVILEGED}' in up.stderr
    )
    preevy("down", *flags, cwd=project, env=env, check=True)


def test_a_storage_class_that_does_not_exist_is_refused_before_up_or_at_once(
    kubesim, namespace, env, tmp_path
):
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "nosc", "--kube-pod-storage-class", "gold"]
    doctor = preevy("doctor", *flags, cwd=project, env=env)
    assert doctor.returncode == REFUSED, doctor.stderr
    (row,) = [line for line in doctor.stdout.splitlines() if line.startswith("storage class")]
    assert "StorageClass gold does not exist" in row and "--kube-pod-storage-class NAME" in row

    up = preevy("up", *flags, cwd=project, env=env)
    assert up.returncode == REFUSED, up.stderr
    assert error_lines(up.stderr) == [
        "error: StorageClass gold does not exist: the volume claim would stay Pending: choose one with "
        "--kube-pod-storage-class NAME (see `kubectl get storageclass`)"
    ]
    assert objects_of(kubesim, namespace, "nosc") == []

    ci = ci_with_role(
        kubesim, namespace, env, tmp_path
    )  # cannot read StorageClasses: the claim's events tell
    up = preevy("up", *flags, "--timeout", "10m", cwd=project, env=ci)
    assert up.returncode == REFUSED, up.stderr
    assert "the StorageClass check is skipped" in up.stderr
    (line,) = error_lines(up.stderr)
    assert line.startswith("error: environment nosc cannot start: volume claim data-"), line
    assert 'stays Pending: storageclass.storage.k8s.io "gold" not found' in line
    assert "choose one with --kube-pod-storage-class NAME" in line
    preevy("down", *flags, cwd=project, env=ci, check=True)


def test_a_quota_without_headroom_is_refused_before_up_or_at_once(kubesim, namespace, env, tmp_path):
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "quota"]
    kubesim.kubectl("create", "quota", "small", "-n", namespace, "--hard=requests.memory=100Mi")
    up = preevy("up", *flags, cwd=project, env=env)
    assert up.returncode == REFUSED, up.stderr
    (line,) = error_lines(up.stderr)
    assert line.startswith(
        "error: ResourceQuota small refuses the environment: requests.memory: needs 256Mi, 100Mi of 100Mi left"
    ), line
    assert objects_of(kubesim, namespace, "quota") == []

    def no_quota_reads(role: dict) -> None:
        for rule in role["rules"]:
            if "resourcequotas" in rule["resources"]:
                rule["resources"].remove("resourcequotas")

    ci = ci_with_role(kubesim, namespace, env, tmp_path, no_quota_reads)
    up = preevy("up", *flags, "--timeout", "10m", cwd=project, env=ci)
    assert up.returncode == REFUSED, up.stderr
    assert "the quota check is skipped" in up.stderr
    (line,) = error_lines(up.stderr)
    assert line.startswith(
        "error: environment quota cannot start: a ResourceQuota refuses the pod or its volume claim: "
        "exceeded quota: small"
    ), line
    preevy("down", *flags, cwd=project, env=ci, check=True)


def test_an_image_that_cannot_be_pulled_ends_up_at_once(kubesim, namespace, env, tmp_path):
    project = hello_project(tmp_path / "hello")
    unknown = custom_template(
        tmp_path, "image: docker:24.0.7-dind-alpine3.18", "image: no-such-image-preevy:1"
    )
    flags = ["-n", namespace, "--id", "pull", "--kube-pod-template", str(unknown)]
    up = preevy("up", *flags, "--timeout", "10m", cwd=project, env=env)
    assert up.returncode == REFUSED, up.stderr
    (line,) = error_lines(up.stderr)
    assert line.startswith(
        "error: environment pull cannot start: container docker cannot pull image no-such-image-preevy:1: "
    ), line
    assert "imagePullSecrets" in line
    preevy("down", *flags, cwd=project, env=env, check=True)


def test_cluster_reads_granted_by_a_cluster_role_make_every_check_run(kubesim, namespace, env, tmp_path):
    project = hello_project(tmp_path / "hello")
    rbac_yaml = preevy(
        "rbac",
        "-n",
        namespace,
        "--service-account",
        "ci",
        "--cluster-reads",
        cwd=tmp_path,
        env=env,
        check=True,
    ).stdout
    documents = list(yaml.safe_load_all(rbac_yaml))
    (binding,) = [d["metadata"]["name"] for d in documents if d["kind"] == "ClusterRoleBinding"]
    try:
        ci = ci_identity(kubesim, namespace, env, rbac_yaml)
        doctor = json.loads(
            preevy(
                "doctor", "-n", namespace, "--id", "reads", "-o", "json", cwd=project, env=ci, check=True
            ).stdout
        )
        results = {c["check"]: c["result"] for c in doctor["checks"] if c["check"] != "permission"}
        assert results == {"namespace": "ok", "pod security": "ok", "storage class": "ok", "quota": "ok"}
        assert {c["result"] for c in doctor["checks"] if c["check"] == "permission"} == {"ok"}
    finally:
        kubesim.kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found")


def test_without_a_default_storage_class_the_claim_would_stay_pending(kubesim, namespace, env, tmp_path):
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "nodefault"]
    default = "storageclass.kubernetes.io/is-default-class"
    kubesim.kubectl("annotate", "storageclass", "standard", f"{default}=false", "--overwrite")
    try:
        doctor = preevy("doctor", *flags, cwd=project, env=env)
        assert doctor.returncode == REFUSED, doctor.stderr
        (row,) = [line for line in doctor.stdout.splitlines() if line.startswith("storage class")]
        assert "the cluster has no default StorageClass" in row and "--kube-pod-storage-class NAME" in row

        ci = ci_with_role(kubesim, namespace, env, tmp_path)
        up = preevy("up", *flags, "--timeout", "10m", cwd=project, env=ci)
        assert up.returncode == REFUSED, up.stderr
        (line,) = error_lines(up.stderr)
        assert (
            "stays Pending: no persistent volumes available for this claim and no storage class is set"
            in line
        )
        assert "choose one with --kube-pod-storage-class NAME" in line
        preevy("down", *flags, cwd=project, env=ci, check=True)
    finally:
        kubesim.kubectl("annotate", "storageclass", "standard", f"{default}=true", "--overwrite")


def test_an_oom_kill_while_waiting_ends_up_at_once(kubesim, namespace, env, tmp_path):
    project = hello_project(tmp_path / "hello")
    never_ready = custom_template(
        tmp_path,
        "          httpGet:\n            path: /_ping\n            port: 2375\n",
        '          exec:\n            command: ["false"]\n',
    )
    flags = ["-n", namespace, "--id", "oom", "--kube-pod-template", str(never_ready)]
    proc = start(["up", *flags, "--timeout", "10m"], project, env)
    try:
        pod = ""
        for _ in range(600):  # the pod's container runs (it never gets ready)
            found = kubesim.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout  # (only this pod)
            running = [
                p["metadata"]["name"]
                for p in json.loads(found)["items"]
                if any(
                    "running" in (s.get("state") or {}) for s in p["status"].get("containerStatuses") or []
                )
            ]
            if running:
                pod = running[0]
                break
            time.sleep(0.1)
        assert pod, "the pod never ran"
        kubesim.kill_container(namespace, pod, "docker", reason="OOMKilled")
        _, stderr = proc.communicate(timeout=60)
    finally:
        stop(proc)
    assert proc.returncode == FAILURE, stderr
    (line,) = error_lines(stderr)
    assert line.startswith(
        "error: environment oom cannot start: container docker was killed for exceeding its memory limit "
        "(OOMKilled, restart count 1); raise resources.limits.memory"
    ), line
    preevy("down", *flags, cwd=project, env=env, check=True)
