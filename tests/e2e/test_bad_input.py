"""Bad input and faults: one `error:` line saying what to do, the right exit code, no traceback, nothing
created in the cluster, no file written or changed (the project, the profile store).

The corpus shares one emulator and one namespace: every case fails, so nothing may ever appear there.
"""

import dataclasses
import hashlib
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable

import pytest

from tests.e2e import REPO_ROOT, environment_objects, error_lines, hello_project, preevy, user_env
from tests.kubesim.launcher import Kubesim

USAGE, MISSING_TOOL, CLUSTER, TIMEOUT, REFUSED, FAILURE = 2, 3, 4, 5, 6, 1
TEMPLATE = REPO_ROOT / "templates" / "default.yaml.njk"
DOCKERD = '"dockerd", "--host=tcp://0.0.0.0:2375", "--host=unix:///var/run/docker.sock"'
# what an error line must ask the user to do
ACTION = re.compile(
    r"\b(run|pass|fix|use|check|create|choose|install|see|ask|log in|remove|keep|free|select|let|add|make|"
    r"get|inspect|change|set|delete|retry|turn|must)\b"
)


def failed(result: subprocess.CompletedProcess, exit_code: int, *phrases: str) -> str:
    """The one error line of a failed run, checked for exit code, phrases, an action, no traceback."""
    lines = error_lines(result.stderr)
    assert result.returncode == exit_code, result.stderr
    assert len(lines) == 1, result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    assert ACTION.search(lines[0]), f"no action in: {lines[0]}"
    assert "Traceback" not in result.stderr
    return lines[0]


def nothing_created(kubesim, env_id: str) -> None:
    result = kubesim.kubectl(
        "get", "all,cm,sa,role,rolebinding,pvc", "-A", "-l", f"preevy.dev/env-id={env_id}", "-o", "name"
    )
    assert result.stdout.split() == []


def path_with(tmp_path: pathlib.Path, *tools: str) -> str:
    """A PATH holding only these programs (and python3, which runs kubectl-preevy)."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for tool in ("python3", *tools):
        target = sys.executable if tool == "python3" else shutil.which(tool)
        (directory / tool).symlink_to(os.path.realpath(target))
    return str(directory)


def snapshot(*roots: pathlib.Path) -> dict[str, str]:
    """Every file under the roots (path -> digest of its bytes), to assert nothing was written."""
    found = {}
    for root in roots:
        for path in sorted(root.rglob("*")) if root.exists() else []:
            if path.is_file() and not path.is_symlink():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            elif path.is_dir():
                found[str(path)] = "dir"
    return found


# --- the corpus ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Context:
    """What a case may set up: its own directory, the shared project and namespace, the emulator."""

    kubesim: Kubesim
    namespace: str
    project: pathlib.Path
    tmp: pathlib.Path
    env: dict[str, str]
    cwd: pathlib.Path

    def template(self, *change: str) -> str:
        """The default template with one replacement, written to the case's directory."""
        text = TEMPLATE.read_text()
        assert change[0] in text, change[0]
        path = self.tmp / "template.yaml.njk"
        path.write_text(text.replace(change[0], change[1], 1))
        return str(path)

    def compose_dir(self, text: str, name: str = "compose.yaml") -> str:
        """The case runs in a directory of its own holding this compose file."""
        self.cwd = self.tmp / "project"
        self.cwd.mkdir(exist_ok=True)
        (self.cwd / name).write_text(text)
        return ""

    def kubeconfig(self, text: str) -> str:
        path = self.tmp / "kubeconfig"
        path.write_text(text)
        return str(path)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]  # "{ns}" is the shared namespace, "{t}" what setup returned
    code: int
    phrase: str = ""
    setup: Callable[[Context], str] | None = None
    env: dict[str, str] | None = None  # "{t}" is what setup returned
    id_valid: bool = True  # whether the case's --id can label objects (checked in every namespace)


def closed_port_kubeconfig(ctx: Context) -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the case runs kubectl
    return ctx.kubeconfig(
        f"""apiVersion: v1
kind: Config
clusters: [{{name: gone, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
contexts: [{{name: gone, context: {{cluster: gone, user: gone}}}}]
users: [{{name: gone, user: {{token: x}}}}]
current-context: gone
"""
    )


def no_current_context(ctx: Context) -> str:
    text = pathlib.Path(ctx.kubesim.kubeconfig).read_text()
    return ctx.kubeconfig(re.sub(r"(?m)^current-context:.*$", "", text))


def local_profile(text: str) -> Callable[[Context], str]:
    def setup(ctx: Context) -> str:
        directory = pathlib.Path(ctx.env["XDG_CONFIG_HOME"]) / "kubectl-preevy" / "profiles"
        directory.mkdir(parents=True)
        (directory / "team.yaml").write_text(text)
        return ""

    return setup


def fault(
    verb: str, resource: str, code: int, count: int, message: str | None = None, dry_run: bool | None = None
) -> Callable[[Context], str]:
    def setup(ctx: Context) -> str:
        ctx.kubesim.fault_requests(verb, resource, code, count, message=message, dry_run=dry_run)
        return ""

    return setup


def template_case(name: str, change: tuple[str, str], code: int, phrase: str) -> Case:
    return Case(
        name,
        ("up", "--id", name, "-n", "{ns}", "--kube-pod-template", "{t}"),
        code,
        phrase,
        setup=lambda ctx: ctx.template(*change),
    )


def up(name: str, *flags: str) -> tuple[str, ...]:
    return ("up", "--id", name, "-n", "{ns}", *flags)


CORPUS: list[Case] = [
    # -- flags and commands (argparse)
    Case("no-command", (), USAGE, "required"),
    Case("unknown-command", ("deploy",), USAGE, "invalid choice"),
    Case("unknown-flag", (*up("x"), "--colour"), USAGE, "unrecognized arguments: --colour"),
    Case("bad-output", (*up("x"), "-o", "xml"), USAGE, "invalid choice: 'xml'"),
    Case("bad-variant", ("template", "--variant", "nope"), USAGE, "invalid choice: 'nope'"),
    Case("profile-no-subcommand", ("profile",), USAGE, "required"),
    Case("timeout-no-value", ("down", "--id", "x", "--timeout"), USAGE, "expected one argument"),
    Case("init-bad-name", ("init", "Bad_Name"), USAGE, 'invalid profile name "Bad_Name"'),
    Case(
        "init-bad-profile-id",
        ("init", "team", "--profile-id", "Bad id"),
        USAGE,
        'invalid profile id "Bad id"',
    ),
    Case(
        "config-set-no-equals",
        ("profile", "config", "set", "storage-size"),
        USAGE,
        'invalid setting "storage-size"',
    ),
    Case("config-set-unknown-key", ("profile", "config", "set", "colour=blue"), USAGE, "colour"),
    # -- durations: kubectl-style, bounded
    Case("timeout-word", up("t1", "--timeout", "soon"), USAGE, "invalid --timeout 'soon'"),
    Case("timeout-zero", up("t2", "--timeout", "0"), USAGE, "invalid --timeout '0'"),
    Case("timeout-negative", up("t3", "--timeout=-5s"), USAGE, "invalid --timeout '-5s'"),
    Case("timeout-over-a-day", up("t4", "--timeout", "25h"), USAGE, "at most 24h"),
    Case("timeout-exponent", up("t5", "--timeout", "1e9"), USAGE, "invalid --timeout '1e9'"),
    Case("timeout-unit", up("t6", "--timeout", "5x"), USAGE, "invalid --timeout '5x'"),
    Case("timeout-empty", up("t7", "--timeout="), USAGE, "invalid --timeout ''"),
    Case(
        "down-timeout-huge",
        ("down", "--id", "t8", "-n", "{ns}", "--timeout", "100000h"),
        USAGE,
        "at most 24h",
    ),
    # -- environment ids
    Case("id-upper-underscore", ("up", "--id", "Bad_ID"), USAGE, 'invalid --id "Bad_ID"', id_valid=False),
    Case("id-newline", ("up", "--id", "a\nb"), USAGE, 'invalid --id "a\\nb"', id_valid=False),
    Case("id-empty", ("up", "--id", ""), USAGE, 'invalid --id ""', id_valid=False),
    Case("id-dash", ("up", "--id=-x"), USAGE, 'invalid --id "-x"', id_valid=False),
    Case("id-space", ("up", "--id", "a b"), USAGE, 'invalid --id "a b"', id_valid=False),
    Case("id-digit-first", ("up", "--id", "1abc"), USAGE, 'invalid --id "1abc"', id_valid=False),
    Case("down-id-invalid", ("down", "--id", "UP"), USAGE, 'invalid --id "UP"', id_valid=False),
    Case("connect-id-invalid", ("connect", "--id", "bad!"), USAGE, 'invalid --id "bad!"', id_valid=False),
    # -- storage size: a positive number of GiB that renders as a valid quantity
    *[
        Case(
            f"size-{label}",
            up(f"size-{label}", f"--kube-pod-storage-size={value}"),
            USAGE,
            "invalid storage-size",
        )
        for label, value in (
            ("negative", "-1"),
            ("zero", "0"),
            ("word", "abc"),
            ("unit", "5Gi"),
            ("nan", "nan"),
            ("inf", "inf"),
            ("tiny", "0.0000001"),
            ("exponent", "1e-7"),
            ("huge", "1e300"),
            ("too-big", "2000000"),
            ("empty", ""),
        )
    ],
    # -- other option values
    Case("namespace-invalid", ("up", "--id", "ns1", "-n", "Bad_NS"), USAGE, 'invalid namespace "Bad_NS"'),
    Case("namespace-too-long", ("up", "--id", "ns2", "-n", "a" * 64), USAGE, "invalid namespace"),
    Case(
        "storage-class-invalid",
        up("sc1", "--kube-pod-storage-class", "Fast SSD"),
        USAGE,
        'invalid storage-class "Fast SSD"',
    ),
    Case(
        "template-missing",
        up("tm1", "--kube-pod-template", "/does/not/exist.njk"),
        USAGE,
        "/does/not/exist.njk",
    ),
    Case(
        "template-directory",
        up("tm2", "--kube-pod-template", "{t}"),
        USAGE,
        "",
        setup=lambda ctx: str(ctx.tmp),
    ),
    Case(
        "server-side-apply-word",
        up("ssa1"),
        USAGE,
        "server-side-apply",
        setup=lambda ctx: ctx.compose_dir(
            "services:\n  web:\n    image: nginx\nx-preevy:\n  drivers:\n    kube-pod:\n      server-side-apply: maybe\n"
        ),
    ),
    # -- kubeconfig and context
    Case("kubeconfig-flag-missing", up("kc1", "--kubeconfig", "/does/not/exist"), USAGE, "/does/not/exist"),
    Case(
        "kubeconfig-env-missing",
        up("kc2"),
        CLUSTER,
        "/does/not/exist (from $KUBECONFIG) does not exist",
        env={"KUBECONFIG": "/does/not/exist"},
    ),
    Case(
        "kubeconfig-broken",
        up("kc3"),
        CLUSTER,
        "cannot be read",
        setup=lambda ctx: ctx.kubeconfig("clusters: [\n"),
        env={"KUBECONFIG": "{t}"},
    ),
    Case("context-missing", up("kc4", "--context", "nope"), CLUSTER, "context nope is not in the kubeconfig"),
    Case("context-env-missing", up("kc5"), CLUSTER, "context nope", env={"KUBE_CONTEXT": "nope"}),
    Case(
        "no-current-context",
        up("kc6"),
        CLUSTER,
        "selects no cluster",
        setup=no_current_context,
        env={"KUBECONFIG": "{t}"},
    ),
    # -- an unreachable cluster, for every command
    *[
        Case(
            f"unreachable-{command}",
            (command, "--id", f"un-{command}", "-n", "x"),
            CLUSTER,
            "cannot reach the cluster",
            setup=closed_port_kubeconfig,
            env={"KUBECONFIG": "{t}"},
        )
        for command in ("up", "down", "connect")
    ],
    Case(
        "unreachable-ls",
        ("ls", "-n", "x"),
        CLUSTER,
        "cannot reach the cluster",
        setup=closed_port_kubeconfig,
        env={"KUBECONFIG": "{t}"},
    ),
    # -- a missing namespace, for every command: one line, exit 4, never a hang
    Case(
        "ns-missing-up", ("up", "--id", "nm1", "-n", "nope-ns"), CLUSTER, "namespace nope-ns does not exist"
    ),
    Case(
        "ns-missing-up-dry-run",
        ("up", "--id", "nm2", "-n", "nope-ns", "--dry-run"),
        CLUSTER,
        "namespace nope-ns does not exist",
    ),
    Case(
        "ns-missing-down",
        ("down", "--id", "nm3", "-n", "nope-ns"),
        CLUSTER,
        "namespace nope-ns does not exist",
    ),
    Case(
        "ns-missing-down-force",
        ("down", "--id", "nm4", "-n", "nope-ns", "--force", "--timeout", "5s"),
        CLUSTER,
        "namespace nope-ns",
    ),
    Case("ns-missing-ls", ("ls", "-n", "nope-ns"), CLUSTER, "namespace nope-ns does not exist"),
    Case(
        "ns-missing-connect",
        ("connect", "--id", "nm5", "-n", "nope-ns"),
        CLUSTER,
        "namespace nope-ns does not exist",
    ),
    Case(
        "ns-missing-init-cluster",
        ("init", "team", "--store", "cluster", "-n", "nope-ns"),
        CLUSTER,
        "namespace nope-ns does not exist",
    ),
    # -- the compose project
    Case(
        "no-compose-file",
        ("up", "--id", "cp1"),
        USAGE,
        "no compose file in",
        setup=lambda ctx: ctx.compose_dir("", name="README"),
    ),
    Case(
        "compose-unknown-key",
        ("up", "--id", "cp2"),
        USAGE,
        "colour",
        setup=lambda ctx: ctx.compose_dir("services:\n  web:\n    image: nginx\n    colour: blue\n"),
    ),
    Case(
        "compose-not-yaml",
        ("up", "--id", "cp3"),
        USAGE,
        "invalid compose project",
        setup=lambda ctx: ctx.compose_dir("services: [\n"),
    ),
    Case(
        "compose-two-files",
        ("up", "--id", "cp4"),
        USAGE,
        "several compose files",
        setup=lambda ctx: (
            ctx.compose_dir("services: {web: {image: nginx}}\n")
            + ctx.compose_dir("services: {web: {image: nginx}}\n", "docker-compose.yml")
        ),
    ),
    Case("compose-file-flag-missing", ("up", "--id", "cp5", "-f", "nope.yaml"), USAGE, "nope.yaml"),
    Case(
        "x-preevy-unknown-option",
        ("up", "--id", "cp6"),
        USAGE,
        'unknown option "colour"',
        setup=lambda ctx: ctx.compose_dir(
            "services: {web: {image: nginx}}\nx-preevy:\n  drivers:\n    kube-pod:\n      colour: blue\n"
        ),
    ),
    Case(
        "x-preevy-not-mapping",
        ("up", "--id", "cp7"),
        USAGE,
        "must be a mapping",
        setup=lambda ctx: ctx.compose_dir(
            "services: {web: {image: nginx}}\nx-preevy:\n  drivers: [kube-pod]\n"
        ),
    ),
    Case(
        "x-preevy-bad-size",
        ("up", "--id", "cp8"),
        USAGE,
        "invalid storage-size",
        setup=lambda ctx: ctx.compose_dir(
            "services: {web: {image: nginx}}\nx-preevy:\n  drivers:\n    kube-pod:\n      storage-size: -3\n"
        ),
    ),
    # -- profiles
    Case(
        "profile-not-found",
        up("pr1", "--profile", "nope"),
        USAGE,
        "profile 'nope' not found on this machine nor in namespace {ns} of the cluster: ",
    ),
    Case(
        "profile-env-not-found", up("pr2"), USAGE, "profile 'nope' not found", env={"PREEVY_PROFILE": "nope"}
    ),
    Case("profile-bad-name", up("pr3", "--profile", "Bad_Name"), USAGE, 'invalid profile name "Bad_Name"'),
    Case(
        "profile-file-not-yaml",
        up("pr4", "--profile", "team"),
        FAILURE,
        "is not valid",
        setup=local_profile("id: [\n"),
    ),
    Case(
        "profile-file-no-id",
        up("pr5", "--profile", "team"),
        FAILURE,
        "no id",
        setup=local_profile("options: {}\n"),
    ),
    Case(
        "profile-file-bad-id",
        up("pr6", "--profile", "team"),
        FAILURE,
        "invalid id 'Bad Id'",
        setup=local_profile("id: Bad Id\n"),
    ),
    Case(
        "profile-file-bad-option",
        up("pr7", "--profile", "team"),
        USAGE,
        "invalid storage-size",
        setup=local_profile("id: team\noptions: {storage-size: lots}\n"),
    ),
    # -- templates that fail before the cluster is asked
    template_case("tpl-undefined", ("{{ storageSize }}Gi", "{{ storageSise }}Gi"), USAGE, "storageSise"),
    template_case("tpl-syntax", ("{% endfor %}", "{% endfour %}"), USAGE, "fix the template syntax"),
    template_case("tpl-yaml", ("kind: ConfigMap", "kind: ConfigMap\n  - oops: ["), USAGE, "invalid YAML"),
    template_case(
        "tpl-no-docker-host",
        ("component: docker-host\nspec", "component: other\nspec"),
        USAGE,
        "no StatefulSet labelled",
    ),
    template_case(
        "tpl-other-namespace",
        ("  namespace: {{ namespace }}\ndata", "  namespace: elsewhere\ndata"),
        USAGE,
        'is in namespace "elsewhere"',
    ),
    template_case("tpl-cluster-scoped", ("kind: ConfigMap", "kind: Namespace"), USAGE, "cluster-scoped"),
    template_case(
        "tpl-no-name", ("  name: {{ id }}-dc\n", "  generateName: x-\n"), USAGE, "has no metadata.name"
    ),
    template_case(
        "tpl-not-object",
        (
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role",
            "---\n- a list\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role",
        ),
        USAGE,
        "not a Kubernetes object",
    ),
    template_case(
        "tpl-no-containers", ("      containers:\n", "      containerz:\n"), USAGE, "has no containers"
    ),
    # -- templates the API server refuses in a dry run: nothing is created
    template_case(
        "dry-unknown-field",
        ("  replicas: 1\n", "  replicas: 1\n  replicaz: 1\n"),
        USAGE,
        ".spec.replicaz: field not declared in schema",
    ),
    template_case(
        "dry-unknown-container-field",
        ("        securityContext:\n", "        colour: blue\n        securityContext:\n"),
        USAGE,
        "colour",
    ),
    template_case("dry-unknown-kind", ("kind: Role\n", "kind: Roll\n"), USAGE, "nothing was created"),
    template_case(
        "dry-unknown-api-version",
        (
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n",
            "apiVersion: rbac.authorization.k8s.io/v9\nkind: Role\n",
        ),
        USAGE,
        "nothing was created",
    ),
    template_case("dry-bad-cpu", ("cpu: 100m", "cpu: lots"), USAGE, "quantities must match"),
    template_case(
        "dry-bad-storage-unit", ("{{ storageSize }}Gi", "{{ storageSize }}Gx"), USAGE, "quantities must match"
    ),
    template_case(
        "dry-negative-replicas",
        ("  replicas: 1\n", "  replicas: -1\n"),
        USAGE,
        "spec.replicas: Invalid value: -1",
    ),
    template_case("dry-bad-port", ("port: 2375", "port: 70000"), USAGE, "nothing was created"),
    template_case(
        "dry-bad-label-value",
        (
            "app.kubernetes.io/component: docker-host\nspec",
            'app.kubernetes.io/component: docker-host\n    bad: "not a value!"\nspec',
        ),
        USAGE,
        "nothing was created",
    ),
    template_case(
        "dry-bad-name", ("  name: {{ id }}-sa\n", "  name: {{ id }}-SA\n"), USAGE, "nothing was created"
    ),
    template_case(
        "dry-bad-restart-policy",
        ("      serviceAccountName:", "      restartPolicy: Sometimes\n      serviceAccountName:"),
        USAGE,
        "nothing was created",
    ),
    # -- the cluster refuses or fails for good: nothing created, the lock released
    Case(
        "fault-forbidden-dry-run",
        up("f1"),
        REFUSED,
        "would refuse",
        setup=fault(
            "patch",
            "statefulsets.apps",
            403,
            5,
            message='statefulsets.apps "x" is forbidden: User "dev" cannot patch resource "statefulsets"',
        ),
    ),
    Case(
        "fault-forbidden-lock",
        up("f2"),
        REFUSED,
        "ask your cluster admin",
        setup=fault(
            "create",
            "configmaps",
            403,
            5,
            message='configmaps is forbidden: User "dev" cannot create resource "configmaps"',
        ),
    ),
    Case(
        "fault-internal-error-persists",
        up("f3"),
        FAILURE,
        "Internal error occurred",
        setup=fault("patch", "statefulsets.apps", 500, 40),
    ),
    Case(
        "fault-unavailable-persists",
        up("f4"),
        FAILURE,
        "unable to handle the request",
        setup=fault("list", "statefulsets.apps", 503, 40),
    ),
    Case(
        "fault-first-apply-invalid",
        up("f5"),
        FAILURE,
        "",
        setup=fault(
            "patch",
            "statefulsets.apps",
            422,
            1,
            dry_run=False,
            message="admission webhook said no (after the dry run)",
        ),
    ),
    Case(
        "fault-list-forbidden-ls",
        ("ls", "-n", "{ns}"),
        REFUSED,
        "ask your cluster admin",
        setup=fault(
            "list",
            "statefulsets.apps",
            403,
            5,
            message='statefulsets.apps is forbidden: User "dev" cannot list resource "statefulsets"',
        ),
    ),
    Case(
        "down-unknown-environment",
        ("down", "--id", "never-made", "-n", "{ns}"),
        FAILURE,
        "no environment never-made",
    ),
    Case(
        "connect-unknown-environment",
        ("connect", "--id", "never-made", "-n", "{ns}"),
        FAILURE,
        "no environment never-made",
    ),
]


@pytest.fixture(scope="module")
def corpus_namespace(kubesim):
    name = f"bad-{uuid.uuid4().hex[:8]}"
    kubesim.kubectl("create", "namespace", name)
    yield name
    kubesim.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def corpus_project(tmp_path_factory) -> pathlib.Path:
    return hello_project(tmp_path_factory.mktemp("corpus") / "hello")


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_bad_input(case: Case, kubesim, corpus_namespace, corpus_project, tmp_path):
    env = user_env(kubesim, tmp_path / "config")
    ctx = Context(kubesim, corpus_namespace, corpus_project, tmp_path, env, corpus_project)
    kubesim.clear_faults()
    try:
        value = case.setup(ctx) if case.setup else ""
        env.update({k: v.replace("{t}", value or "") for k, v in (case.env or {}).items()})
        args = [a.replace("{ns}", corpus_namespace).replace("{t}", value or "") for a in case.args]
        before = snapshot(ctx.cwd, tmp_path / "config")
        result = preevy(*args, cwd=ctx.cwd, env=env)
    finally:
        kubesim.clear_faults()
    left = environment_objects(kubesim, corpus_namespace, "preevy.dev/profile-id")
    if left:  # gone before the next case, so that one failure stays one
        kubesim.kubectl("delete", *left, "-n", corpus_namespace, "--wait=false", check=False)
    failed(result, case.code, case.phrase.replace("{ns}", corpus_namespace))
    assert snapshot(ctx.cwd, tmp_path / "config") == before, "files changed"
    assert left == []
    env_id = args[args.index("--id") + 1] if "--id" in args else None
    if case.id_valid and env_id:
        nothing_created(kubesim, env_id)


def test_corpus_is_large_enough():
    assert len(CORPUS) + len(NEVER_READY) + 3 >= 80  # 3: the missing programs below


# --- missing programs ------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path) -> pathlib.Path:
    return hello_project(tmp_path / "hello")


def test_missing_kubectl(project, env, tmp_path, kubesim):
    env["PATH"] = path_with(tmp_path, "docker")
    result = preevy("up", "--id", "no-kubectl", cwd=project, env=env)
    failed(result, MISSING_TOOL, "kubectl was not found on PATH")
    nothing_created(kubesim, "no-kubectl")


def test_missing_docker(project, env, tmp_path):
    env["PATH"] = path_with(tmp_path, "kubectl")
    failed(
        preevy("up", "--id", "no-docker", cwd=project, env=env), MISSING_TOOL, "docker was not found on PATH"
    )


def test_missing_compose_plugin(project, env, tmp_path, kubesim):
    """The docker CLI without its compose plugin: an empty DOCKER_CONFIG hides a per-user plugin, a tmpfs
    (in a private mount namespace) a system-wide one."""
    plugin = subprocess.run(
        [
            "docker",
            "info",
            "--format",
            '{{range .ClientInfo.Plugins}}{{if eq .Name "compose"}}{{.Path}}{{end}}{{end}}',
        ],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.strip()
    assert plugin, "the docker compose plugin is a prerequisite of these tests"
    env["DOCKER_CONFIG"] = str(tmp_path / "docker-config")
    argv = [str(REPO_ROOT / "kubectl-preevy"), "up", "--id", "no-compose"]
    docker_config = pathlib.Path(os.environ.get("DOCKER_CONFIG", pathlib.Path.home() / ".docker"))
    if not pathlib.Path(plugin).is_relative_to(docker_config):
        argv = [
            "unshare",
            "--mount",
            "sh",
            "-c",
            'mount -t tmpfs none "$0" && exec "$@"',
            str(pathlib.Path(plugin).parent),
            *argv,
        ]
    result = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, timeout=60)
    failed(result, MISSING_TOOL, "docker compose plugin is not installed")
    nothing_created(kubesim, "no-compose")


# --- a pod that never gets ready: the most telling reason, and the exact cleanup -------------------

DOCKER_CONFIG_VOLUME = "configMap:\n          name: {{ id }}-dc"
PROBE = "readinessProbe:\n          httpGet:\n            path: /_ping\n            port: 2375\n"
FAILING_PROBE = (
    'readinessProbe:\n          exec:\n            command: ["sh", "-c", "echo docker is not ready; '
    'echo try later; exit 1"]\n'
)
NEVER_READY = [
    # (env id, what the template gets wrong, --timeout, the reason the error must give)
    # (a crash-looping container ends `up` at once, before any timeout: see
    # tests/e2e/test_permissions_policies.py::test_a_crash_looping_container_ends_up_at_once...)
    (
        "probe-fails",
        (PROBE, FAILING_PROBE),
        "8s",
        "Unhealthy: Readiness probe failed: docker is not ready try later",
    ),
    (
        "mount-fails",
        (DOCKER_CONFIG_VOLUME, DOCKER_CONFIG_VOLUME.replace("-dc", "-missing")),
        "5s",
        r'FailedMount: MountVolume.SetUp failed for volume "docker-config" : configmap "default-mount-fails-\w+-missing" '
        "not found",
    ),
]


@pytest.mark.parametrize(
    "env_id, change, timeout, reason", NEVER_READY, ids=[case[0] for case in NEVER_READY]
)
def test_pod_never_ready_names_the_most_telling_reason_and_the_cleanup(
    project, env, namespace, kubesim, tmp_path, env_id, change, timeout, reason
):
    template = tmp_path / "never-ready.yaml.njk"
    text = TEMPLATE.read_text()
    assert change[0] in text
    template.write_text(text.replace(*change))
    flags = ["--id", env_id, "-n", namespace]
    result = preevy(
        "up", *flags, "--kube-pod-template", str(template), "--timeout", timeout, cwd=project, env=env
    )
    events = kubesim.kubectl("get", "events", "-n", namespace, "--field-selector", "type=Warning").stdout
    assert "no profile yet: created profile 'default' (id default)" in result.stderr  # says it on first use
    line = failed(
        result,
        TIMEOUT,
        f"environment {env_id} not ready after {timeout}: ",
        f"remove with `kubectl preevy down --id {env_id} --namespace={namespace}`",
    )
    assert re.search(f"not ready after {timeout}: {reason}; inspect with `kubectl describe pod ", line), (
        f"{line}\nthe emulator's warning events:\n{events}"
    )
    preevy("down", *flags, cwd=project, env=env, check=True)
    assert environment_objects(kubesim, namespace, f"preevy.dev/env-id={env_id}") == []
