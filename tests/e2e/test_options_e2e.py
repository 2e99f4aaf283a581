"""End to end: options, custom templates and profiles against the emulator, with the real kubectl and docker.

Every command runs the `./kubectl-preevy` executable in a subprocess, with its own XDG_CONFIG_HOME
(a "machine") and the emulator's kubeconfig.
"""

import copy
import json
import pathlib
import shutil
import subprocess

import pytest
import yaml

from tests.prerequisites import require_tool

REPO = pathlib.Path(__file__).resolve().parents[2]
EXECUTABLE = REPO / "kubectl-preevy"
UP_TIMEOUT = 240
QUICK_TIMEOUT = 60
CI_VARIABLES = (
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "CIRCLECI",
    "TRAVIS",
    "BUILD_DEFINITIONNAME",
    "JENKINS_URL",
    "BITBUCKET_BUILD_NUMBER",
    "BUILDKITE",
    "PREEVY_PROFILE",
    "KUBE_CONTEXT",
)
ALL_KINDS = "statefulsets,configmaps,serviceaccounts,roles,rolebindings,persistentvolumeclaims,pods"

# A custom template written for Preevy: its own labels, a ConfigMap, and a second (non docker-host) StatefulSet.
CUSTOM_TEMPLATE = """\
{# custom: labels of our own, and a database next to the Docker server #}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ id }}-extra
  labels:
    team: previews
data:
  storage-class: {{ storageClass | default('cluster-default') }}
  label-count: "{{ labels | length }}"
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ id }}
  namespace: {{ namespace }}
  labels:
    app.kubernetes.io/component: docker-host
    team: previews
spec:
  replicas: 1
  selector:
    matchLabels:
      {% for k, v in labels %}
      {{ k }}: {{ v }}
      {% endfor %}
  template:
    metadata:
      labels:
        team: previews
        {% for k, v in labels %}
        {{ k }}: {{ v }}
        {% endfor %}
    spec:
      containers:
      - name: docker
        image: docker:24.0.7-dind-alpine3.18
        securityContext:
          privileged: true
        # --tls=false: without TLS settings (the default template's daemon.json) dockerd sleeps 15 s at start
        command: ["dockerd", "--host=tcp://0.0.0.0:2375", "--host=unix:///var/run/docker.sock", "--tls=false"]
        readinessProbe:
          httpGet: {path: /_ping, port: 2375}
          periodSeconds: 1
        volumeMounts:
        - {name: data, subPath: docker, mountPath: /var/lib/docker}
        - {name: data, subPath: preevy, mountPath: /var/lib/preevy}
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: ["ReadWriteOnce"]
      resources:
        requests:
          storage: {{ storageSize }}Gi
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ id }}-db
  namespace: {{ namespace }}
  labels:
    team: previews
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {{ id }}-db
  template:
    metadata:
      labels:
        app: {{ id }}-db
    spec:
      containers:
      - name: db
        image: busybox:1.36
"""


# --- helpers --------------------------------------------------------------------------------------------


@pytest.fixture
def tools():
    require_tool("kubectl")
    require_tool("docker")


def make_project(directory: pathlib.Path, x_preevy: dict | None = None) -> pathlib.Path:
    """A compose project whose one service is built FROM scratch (no image to pull)."""
    (directory / "www").mkdir(parents=True)
    (directory / "www" / "index.html").write_text("hello\n")
    shutil.copy2(shutil.which("busybox") or "/bin/busybox", directory / "busybox")
    (directory / "Dockerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n"
        'CMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n'
    )
    model = {"services": {"web": {"build": ".", "ports": ["8080"]}}}
    if x_preevy is not None:
        model["x-preevy"] = x_preevy
    (directory / "compose.yaml").write_text(yaml.safe_dump(model))
    return directory


def preevy(
    kubesim,
    machine: pathlib.Path,
    *argv: str,
    cwd: pathlib.Path,
    env: dict | None = None,
    timeout: float = QUICK_TIMEOUT,
) -> subprocess.CompletedProcess:
    """Run ./kubectl-preevy on a "machine" (its own XDG_CONFIG_HOME)."""
    environ = {key: value for key, value in kubesim.env.items() if key not in CI_VARIABLES}
    environ["XDG_CONFIG_HOME"] = str(machine)
    environ["XDG_CACHE_HOME"] = str(machine / "cache")
    environ.update(env or {})
    return subprocess.run(
        [str(EXECUTABLE), *argv], cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout
    )


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    )
    return result


def one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def objects(kubesim, namespace: str, selector: str = "preevy.dev/instance") -> list[dict]:
    result = kubesim.kubectl("get", ALL_KINDS, "-n", namespace, "-l", selector, "-o", "json")
    return json.loads(result.stdout)["items"]


def names(items: list[dict]) -> set[tuple[str, str]]:
    return {(item["kind"], item["metadata"]["name"]) for item in items}


def second_context_kubeconfig(
    kubesim, path: pathlib.Path, namespace: str, *, alone: bool = False
) -> pathlib.Path:
    """A copy of the emulator's kubeconfig with one more context, `second`, whose namespace is given;
    alone: a kubeconfig holding only that context (its cluster and user are in the emulator's)."""
    config = yaml.safe_load(kubesim.kubeconfig.read_text())
    context = copy.deepcopy(config["contexts"][0])
    context["name"] = "second"
    context["context"]["namespace"] = namespace
    config["contexts"].append(context)
    if alone:
        config = {"apiVersion": "v1", "kind": "Config", "contexts": [context]}
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def other_namespace(kubesim, namespace):
    name = f"{namespace}-b"
    kubesim.kubectl("create", "namespace", name)
    yield name
    kubesim.kubectl(
        "delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False, timeout=30
    )


# --- custom template, x-preevy override, down --------------------------------------------------------------


def test_up_with_custom_template_and_x_preevy_then_down_removes_it_all(kubesim, namespace, tools, tmp_path):
    project = make_project(
        tmp_path / "shop",
        x_preevy={
            "drivers": {
                "kube-pod": {"namespace": namespace, "template": "preview.yaml.njk", "storage-size": 2}
            }
        },
    )
    (project / "preview.yaml.njk").write_text(CUSTOM_TEMPLATE)
    machine = tmp_path / "laptop"
    try:
        ok(preevy(kubesim, machine, "up", "--id", "custom-tpl", cwd=project, timeout=UP_TIMEOUT))
        created = objects(kubesim, namespace, "preevy.dev/env-id=custom-tpl")
        statefulsets = [o for o in created if o["kind"] == "StatefulSet"]
        assert len(statefulsets) == 2
        docker_host = next(
            o for o in statefulsets if o["metadata"]["labels"].get("app.kubernetes.io/component")
        )
        instance = docker_host["metadata"]["name"]
        assert {("StatefulSet", f"{instance}-db"), ("ConfigMap", f"{instance}-extra")} <= names(created)
        for obj in created:
            if obj["kind"] in ("StatefulSet", "ConfigMap"):
                labels = obj["metadata"]["labels"]
                assert labels["team"] == "previews"
                assert (
                    labels["preevy.dev/profile-id"] == "default" and labels["preevy.dev/instance"] == instance
                )
        configmap = next(o for o in created if o["kind"] == "ConfigMap")
        assert configmap["data"] == {"storage-class": "cluster-default", "label-count": "2"}
        # the claim made from volumeClaimTemplates carries the selector's labels (preevy.dev/instance), not env-id
        claims = [
            o
            for o in objects(kubesim, namespace, f"preevy.dev/instance={instance}")
            if o["kind"] == "PersistentVolumeClaim"
        ]
        assert [c["spec"]["resources"]["requests"]["storage"] for c in claims] == ["2Gi"]
        kubesim.kubectl("rollout", "status", f"statefulset/{instance}-db", "-n", namespace, "--timeout=60s")
        assert objects(kubesim, "default", "preevy.dev/env-id=custom-tpl") == []

        down = ok(preevy(kubesim, machine, "down", "--id", "custom-tpl", cwd=project, timeout=UP_TIMEOUT))
        assert down.stdout.strip() == "custom-tpl"
        assert objects(kubesim, namespace) == []
        assert kubesim.kubectl("get", "pods", "-n", namespace, "-o", "name").stdout == ""  # the -db pod too
    finally:
        preevy(kubesim, machine, "down", "--id", "custom-tpl", "--force", cwd=project, timeout=UP_TIMEOUT)


# --- kubectl's flags: --context, -n, KUBE_CONTEXT --------------------------------------------------------


def test_context_namespace_flag_and_env_precedence(kubesim, namespace, other_namespace, tools, tmp_path):
    project = make_project(tmp_path / "shop", x_preevy={"drivers": {"kube-pod": {"storage-size": 1}}})
    kubeconfig = second_context_kubeconfig(kubesim, tmp_path / "kubeconfig", other_namespace)
    machine = tmp_path / "laptop"
    # KUBECONFIG with two files, merged as kubectl merges them: the context in one, its cluster in the other
    second_only = second_context_kubeconfig(kubesim, tmp_path / "second-only", other_namespace, alone=True)
    env = {"KUBECONFIG": f"{second_only}:{kubesim.kubeconfig}"}

    def dry_run_namespace(*argv, extra_env=None):
        out = ok(
            preevy(
                kubesim,
                machine,
                "up",
                "--id",
                "ctx",
                "--dry-run",
                *argv,
                cwd=project,
                env={**env, **(extra_env or {})},
            )
        ).stdout
        return {doc["metadata"]["namespace"] for doc in yaml.safe_load_all(out) if doc}

    assert dry_run_namespace("--context", "second") == {other_namespace}  # the context's namespace
    assert dry_run_namespace("--context", "second", "-n", namespace) == {namespace}  # -n beats it
    assert dry_run_namespace(extra_env={"KUBE_CONTEXT": "second"}) == {other_namespace}
    assert dry_run_namespace("--kube-pod-context", "second", extra_env={"KUBE_CONTEXT": "nope"}) == {
        other_namespace
    }
    (project / "compose.yaml").write_text(
        yaml.safe_dump(
            {
                "services": {"web": {"build": ".", "ports": ["8080"]}},
                "x-preevy": {"drivers": {"kube-pod": {"namespace": namespace}}},
            }
        )
    )
    assert dry_run_namespace("--context", "second") == {namespace}  # x-preevy beats the context
    assert dry_run_namespace("--context", "second", "--kube-pod-namespace", other_namespace) == {
        other_namespace
    }
    assert (
        objects(kubesim, namespace) == [] and objects(kubesim, other_namespace) == []
    )  # dry runs apply nothing
    assert not (machine / "kubectl-preevy").exists()  # nor save a profile

    (project / "compose.yaml").write_text(
        yaml.safe_dump({"services": {"web": {"build": ".", "ports": ["8080"]}}})
    )
    try:
        ok(
            preevy(
                kubesim,
                machine,
                "up",
                "--id",
                "ctx",
                "--kubeconfig",
                str(kubeconfig),
                "--context",
                "second",
                cwd=project,
                timeout=UP_TIMEOUT,
            )
        )
        assert {o["kind"] for o in objects(kubesim, other_namespace)} >= {
            "StatefulSet",
            "ServiceAccount",
            "ConfigMap",
            "Role",
            "RoleBinding",
            "PersistentVolumeClaim",
        }
        assert objects(kubesim, namespace) == []
        ok(
            preevy(
                kubesim,
                machine,
                "down",
                "--id",
                "ctx",
                "--kubeconfig",
                str(kubeconfig),
                "--context",
                "second",
                cwd=project,
                timeout=UP_TIMEOUT,
            )
        )
        assert objects(kubesim, other_namespace) == []
    finally:
        preevy(
            kubesim,
            machine,
            "down",
            "--id",
            "ctx",
            "--force",
            "--context",
            "second",
            cwd=project,
            env=env,
            timeout=UP_TIMEOUT,
        )


# --- invalid templates and options: one clear error, nothing applied ---------------------------------------

NO_DOCKER_HOST = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ id }}-x\n"
OTHER_NAMESPACE = CUSTOM_TEMPLATE.replace(
    "  name: {{ id }}-extra\n", "  name: {{ id }}-extra\n  namespace: elsewhere\n"
)
NO_NAME = CUSTOM_TEMPLATE.replace("  name: {{ id }}-db\n", "")

INVALID_CASES = [
    ("template-no-docker-host", NO_DOCKER_HOST, {}, [], ["template ", "no StatefulSet labelled"]),
    ("template-other-namespace", OTHER_NAMESPACE, {}, [], ["document 1: ConfigMap", 'namespace "elsewhere"']),
    ("template-no-name", NO_NAME, {}, [], ["document 3: StatefulSet has no metadata.name"]),
    ("template-syntax", CUSTOM_TEMPLATE + "{% if %}\n", {}, [], ["template ", "line "]),
    (
        "template-undefined",
        CUSTOM_TEMPLATE.replace("{{ storageSize }}", "{{ storage_size }}"),
        {},
        [],
        ["'storage_size' is undefined"],
    ),
    (
        "template-bad-yaml",
        CUSTOM_TEMPLATE.replace("team: previews\ndata:", "team: [previews\ndata:"),
        {},
        [],
        ["document 1: invalid YAML"],
    ),
    (
        "x-preevy-storage-size",
        CUSTOM_TEMPLATE,
        {"storage-size": -1},
        [],
        ['invalid storage-size "-1" (from x-preevy in ', "must be a positive number of GiB"],
    ),
    (
        "x-preevy-namespace",
        CUSTOM_TEMPLATE,
        {"namespace": "Not_A_Namespace"},
        [],
        ['invalid namespace "Not_A_Namespace" (from x-preevy in '],
    ),
    ("x-preevy-unknown-key", CUSTOM_TEMPLATE, {"pod-template": "x"}, [], ['unknown option "pod-template"']),
    (
        "flag-storage-class",
        CUSTOM_TEMPLATE,
        {},
        ["--kube-pod-storage-class", "Fast!"],
        ['invalid storage-class "Fast!" (from flag --kube-pod-storage-class)'],
    ),
    (
        "flag-template-missing",
        CUSTOM_TEMPLATE,
        {},
        ["--kube-pod-template", "missing.yaml.njk"],
        ['invalid template "missing.yaml.njk" (from flag --kube-pod-template)', "does not exist"],
    ),
    (
        "bad-id",
        CUSTOM_TEMPLATE,
        {},
        ["--id", "Not/Normalized"],
        ['invalid --id "Not/Normalized"', "--id not-normalized"],
    ),
]


@pytest.mark.parametrize(
    "case,template_text,x_preevy_options,argv,fragments",
    INVALID_CASES,
    ids=[case[0] for case in INVALID_CASES],
)
def test_invalid_template_or_option_is_one_error_and_applies_nothing(
    kubesim, namespace, tools, tmp_path, case, template_text, x_preevy_options, argv, fragments
):
    project = make_project(
        tmp_path / "shop",
        x_preevy={
            "drivers": {
                "kube-pod": {"namespace": namespace, "template": "preview.yaml.njk", **x_preevy_options}
            }
        },
    )
    (project / "preview.yaml.njk").write_text(template_text)
    if "--id" not in argv:
        argv = ["--id", "invalid", *argv]
    result = preevy(kubesim, tmp_path / "laptop", "up", *argv, cwd=project)
    one_line_error(result, *fragments)
    assert result.returncode == 2
    assert objects(kubesim, namespace) == []
    assert objects(kubesim, "default") == []


def test_missing_namespace_is_an_error_before_anything_is_applied(kubesim, namespace, tools, tmp_path):
    project = make_project(tmp_path / "shop")
    result = preevy(
        kubesim, tmp_path / "laptop", "up", "--id", "nons", "-n", f"{namespace}-missing", cwd=project
    )
    one_line_error(result, f"{namespace}-missing")
    assert objects(kubesim, "default") == []


def test_invalid_cluster_profile_option_names_the_profile(kubesim, namespace, tools, tmp_path):
    kubesim.kubectl(
        "create",
        "configmap",
        "preevy-profile-broken",
        "-n",
        namespace,
        "--from-literal=profile-id=broken-00000",
        "--from-literal=storage-size=abc",
    )
    kubesim.kubectl(
        "label",
        "configmap",
        "preevy-profile-broken",
        "-n",
        namespace,
        "app.kubernetes.io/managed-by=kubectl-preevy",
        "preevy.dev/profile=broken",
    )
    project = make_project(tmp_path / "shop")
    result = preevy(
        kubesim, tmp_path / "ci", "up", "--id", "broken", "--profile", "broken", "-n", namespace, cwd=project
    )
    one_line_error(result, "invalid storage-size \"abc\" (from profile 'broken')")
    assert objects(kubesim, namespace) == []


# --- a profile kept in the cluster: the laptop and CI case ---------------------------------------------------


def test_cluster_profile_shared_by_laptop_and_ci(kubesim, namespace, tools, tmp_path):
    laptop, ci = tmp_path / "laptop", tmp_path / "ci"
    project = make_project(tmp_path / "shop")
    laptop_template = tmp_path / "laptop-files" / "preview.yaml.njk"
    laptop_template.parent.mkdir()
    laptop_template.write_text(CUSTOM_TEMPLATE)
    ok(
        preevy(
            kubesim,
            laptop,
            "init",
            "shared",
            "--store",
            "cluster",
            "-n",
            namespace,
            "--kube-pod-storage-size",
            "3",
            "--kube-pod-template",
            str(laptop_template),
            cwd=project,
        )
    )
    configmap = json.loads(
        kubesim.kubectl("get", "configmap", "preevy-profile-shared", "-n", namespace, "-o", "json").stdout
    )
    assert configmap["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "kubectl-preevy",
        "preevy.dev/profile": "shared",
    }
    profile_id = configmap["data"]["profile-id"]
    assert profile_id.startswith("shared-") and configmap["data"]["storage-size"] == "3"
    assert configmap["data"]["template.yaml.njk"] == CUSTOM_TEMPLATE
    assert not (ci / "kubectl-preevy").exists() and not (ci / "cache").exists()
    laptop_template.unlink()  # CI never sees the laptop's files: the template travels in the profile

    shown = json.loads(
        ok(
            preevy(kubesim, ci, "profile", "show", "shared", "-n", namespace, "-o", "json", cwd=project)
        ).stdout
    )
    assert (shown["id"], shown["store"], shown["options"]["storage-size"]) == (profile_id, "cluster", "3")
    listed = json.loads(
        ok(preevy(kubesim, ci, "profile", "ls", "-n", namespace, "-o", "json", cwd=project)).stdout
    )
    assert [(item["name"], item["store"]) for item in listed["items"]] == [("shared", "cluster")]

    try:
        ok(
            preevy(
                kubesim,
                ci,
                "up",
                "--profile",
                "shared",
                "-n",
                namespace,
                "--id",
                "pr-7",
                cwd=project,
                timeout=UP_TIMEOUT,
            )
        )
        created = objects(kubesim, namespace, f"preevy.dev/profile-id={profile_id},preevy.dev/env-id=pr-7")
        statefulsets = [o for o in created if o["kind"] == "StatefulSet"]
        assert len(statefulsets) == 2 and all(
            o["metadata"]["labels"]["team"] == "previews" for o in statefulsets
        )
        claims = [
            o
            for o in objects(kubesim, namespace, f"preevy.dev/profile-id={profile_id}")
            if o["kind"] == "PersistentVolumeClaim"
        ]
        assert [c["spec"]["resources"]["requests"]["storage"] for c in claims] == ["3Gi"]
        # the laptop finds and removes the environment CI made: same profile id, no file copied
        ok(
            preevy(
                kubesim,
                laptop,
                "down",
                "--profile",
                "shared",
                "-n",
                namespace,
                "--id",
                "pr-7",
                cwd=project,
                timeout=UP_TIMEOUT,
            )
        )
        assert objects(kubesim, namespace) == []
    finally:
        preevy(
            kubesim,
            ci,
            "down",
            "--profile",
            "shared",
            "-n",
            namespace,
            "--id",
            "pr-7",
            "--force",
            cwd=project,
            timeout=UP_TIMEOUT,
        )

    ok(
        preevy(
            kubesim,
            ci,
            "profile",
            "config",
            "set",
            "storage-size=4",
            "--profile",
            "shared",
            "-n",
            namespace,
            cwd=project,
        )
    )
    assert (
        json.loads(
            kubesim.kubectl("get", "configmap", "preevy-profile-shared", "-n", namespace, "-o", "json").stdout
        )["data"]["template.yaml.njk"]
        == CUSTOM_TEMPLATE
    )
    result = one_line_error(
        preevy(
            kubesim,
            ci,
            "profile",
            "config",
            "set",
            "storage-size=abc",
            "--profile",
            "shared",
            "-n",
            namespace,
            cwd=project,
        ),
        'invalid storage-size "abc"',
    )
    assert result
    assert (
        json.loads(
            ok(
                preevy(
                    kubesim, laptop, "profile", "show", "shared", "-n", namespace, "-o", "json", cwd=project
                )
            ).stdout
        )["options"]["storage-size"]
        == "4"
    )
    ok(preevy(kubesim, laptop, "profile", "rm", "shared", "-n", namespace, cwd=project))
    assert (
        kubesim.kubectl(
            "get", "configmap", "preevy-profile-shared", "-n", namespace, "--ignore-not-found", "-o", "name"
        ).stdout
        == ""
    )


def test_default_profile_in_the_cluster_is_found_without_any_local_profile(
    kubesim, namespace, tools, tmp_path
):
    laptop, ci = tmp_path / "laptop", tmp_path / "ci"
    project = make_project(tmp_path / "shop")
    ok(
        preevy(
            kubesim,
            laptop,
            "init",
            "--store",
            "cluster",
            "-n",
            namespace,
            "--kube-pod-storage-size",
            "1.5",
            cwd=project,
        )
    )
    out = ok(preevy(kubesim, ci, "up", "--id", "dflt", "-n", namespace, "--dry-run", cwd=project)).stdout
    statefulset = next(doc for doc in yaml.safe_load_all(out) if doc and doc["kind"] == "StatefulSet")
    assert statefulset["metadata"]["labels"]["preevy.dev/profile-id"] == "default"
    assert (
        statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1.5Gi"
    )
    assert not (ci / "kubectl-preevy" / "profiles" / "default.yaml").exists()
    one_line_error(
        preevy(kubesim, laptop, "init", "--store", "cluster", "-n", namespace, cwd=project),
        "profile 'default' already exists",
    )
