"""Issue 10, the plugin: `doctor`, `rbac`, the checks before `up`, true failures ending `up` while it waits,
and `down` with partial RBAC; real kubectl against the emulator, as the admin or a restricted identity."""

import json
import pathlib

from tests.e2e import REPO_ROOT, error_lines, hello_project, preevy

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
