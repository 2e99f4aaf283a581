"""Profiles: the local store (XDG_CONFIG_HOME in a temporary directory), selection, and the profile commands.

The cluster store runs against the emulator in tests/e2e/test_options_e2e.py; here the cluster is a closed
port, so every cluster lookup fails fast and must degrade as documented.
"""

import json
import os
import pathlib
import re
import types

import pytest
import yaml

from kubectl_preevy import cli, options, profiles
from kubectl_preevy.errors import ExitCode, PreevyError
from tests.unit.fresh import run_fresh

UNREACHABLE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: ns}}]
current-context: x
"""


@pytest.fixture
def environ(tmp_path, monkeypatch):
    """os.environ with a private config dir, kubectl cache and an unreachable cluster."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(UNREACHABLE_KUBECONFIG)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("KUBECACHEDIR", str(tmp_path / "kubecache"))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    for name in ("PREEVY_PROFILE", "KUBE_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)

    return os.environ


def args(**values):
    return types.SimpleNamespace(
        **{"profile": None, "kubeconfig": None, "context": None, "namespace": None, **values}
    )


def main(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- local store ----------------------------------------------------------------------------------------


def test_local_store_round_trip(environ, tmp_path):
    store = profiles.LocalStore(environ)
    profile = profiles.Profile(
        "ci", "ci-ab12c", {"namespace": "previews", "storage-size": 12.5, "server-side-apply": False}
    )
    store.save(profile)
    assert store.path("ci") == tmp_path / "config" / "kubectl-preevy" / "profiles" / "ci.yaml"
    document = yaml.safe_load(store.path("ci").read_text())
    assert document["apiVersion"] == "kubectl-preevy/v1" and document["kind"] == "Profile"
    loaded = store.load("ci")
    assert (loaded.name, loaded.id, loaded.options, loaded.store) == (
        "ci",
        "ci-ab12c",
        profile.options,
        "local",
    )
    assert [p.name for p in store.list()] == ["ci"]
    store.set_current("ci")
    assert store.current() == "ci"
    assert store.remove("ci") and store.current() is None and store.load("ci") is None
    assert not store.remove("ci")


def test_config_dir_defaults_to_home_dot_config():
    assert profiles.config_dir({"HOME": "/home/u"}) == pathlib.Path("/home/u/.config/kubectl-preevy")
    assert profiles.config_dir({"HOME": "/home/u", "XDG_CONFIG_HOME": "/x"}) == pathlib.Path(
        "/x/kubectl-preevy"
    )


def test_broken_profile_file_is_a_clear_error(environ):
    store = profiles.LocalStore(environ)
    store.profiles_dir.mkdir(parents=True)
    store.path("bad").write_text("id: [unclosed\n")
    with pytest.raises(PreevyError, match=r"profile file .*bad.yaml is not valid \(invalid YAML"):
        store.load("bad")
    store.path("bad").write_text("options: {}\n")
    with pytest.raises(PreevyError, match=r"is not valid \(no id\).*profile rm bad"):
        store.load("bad")


# --- which profile ---------------------------------------------------------------------------------------


def test_default_profile_is_created_on_first_use_and_said_once(environ, capsys):
    profile = profiles.load_profile(args(), environ)
    assert (profile.name, profile.id, profile.options) == ("default", "default", {})
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "created profile 'default' (id default)" in err
    assert profiles.LocalStore(environ).load("default").id == "default"
    assert profiles.load_profile(args(), environ).id == "default"
    assert capsys.readouterr().err == ""


def test_default_profile_of_a_dry_run_is_not_saved(environ, capsys):
    profile = profiles.load_profile(args(), environ, save_default=False)
    assert (profile.name, profile.id) == ("default", "default")
    assert "without saving it (a dry run writes nothing)" in capsys.readouterr().err
    assert profiles.LocalStore(environ).load("default") is None


def test_default_profile_works_when_it_cannot_be_saved(environ, tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "file"))

    assert profiles.load_profile(args(), os.environ).id == "default"
    assert "without saving it" in capsys.readouterr().err


def test_profile_flag_beats_env_beats_current(environ, monkeypatch):
    store = profiles.LocalStore(environ)
    for name in ("a", "b", "c"):
        store.save(profiles.Profile(name, f"{name}-00000", {}))
    store.set_current("c")
    assert profiles.load_profile(args(), environ).name == "c"
    monkeypatch.setenv("PREEVY_PROFILE", "b")  # (environ is os.environ: undone after the test)
    assert profiles.load_profile(args(), environ).name == "b"
    assert profiles.load_profile(args(profile="a"), environ).name == "a"


def test_unknown_profile_with_unreachable_cluster_says_both(environ):
    with pytest.raises(PreevyError) as caught:
        profiles.load_profile(args(profile="nope"), environ)
    assert (
        "profile 'nope' is not on this machine, and looking for it in the cluster failed"
        in caught.value.message
    )
    assert caught.value.exit_code == ExitCode.CLUSTER


def test_invalid_profile_name(environ):
    with pytest.raises(PreevyError, match=r'invalid profile name "Bad/Name"'):
        profiles.load_profile(args(profile="Bad/Name"), environ)


def test_profile_options_feed_resolve_options(environ):
    profile = profiles.Profile("ci", "ci-1", {"namespace": "previews", "storage-size": "abc"})
    with pytest.raises(PreevyError) as caught:
        options.resolve_options(args(), None, None, profile, {})
    assert (
        caught.value.message
        == "invalid storage-size \"abc\" (from profile 'ci'): must be a positive number of GiB, from 0.001 to 1000000"
    )


def test_new_profile_ids():
    assert profiles.new_profile_id("default") == "default"
    assert re.fullmatch(r"ci-[a-z0-9]{5}", profiles.new_profile_id("ci"))


# --- cluster store, offline parts ---------------------------------------------------------------------


def test_cluster_profile_configmap_round_trip():
    store = profiles.ClusterStore(None, None, "previews", {})
    profile = profiles.Profile(
        "ci", "ci-ab12c", {"storage-size": 12.5, "server-side-apply": False, "namespace": "previews"}
    )
    configmap = json.loads(store.manifest(profile))
    assert configmap["metadata"] == {
        "name": "preevy-profile-ci",
        "labels": {"app.kubernetes.io/managed-by": "kubectl-preevy", "preevy.dev/profile": "ci"},
    }
    assert configmap["data"] == {
        "profile-id": "ci-ab12c",
        "storage-size": "12.5",
        "server-side-apply": "false",
        "namespace": "previews",
    }
    configmap["metadata"]["namespace"] = "previews"
    loaded = store._parse(configmap, "ci")
    assert (loaded.id, loaded.store, loaded.location) == (
        "ci-ab12c",
        "cluster",
        "previews/configmap/preevy-profile-ci",
    )
    resolved = options.resolve_options(args(), None, None, loaded, {})
    assert (resolved.storage_size, resolved.server_side_apply) == (12.5, False)
    assert store.kubectl.argv("get", "configmaps")[:3] == ["kubectl", "-n", "previews"]


# --- the commands ----------------------------------------------------------------------------------------


def test_init_default_and_named(environ, capsys):
    code, _, err = main(capsys, "init")
    assert code == 0 and "created profile 'default' (id default)" in err
    code, _, err = main(
        capsys,
        "init",
        "ci",
        "-n",
        "previews",
        "--kube-pod-storage-size",
        "12.5",
        "--no-kube-pod-server-side-apply",
    )
    assert code == 0
    profile = profiles.LocalStore(environ).load("ci")
    assert re.fullmatch(r"ci-[a-z0-9]{5}", profile.id)
    assert profile.options == {"namespace": "previews", "storage-size": 12.5, "server-side-apply": False}
    assert profiles.LocalStore(environ).current() == "ci"


def test_init_with_a_given_profile_id(environ, capsys):
    from kubectl_preevy.commands import init

    parsed = cli.build_parser("kubectl preevy").parse_args(["init", "shared"])
    parsed.profile_id = "shared-abcde"  # e.g. an existing Preevy profile's id
    assert init.run(parsed) == 0
    assert profiles.LocalStore(environ).load("shared").id == "shared-abcde"
    parsed.name, parsed.profile_id = "other", "Not Valid"
    with pytest.raises(PreevyError, match='invalid profile id "Not Valid"'):
        init.run(parsed)


def test_init_rejects_existing_profile_and_bad_options_without_writing(environ, capsys):
    assert main(capsys, "init", "ci")[0] == 0
    code, _, err = main(capsys, "init", "ci")
    assert code == ExitCode.USAGE and err.startswith("error: profile 'ci' already exists")
    code, _, err = main(capsys, "init", "other", "--kube-pod-storage-size", "-1")
    assert code == ExitCode.USAGE
    assert (
        err.strip()
        == 'error: invalid storage-size "-1" (from flag --kube-pod-storage-size): must be a positive number of GiB, from 0.001 to 1000000'
    )
    assert profiles.LocalStore(environ).load("other") is None
    code, _, err = main(capsys, "init", "Bad_Name")
    assert code == ExitCode.USAGE and "invalid profile name" in err


def test_profile_ls_and_show_json(environ, capsys):
    main(capsys, "init", "ci", "-n", "previews")
    main(capsys, "init")
    code, out, err = main(capsys, "profile", "ls", "-o", "json")
    assert code == 0 and "could not list the profiles kept in the cluster" in err
    listing = json.loads(out)
    assert listing["apiVersion"] == "kubectl-preevy/v1" and listing["kind"] == "ProfileList"
    assert listing["current"] == "default"
    assert [(i["name"], i["current"], i["store"]) for i in listing["items"]] == [
        ("ci", False, "local"),
        ("default", True, "local"),
    ]
    code, out, _ = main(capsys, "profile", "show", "ci", "-o", "json")
    shown = json.loads(out)
    assert (shown["apiVersion"], shown["kind"], shown["name"], shown["options"]) == (
        "kubectl-preevy/v1",
        "Profile",
        "ci",
        {"namespace": "previews"},
    )
    code, out, _ = main(capsys, "profile", "ls")
    assert out.splitlines()[0].split() == ["CURRENT", "NAME", "ID", "STORE", "OPTIONS"]
    assert re.search(r"^\*\s+default\s+default\s+local", out, re.M)
    code, out, _ = main(capsys, "profile", "show")
    assert "name: default" in out and "current: yes" in out


def test_profile_use_and_rm(environ, capsys):
    main(capsys, "init", "a")
    main(capsys, "init", "b")
    assert main(capsys, "profile", "use", "a")[0] == 0
    assert profiles.LocalStore(environ).current() == "a"
    assert main(capsys, "profile", "rm", "a")[0] == 0
    assert profiles.LocalStore(environ).current() is None
    assert profiles.LocalStore(environ).load("a") is None
    code, _, err = main(capsys, "profile", "use", "a")
    assert code != 0 and err.startswith("error: profile 'a' is not on this machine")


def test_profile_config_set_and_unset(environ, capsys, tmp_path):
    main(capsys, "init", "ci")
    (tmp_path / "t.yaml.njk").write_text("")
    code, _, err = main(
        capsys,
        "profile",
        "config",
        "set",
        "storage-size=7.5",
        "storage-class=fast",
        "template=t.yaml.njk",
        "server-side-apply=false",
        "namespace=previews",
    )
    assert code == 0, err
    profile = profiles.LocalStore(environ).load("ci")
    assert profile.options == {
        "storage-size": 7.5,
        "storage-class": "fast",
        "template": str(tmp_path / "t.yaml.njk"),
        "server-side-apply": False,
        "namespace": "previews",
    }
    assert main(capsys, "profile", "config", "unset", "storage-class", "template")[0] == 0
    assert set(profiles.LocalStore(environ).load("ci").options) == {
        "storage-size",
        "server-side-apply",
        "namespace",
    }


@pytest.mark.parametrize(
    "argv,message",
    [
        (
            ["set", "storage-size=abc"],
            'error: invalid storage-size "abc" (from profile config set): must be a positive number of GiB, from 0.001 to 1000000',
        ),
        (
            ["set", "namespace=OK", "storage-size=1"],
            'error: invalid namespace "OK" (from profile config set)',
        ),
        (["set", "storage-size"], 'error: invalid setting "storage-size": use KEY=VALUE'),
        (["set", "colour=blue"], 'error: invalid setting "colour=blue": use KEY=VALUE, KEY one of namespace'),
        (["unset", "colour"], 'error: unknown option "colour" (from profile config unset)'),
    ],
)
def test_profile_config_errors_change_nothing(environ, capsys, argv, message):
    main(capsys, "init", "ci", "--kube-pod-storage-size", "3")
    before = profiles.LocalStore(environ).path("ci").read_text()
    code, _, err = main(capsys, "profile", "config", *argv)
    assert code == ExitCode.USAGE
    assert err.startswith(message) and err.count("\n") == 1
    assert profiles.LocalStore(environ).path("ci").read_text() == before


def test_template_command_prints_the_bundled_templates(environ, capsys):
    from kubectl_preevy import resources

    for variant, name in resources.TEMPLATE_VARIANTS.items():
        code, out, _ = main(capsys, "template", "--variant", variant)
        assert code == 0 and out == resources.template_text(name)


def test_cluster_profile_embeds_its_template(tmp_path):
    template_file = tmp_path / "laptop" / "preview.yaml.njk"
    template_file.parent.mkdir()
    template_file.write_text("kind: X\n")
    laptop = profiles.ClusterStore(None, None, "previews", {"XDG_CACHE_HOME": str(tmp_path / "laptop-cache")})
    configmap = json.loads(laptop.manifest(profiles.Profile("ci", "ci-1", {"template": str(template_file)})))
    assert configmap["data"] == {"profile-id": "ci-1", "template.yaml.njk": "kind: X\n"}
    configmap["metadata"]["namespace"] = "previews"
    template_file.unlink()  # CI never had the laptop's file
    ci = profiles.ClusterStore(None, None, "previews", {"XDG_CACHE_HOME": str(tmp_path / "ci-cache")})
    loaded = ci._parse(configmap, "ci")
    copy = pathlib.Path(str(loaded.options["template"]))
    assert copy.is_relative_to(tmp_path / "ci-cache") and copy.read_text() == "kind: X\n"
    assert json.loads(ci.manifest(loaded))["data"] == configmap["data"]  # round trip, e.g. config set
    assert options.resolve_options(args(), None, None, loaded, {}).template == copy
    with pytest.raises(PreevyError, match="cannot read the template"):
        laptop.manifest(profiles.Profile("ci", "ci-1", {"template": str(template_file)}))


def test_a_saved_profile_is_json_and_reads_back_without_yaml(environ, tmp_path):
    """We write profiles as JSON (which is YAML), so that reading one needs no yaml import (~8 ms a run)."""
    store = profiles.LocalStore(environ)
    store.save(profiles.Profile("ci", "ci-ab12c", {"namespace": "previews"}))
    assert json.loads(store.path("ci").read_text())["id"] == "ci-ab12c"
    probe = (
        "import sys; from kubectl_preevy import profiles\n"
        f"p = profiles.LocalStore({dict(environ)!r}).load('ci'); print(p.id, 'yaml' in sys.modules)\n"
    )
    assert run_fresh(probe) == "ci-ab12c False\n"


def test_a_profile_written_by_hand_in_yaml_still_reads(environ):
    store = profiles.LocalStore(environ)
    store.path("hand").parent.mkdir(parents=True, exist_ok=True)
    store.path("hand").write_text("# mine\nid: hand-1x2y3\noptions:\n  namespace: previews\n")
    loaded = store.load("hand")
    assert (loaded.id, loaded.options) == ("hand-1x2y3", {"namespace": "previews"})
