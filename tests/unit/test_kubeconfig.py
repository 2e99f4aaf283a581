"""The namespace and server read from kubeconfig files in-process, as kubectl reads them; None (ask kubectl)
for anything unusual. Each answer is checked against `kubectl config view` on the same files."""

import json
import os
import pathlib
import subprocess

import pytest

from kubectl_preevy import kubeconfig

A = """\
apiVersion: v1
kind: Config
clusters:
- name: one
  cluster: {server: "https://one:6443"}
- name: two
  cluster: {server: "https://two:6443"}
users:
- name: u
  user: {token: t}
contexts:
- name: first
  context: {cluster: one, user: u, namespace: previews}
- name: second
  context: {cluster: two, user: u}
current-context: first
"""

B = """\
apiVersion: v1
kind: Config
clusters:
- name: one
  cluster: {server: "https://shadowed:6443"}
- name: three
  cluster: {server: "https://three:6443"}
users:
- name: u
  user: {token: other}
contexts:
- name: first
  context: {cluster: three, user: u, namespace: shadowed}
- name: third
  context: {cluster: three, user: u, namespace: ci}
current-context: third
"""

NO_CURRENT = A.replace("current-context: first\n", "")


@pytest.fixture(autouse=True)
def fresh_cache():
    kubeconfig._READ.clear()
    yield
    kubeconfig._READ.clear()


def write(tmp_path: pathlib.Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def config_view(kubeconfig_flag: str | None, context: str | None, environ: dict[str, str]) -> tuple[str, str]:
    """What kubectl itself says (the answer the in-process read must match)."""
    argv = ["kubectl", "config", "view", "--minify", "-o"]
    argv.append('jsonpath={.contexts[0].context.namespace}{"\\n"}{.clusters[0].cluster.server}')
    argv[1:1] = [*(["--kubeconfig", kubeconfig_flag] if kubeconfig_flag else [])]
    argv[1:1] = [*(["--context", context] if context else [])]
    out = subprocess.run(argv, env={**environ, "PATH": os.environ["PATH"]}, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    namespace, _, server = out.stdout.partition("\n")
    return namespace or "default", server


@pytest.mark.parametrize(
    ("files", "flag", "context", "expected"),
    [
        (["a"], None, None, ("previews", "https://one:6443")),
        (["a"], "a", "second", ("default", "https://two:6443")),  # no namespace in the context: default
        (["a", "b"], None, None, ("previews", "https://one:6443")),  # the first current-context wins
        (["b", "a"], None, None, ("ci", "https://three:6443")),
        (["b", "a"], None, "first", ("shadowed", "https://three:6443")),  # the first definition wins
        (["a", "b"], None, "third", ("ci", "https://three:6443")),  # ...with its own cluster's server
        (["none", "b"], None, "third", ("ci", "https://three:6443")),  # --context when no file sets one
        (["missing", "a"], None, None, ("previews", "https://one:6443")),  # a missing file is skipped
        (["empty", "a", "a"], None, None, ("previews", "https://one:6443")),  # empty file, a file twice
    ],
)
def test_the_namespace_and_server_are_those_kubectl_reads(tmp_path, files, flag, context, expected):
    paths = {
        "a": write(tmp_path, "a", A),
        "b": write(tmp_path, "b", B),
        "none": write(tmp_path, "none", NO_CURRENT),
        "empty": write(tmp_path, "empty", ""),
        "missing": str(tmp_path / "missing"),
    }
    environ = {"HOME": str(tmp_path / "home")}
    if flag is None:
        environ["KUBECONFIG"] = os.pathsep.join(paths[f] for f in files)
    read = kubeconfig.current(paths[flag] if flag else None, context, environ)
    assert read == expected
    assert config_view(paths[flag] if flag else None, context, environ) == expected


def test_without_kubeconfig_the_home_config_is_read(tmp_path):
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text(B)
    environ = {"HOME": str(home)}
    assert kubeconfig.current(None, None, environ) == ("ci", "https://three:6443")
    assert config_view(None, None, environ) == ("ci", "https://three:6443")


@pytest.mark.parametrize(
    ("text", "context"),
    [
        (NO_CURRENT, None),  # no current context: kubectl's own error
        (A, "nope"),  # an unknown context: kubectl's own error
        (A.replace("- name: u\n", "- name: v\n"), None),  # an unknown user: kubectl's own error
        (
            A.replace("current-context", "- name: first\n  context: {cluster: two}\ncurrent-context"),
            None,
        ),  # twice
        (A.replace('cluster: {server: "https://one:6443"}', "cluster: {}"), None),  # a cluster without server
        (A.replace("namespace: previews", "namespace: 12"), None),  # not a string
        ("clusters: [", None),  # not YAML
        ("- a list\n", None),  # not a mapping
        (A.replace("contexts:\n", "contexts: {}\nx:\n"), None),  # contexts not a list
    ],
)
def test_anything_unusual_is_left_to_kubectl(tmp_path, text, context):
    path = write(tmp_path, "config", text)
    assert kubeconfig.current(None, context, {"KUBECONFIG": path, "HOME": str(tmp_path)}) is None


def test_a_kubeconfig_flag_naming_a_missing_file_is_left_to_kubectl(tmp_path):
    write(tmp_path, "a", A)
    environ = {"KUBECONFIG": str(tmp_path / "a"), "HOME": str(tmp_path)}
    assert kubeconfig.current(str(tmp_path / "missing"), None, environ) is None


def test_no_file_at_all_is_left_to_kubectl(tmp_path):
    # e.g. in a pod: kubectl uses the ServiceAccount
    assert kubeconfig.current(None, None, {"HOME": str(tmp_path)}) is None
    assert kubeconfig.current(None, None, {"KUBECONFIG": str(tmp_path / "x"), "HOME": str(tmp_path)}) is None


def test_kubectl_uses_the_files_and_asks_config_view_only_when_they_are_unusual(tmp_path):
    from kubectl_preevy import kubectl, process
    from kubectl_preevy.options import Connection

    environ = {"KUBECONFIG": write(tmp_path, "config", A), "HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    process.journal.reset(verbosity=0)
    client = kubectl.Kubectl(None, None, None, environ)
    assert (client.namespace, client.server_url()) == ("previews", "https://one:6443")
    assert list(process.journal.records) == []  # no program ran
    # --cluster: not the context's cluster, kubectl resolves it
    other = kubectl.Kubectl(None, None, None, environ, Connection(cluster="two"))
    assert other.namespace == "previews"
    assert [record.argv[-5:-3] for record in process.journal.records] == [["config", "view"]]


def test_an_answer_is_remembered_until_a_file_changes(tmp_path, monkeypatch):
    """The next run finds the files as they were: nothing is parsed (no yaml import). A change of the same
    size is asked again."""
    monkeypatch.setattr(kubeconfig, "RACY_SECONDS", 0)
    path = write(tmp_path, "config", A)
    environ = {"KUBECONFIG": path, "HOME": str(tmp_path)}
    assert kubeconfig.current(None, None, environ) == ("previews", "https://one:6443")
    assert kubeconfig.current(None, "second", environ) == ("default", "https://two:6443")

    kubeconfig._READ.clear()  # the next run
    real_read = kubeconfig._read
    monkeypatch.setattr(kubeconfig, "_read", lambda *a, **k: pytest.fail("parsed again"))
    assert kubeconfig.current(None, None, environ) == ("previews", "https://one:6443")
    assert kubeconfig.current(None, "second", environ) == ("default", "https://two:6443")

    monkeypatch.setattr(kubeconfig, "_read", real_read)
    pathlib.Path(path).write_text(A.replace("namespace: previews", "namespace: weivserp"))
    kubeconfig._READ.clear()
    assert kubeconfig.current(None, None, environ) == ("weivserp", "https://one:6443")


def test_a_file_changed_just_now_is_not_remembered(tmp_path):
    """Two changes within one clock tick could leave the same stat (git's racy entries)."""
    path = write(tmp_path, "config", A)
    environ = {"KUBECONFIG": path, "HOME": str(tmp_path)}
    assert kubeconfig.current(None, None, environ) == ("previews", "https://one:6443")
    assert not (tmp_path / ".cache" / "kubectl-preevy" / kubeconfig.ANSWERS_FILE).exists()


def test_a_damaged_answers_file_is_ignored_and_replaced(tmp_path, monkeypatch):
    monkeypatch.setattr(kubeconfig, "RACY_SECONDS", 0)
    answers = tmp_path / ".cache" / "kubectl-preevy" / kubeconfig.ANSWERS_FILE
    answers.parent.mkdir(parents=True)
    answers.write_text('{"x": [1, 2], "y": "z"')
    environ = {"KUBECONFIG": write(tmp_path, "config", A), "HOME": str(tmp_path)}
    assert kubeconfig.current(None, None, environ) == ("previews", "https://one:6443")
    assert list(json.loads(answers.read_text()).values()) == [["previews", "https://one:6443"]]
