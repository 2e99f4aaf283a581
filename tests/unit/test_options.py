"""Option precedence (flag > env > x-preevy > profile > default), validation, and the real argument parser."""

import itertools
import pathlib
import types
from typing import Any

import pytest

from kubectl_preevy import cli, options
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.profiles import Profile

SOURCES = ("flag", "env", "x-preevy", "profile", "default")
OPTION_SOURCES = {
    "namespace": ("flag", "x-preevy", "profile", "default"),
    "kubeconfig": SOURCES,
    "context": SOURCES,
    "template": ("flag", "x-preevy", "profile", "default"),
    "server-side-apply": ("flag", "x-preevy", "profile", "default"),
    "storage-class": ("flag", "x-preevy", "profile", "default"),
    "storage-size": ("flag", "x-preevy", "profile", "default"),
}
BOOLEANS = {"flag": False, "x-preevy": True, "profile": False}


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """cwd with files every source can point at; the compose file lives in a subdirectory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "project").mkdir()
    for source in SOURCES:
        (tmp_path / f"kubeconfig-{source}").write_text("apiVersion: v1\nkind: Config\n")
        (tmp_path / f"template-{source}.yaml.njk").write_text("")
        (tmp_path / "project" / f"template-{source}.yaml.njk").write_text("")
    return tmp_path


def no_flags(**values):
    fields = dict.fromkeys(options.OPTION_FIELDS.values())
    fields.update(values)
    return types.SimpleNamespace(**fields)


def raw_value(option: str, source: str, workspace: pathlib.Path):
    """(value as the source holds it, the expected Options value)."""
    if option == "server-side-apply":
        return BOOLEANS[source], BOOLEANS[source]
    if option == "storage-size":
        raw: Any = {"flag": "1.5", "x-preevy": 2, "profile": 3.25}[source]
        return raw, float(raw)
    if option == "kubeconfig":
        path = str(workspace / f"kubeconfig-{source}")
        return path, None if source == "env" else path
    if option == "template":
        if source == "x-preevy":  # relative to the compose file's directory
            return f"template-{source}.yaml.njk", workspace / "project" / f"template-{source}.yaml.njk"
        if source == "flag":  # relative to the current directory
            return f"template-{source}.yaml.njk", workspace / f"template-{source}.yaml.njk"
        return str(workspace / f"template-{source}.yaml.njk"), workspace / f"template-{source}.yaml.njk"
    return f"{source.replace('x-preevy', 'xp')}-value", f"{source.replace('x-preevy', 'xp')}-value"


def resolve(option_values: dict, workspace, compose_file=None):
    """option_values: {(option, source): raw}."""
    args, environ, profile = no_flags(), {}, Profile("ci", "ci-12345", {})
    x_preevy: dict[str, Any] = {}
    for (option, source), raw in option_values.items():
        if source == "flag":
            setattr(args, options.OPTION_FIELDS[option], raw)
        elif source == "env":
            environ[options.OPTION_ENV_VARS[option]] = raw
        elif source == "x-preevy":
            x_preevy.setdefault("drivers", {}).setdefault("kube-pod", {})[option] = raw
        elif source == "profile":
            profile.options[option] = raw
    compose_file = compose_file or workspace / "project" / "compose.yaml"
    return options.resolve_options(args, x_preevy or None, compose_file, profile, environ)


def expected_source(option, source, workspace):
    return {
        "flag": f"flag {options.OPTION_FLAGS[option]}",
        "env": f"env {options.OPTION_ENV_VARS.get(option)}",
        "x-preevy": f"x-preevy in {workspace / 'project' / 'compose.yaml'}",
        "profile": "profile 'ci'",
    }.get(source)


PAIRS = [
    (option, higher, lower)
    for option, sources in OPTION_SOURCES.items()
    for higher, lower in itertools.combinations(sources, 2)
]


@pytest.mark.parametrize("option,higher,lower", PAIRS, ids=[f"{o}:{h}>{lo}" for o, h, lo in PAIRS])
def test_precedence_of_every_pair_of_sources(option, higher, lower, workspace):
    values = {
        (option, source): raw_value(option, source, workspace)[0]
        for source in (higher, lower)
        if source != "default"
    }
    resolved = resolve(values, workspace)
    field = options.OPTION_FIELDS[option]
    assert getattr(resolved, field) == raw_value(option, higher, workspace)[1]
    assert resolved.sources[option] == expected_source(option, higher, workspace)


def test_defaults(workspace):
    resolved = resolve({}, workspace)
    assert (resolved.namespace, resolved.kubeconfig, resolved.context, resolved.template) == (
        None,
        None,
        None,
        None,
    )
    assert (
        resolved.server_side_apply is True and resolved.storage_class is None and resolved.storage_size == 5.0
    )
    assert resolved.sources["storage-size"] == "default"
    assert set(resolved.sources) == set(options.OPTION_NAMES)


def test_multi_path_kubeconfig_env_is_left_to_kubectl(workspace):
    resolved = resolve(
        {
            ("kubeconfig", "env"): "/a/config:/b/config",
            ("kubeconfig", "profile"): str(workspace / "kubeconfig-profile"),
        },
        workspace,
    )
    assert resolved.kubeconfig is None
    assert resolved.sources["kubeconfig"] == "env KUBECONFIG"


def test_empty_env_variables_are_unset(workspace):
    resolved = options.resolve_options(
        no_flags(), None, None, Profile("p", "p", {"context": "pc"}), {"KUBECONFIG": "", "KUBE_CONTEXT": ""}
    )
    assert resolved.context == "pc" and resolved.sources["kubeconfig"] == options.SOURCE_KUBECTL


def test_template_from_x_preevy_is_relative_to_the_compose_file(workspace):
    resolved = resolve({("template", "x-preevy"): "template-x-preevy.yaml.njk"}, workspace)
    assert resolved.template == workspace / "project" / "template-x-preevy.yaml.njk"


def test_no_profile_is_allowed(workspace):
    assert options.resolve_options(no_flags(), None, None, None, {}).storage_size == 5.0


# --- validation: each error names the option, the value and its source --------------------------

INVALID = [
    ("namespace", "Bad_NS", "lowercase letters"),
    ("namespace", "-x", "lowercase letters"),
    ("namespace", "a" * 64, "at most 63"),
    ("storage-class", "Fast!", "lowercase letters"),
    ("storage-size", "-1", "must be a positive number of GiB, from 0.001 to 1000000"),
    ("storage-size", "0", "must be a positive number of GiB, from 0.001 to 1000000"),
    ("storage-size", "abc", "must be a positive number of GiB, from 0.001 to 1000000"),
    ("storage-size", "5Gi", "must be a positive number of GiB, from 0.001 to 1000000"),
    ("storage-size", "nan", "must be a positive number of GiB, from 0.001 to 1000000"),
    ("storage-size", "inf", "must be a positive number of GiB, from 0.001 to 1000000"),
    ("server-side-apply", "maybe", "must be true or false"),
    ("context", "", "name of a context"),
    ("template", "missing.yaml.njk", "does not exist"),
    ("kubeconfig", "missing-kubeconfig", "does not exist"),
]
INVALID_CASES = [
    (option, raw, why, source)
    for option, raw, why in INVALID
    for source in ("x-preevy", "profile")
    if not (option == "context" and raw == "")
] + [
    ("namespace", "Bad_NS", "lowercase letters", "flag"),
    ("storage-size", "-1", "positive", "flag"),
    ("template", "missing.yaml.njk", "does not exist", "flag"),
    ("kubeconfig", "nope", "does not exist", "flag"),
    ("storage-class", "a_b", "lowercase letters", "flag"),
]


@pytest.mark.parametrize(
    "option,raw,why,source", INVALID_CASES, ids=[f"{o}={r[:10]}@{s}" for o, r, _, s in INVALID_CASES]
)
def test_invalid_value_names_option_value_and_source(option, raw, why, source, workspace):
    with pytest.raises(PreevyError) as caught:
        resolve({(option, source): raw}, workspace)
    message = caught.value.message
    assert caught.value.exit_code == ExitCode.USAGE
    assert message.startswith(
        f'invalid {option} "{raw}" (from {expected_source(option, source, workspace)}): '
    )
    assert why in message
    assert "\n" not in message


def test_storage_size_error_message_is_exact():
    with pytest.raises(PreevyError) as caught:
        options.resolve_options(
            no_flags(),
            {"drivers": {"kube-pod": {"storage-size": -1}}},
            pathlib.Path("/p/compose.yaml"),
            Profile("p", "p", {}),
            {},
        )
    assert (
        caught.value.message
        == 'invalid storage-size "-1" (from x-preevy in /p/compose.yaml): must be a positive number of GiB, from 0.001 to 1000000'
    )


def test_yaml_boolean_storage_size_is_invalid():
    with pytest.raises(PreevyError, match=r'invalid storage-size "true"'):
        options.resolve_options(
            no_flags(),
            {"drivers": {"kube-pod": {"storage-size": True}}},
            pathlib.Path("/p/compose.yaml"),
            None,
            {},
        )


@pytest.mark.parametrize("raw,expected", [("12.5", 12.5), (12.5, 12.5), (" 3 ", 3.0), ("0.5", 0.5), (7, 7.0)])
def test_fractional_and_integer_storage_sizes(raw, expected):
    assert options.parse_option("storage-size", raw, "test") == expected


@pytest.mark.parametrize(
    "raw,expected", [("true", True), ("False", False), (False, False), ("yes", True), ("0", False)]
)
def test_server_side_apply_values(raw, expected):
    assert options.parse_option("server-side-apply", raw, "test") is expected


def test_unknown_x_preevy_option_is_an_error():
    with pytest.raises(
        PreevyError, match=r'unknown option "pod-template" \(from x-preevy in /p/compose.yaml\)'
    ):
        options.resolve_options(
            no_flags(),
            {"drivers": {"kube-pod": {"pod-template": "x"}}},
            pathlib.Path("/p/compose.yaml"),
            None,
            {},
        )


@pytest.mark.parametrize(
    "x_preevy,key",
    [
        (["x"], "x-preevy"),
        ({"drivers": "kube-pod"}, "x-preevy.drivers"),
        ({"drivers": {"kube-pod": ["a"]}}, "x-preevy.drivers.kube-pod"),
    ],
)
def test_malformed_x_preevy_is_an_error(x_preevy, key):
    with pytest.raises(PreevyError, match=rf"^{key} \(from x-preevy in /p/compose.yaml\) must be a mapping"):
        options.resolve_options(no_flags(), x_preevy, pathlib.Path("/p/compose.yaml"), None, {})


def test_x_preevy_of_other_drivers_is_ignored():
    resolved = options.resolve_options(
        no_flags(),
        {"driver": "lightsail", "drivers": {"lightsail": {"region": "x"}}, "plugins": []},
        pathlib.Path("/p/compose.yaml"),
        None,
        {},
    )
    assert resolved.storage_size == 5.0


# --- the real parser: every spelling of the flags lands in the option it means ----------------------


@pytest.mark.parametrize(
    "argv,option,expected",
    [
        (["-n", "ns1"], "namespace", "ns1"),
        (["--namespace", "ns2"], "namespace", "ns2"),
        (["--kube-pod-namespace", "ns3"], "namespace", "ns3"),
        (["--context", "c1"], "context", "c1"),
        (["--kube-pod-context", "c2"], "context", "c2"),
        (["--kube-pod-storage-size", "2.5"], "storage-size", 2.5),
        (["--kube-pod-storage-class", "fast"], "storage-class", "fast"),
        (["--no-kube-pod-server-side-apply"], "server-side-apply", False),
        (["--kube-pod-server-side-apply"], "server-side-apply", True),
    ],
)
def test_cli_flags_reach_options(argv, option, expected, workspace):
    args = cli.build_parser("kubectl preevy").parse_args(["up", *argv])
    resolved = options.resolve_options(
        args,
        {
            "drivers": {
                "kube-pod": {
                    "namespace": "xp",
                    "context": "xc",
                    "storage-size": 9,
                    "storage-class": "slow",
                    "server-side-apply": "false",
                }
            }
        },
        None,
        Profile("p", "p", {}),
        {"KUBE_CONTEXT": "env-context"},
    )
    assert getattr(resolved, options.OPTION_FIELDS[option]) == expected
    assert resolved.sources[option].startswith("flag ")


def test_cli_kubeconfig_flags_reach_options(workspace):
    for flag in ("--kubeconfig", "--kube-pod-kubeconfig"):
        args = cli.build_parser("kubectl preevy").parse_args(["up", flag, "kubeconfig-flag"])
        resolved = options.resolve_options(args, None, None, None, {"KUBECONFIG": "/elsewhere"})
        assert resolved.kubeconfig == str(workspace / "kubeconfig-flag")


def test_cluster_flags():
    resolved = options.Options("ns", "/k", "ctx", None, True, None, 5.0, {})
    assert options.cluster_flags(resolved) == ["--kubeconfig=/k", "--context=ctx", "--namespace=ns"]
    assert options.cluster_flags(resolved, namespace="other")[-1] == "--namespace=other"
    assert options.cluster_flags(options.Options(None, None, None, None, True, None, 5.0, {})) == []
