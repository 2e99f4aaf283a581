"""krew-manifest.yaml and the release archive, checked by the rules of krew's own validator
(kubernetes-sigs/krew: internal/index/validation/validate.go, cmd/validate-krew-manifest), then
installed the way `kubectl krew install --manifest --archive` does and run by the real kubectl."""

import configparser
import copy
import gzip
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path, PurePosixPath

import pytest
import yaml

from kubectl_preevy import __version__
from tests.packaging.support import NAME, ROOT, bare_path, run_script
from tests.prerequisites import require_tool

# cmd/validate-krew-manifest allPlatforms(): every <os, arch> krew supports.
KREW_PLATFORMS = [
    ("windows", "386"),
    ("windows", "amd64"),
    ("windows", "arm64"),
    ("linux", "386"),
    ("linux", "amd64"),
    ("linux", "arm"),
    ("linux", "arm64"),
    ("linux", "ppc64le"),
    ("darwin", "386"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
]
WINDOWS_FORBIDDEN = {
    "con",
    "prn",
    "aux",
    "nul",
    *(f"com{i}" for i in range(1, 10)),
    *(f"lpt{i}" for i in range(1, 10)),
}
LICENSE_FILES = {
    "license",
    "license.txt",
    "license.md",
    "licenses",
    "licenses.txt",
    "licenses.md",
    "copying",
    "copying.txt",
}
# k8s.io/apimachinery ParseSemantic, with krew's leading "v": three numbers, no leading zeros.
SEMVER = re.compile(
    r"v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?"
)
KNOWN_KEYS = {
    "plugin": {"apiVersion", "kind", "metadata", "spec"},
    "spec": {"version", "homepage", "shortDescription", "description", "caveats", "platforms"},
    "platform": {"selector", "uri", "sha256", "bin", "files"},
    "file": {"from", "to"},
}


# --- krew's rules -------------------------------------------------------------------------------


def manifest_problems(plugin: dict) -> list[str]:
    """Every rule of krew's ValidatePlugin and validate-krew-manifest, plus ours (name, caveats,
    line lengths as errors, no unknown keys), as a list of problems."""
    problems = unknown_keys(plugin)
    spec = plugin.get("spec") or {}
    if plugin.get("apiVersion") != "krew.googlecontainertools.github.com/v1alpha2":
        problems.append(f"apiVersion {plugin.get('apiVersion')!r} is not supported")
    if plugin.get("kind") != "Plugin":
        problems.append(f"kind {plugin.get('kind')!r} is not Plugin")
    problems += name_problems((plugin.get("metadata") or {}).get("name", ""))
    problems += text_problems(spec)
    if not SEMVER.fullmatch(str(spec.get("version", ""))):
        problems.append(f"version {spec.get('version')!r} is not a semantic version starting with v")
    platforms = spec.get("platforms") or []
    if not platforms:
        problems.append("should have a platform specified")
    for index, entry in enumerate(platforms):
        problems += [f"platforms[{index}]: {p}" for p in platform_problems(entry)]
    problems += coverage_problems(platforms)
    return problems


def unknown_keys(plugin: dict) -> list[str]:
    spec = plugin.get("spec") or {}
    found = [(plugin, "plugin"), (spec, "spec")]
    for entry in spec.get("platforms") or []:
        found.append((entry, "platform"))
        found += [(op, "file") for op in entry.get("files") or []]
    return [
        f"unknown key {key!r} in {kind}" for mapping, kind in found for key in set(mapping) - KNOWN_KEYS[kind]
    ]


def name_problems(name: str) -> list[str]:
    if not re.fullmatch(r"[\w-]+", name, re.ASCII) or name.lower() in WINDOWS_FORBIDDEN:
        return [f"the plugin name {name!r} is not allowed"]
    return [] if name == "preevy" else [f"name {name!r}: krew adds kubectl- itself, the name is preevy"]


def text_problems(spec: dict) -> list[str]:
    short = spec.get("shortDescription") or ""
    problems = []
    if not short or re.search(r"[\r\n]", short.strip()) or len(short.strip()) > 70:
        problems.append("shortDescription must be one line of at most 70 characters")
    for field in ("description", "caveats"):
        if not too_long_lines_ok(spec.get(field) or "", 80):
            problems.append(f"{field} has a line longer than 80 characters")
    if re.search(r"(^|\s)--?[a-z]", spec.get("description") or "", re.M):
        problems.append("description lists flags")
    caveats = spec.get("caveats") or ""
    for needed in ("python3", "docker", "compose", "privileged"):
        if needed not in caveats:
            problems.append(f"caveats do not mention {needed}")
    return problems


def too_long_lines_ok(text: str, limit: int) -> bool:
    """validateLineLength: a longer line is allowed only if it is a single word."""
    return all(len(line) <= limit or " " not in line.strip() for line in text.split("\n"))


def platform_problems(entry: dict) -> list[str]:
    problems = []
    for key in ("uri", "sha256", "bin"):
        if not entry.get(key):
            problems.append(f"`{key}` has to be set")
    if entry.get("sha256") and not re.fullmatch(r"[a-f0-9]{64}", str(entry["sha256"])):
        problems.append(f"sha256 {entry['sha256']!r} must match ^[a-f0-9]{{64}}$")
    files = entry.get("files")
    if files is not None and len(files) == 0:
        problems.append("`files` has to be unspecified or non-empty")
    for op in files or []:
        if not op.get("from") or not op.get("to"):
            problems.append("`files` entries need `from` and `to`")
        elif os.path.normpath(op["to"]) != op["to"]:
            problems.append(f"`to` {op['to']!r} is not a clean path")
    return problems + selector_problems(entry.get("selector"))


def selector_problems(selector) -> list[str]:
    if not isinstance(selector, dict):
        return ["nil selector is not supported"]
    labels, expressions = selector.get("matchLabels"), selector.get("matchExpressions")
    if labels is None and not expressions:
        return ["empty selector is not supported"]
    keys = list(labels or {}) + [expr.get("key") for expr in expressions or []]
    problems = [f"selector key {key!r} not supported" for key in keys if key not in ("os", "arch")]
    if labels is not None and len(labels) == 0:
        problems.append("matchLabels specified but empty")
    if expressions is not None and len(expressions) == 0:
        problems.append("matchExpressions specified but empty")
    return problems


def selector_matches(selector, os_name: str, arch: str) -> bool:
    """metav1.LabelSelectorAsSelector(...).Matches({os, arch}); an invalid selector matches nothing."""
    if not isinstance(selector, dict):
        return False
    labels = {"os": os_name, "arch": arch}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        operator, values, has = expr.get("operator"), expr.get("values") or [], expr.get("key") in labels
        if operator in ("In", "NotIn") and not values:
            return False
        value = labels.get(expr.get("key"))
        matched = {
            "In": has and value in values,
            "NotIn": not has or value not in values,
            "Exists": has,
            "DoesNotExist": not has,
        }.get(operator, False)
        if not matched:
            return False
    return True


def coverage_problems(platforms: list[dict]) -> list[str]:
    problems = []
    for index, entry in enumerate(platforms):
        if not any(selector_matches(entry.get("selector"), *pair) for pair in KREW_PLATFORMS):
            problems.append(f"platforms[{index}] selector matches no supported platform")
    for pair in KREW_PLATFORMS:
        matching = [i for i, entry in enumerate(platforms) if selector_matches(entry.get("selector"), *pair)]
        if len(matching) > 1:
            problems.append(f"platforms {matching} overlap on {pair[0]}/{pair[1]}")
        if pair[0] == "windows" and matching:
            problems.append(f"{pair[0]}/{pair[1]} selected: windows runs only .exe plugins")
        if (
            pair in (("linux", "amd64"), ("linux", "arm64"), ("darwin", "amd64"), ("darwin", "arm64"))
            and not matching
        ):
            problems.append(f"{pair[0]}/{pair[1]} is not covered")
    return problems


# --- krew's install, step by step ---------------------------------------------------------------


def krew_os_arch() -> tuple[str, str]:
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine(), platform.machine()
    )
    return sys.platform, arch


def krew_install(plugin: dict, archive: Path, krew_root: Path) -> Path:
    """`kubectl krew install --manifest=... --archive=...` with KREW_ROOT=krew_root (internal/
    installation): checks the archive's sha256, extracts it, applies `files`, checks for a license
    file (validate-krew-manifest), links bin/kubectl-<name>. Returns the bin directory."""
    entry = next(p for p in plugin["spec"]["platforms"] if selector_matches(p["selector"], *krew_os_arch()))
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == entry["sha256"], (
        "archive does not match sha256"
    )
    staging, install_dir = (
        krew_root / "downloads",
        krew_root / "store" / plugin["metadata"]["name"] / plugin["spec"]["version"],
    )
    extract_like_krew(archive, staging)
    install_dir.mkdir(parents=True)
    for op in entry.get("files") or [{"from": "*", "to": "."}]:
        move_like_krew(staging, install_dir, op)
    binary = install_dir / entry["bin"]
    assert binary.resolve().is_relative_to(install_dir.resolve()) and binary.is_file(), f"no {entry['bin']}"
    licenses = [p for p in install_dir.rglob("*") if p.is_file() and p.name.lower() in LICENSE_FILES]
    assert licenses, "LICENSE (or alike) file is not extracted from the archive as part of installation"
    bin_dir = krew_root / "bin"
    bin_dir.mkdir()
    (bin_dir / ("kubectl-" + plugin["metadata"]["name"].replace("-", "_"))).symlink_to(binary)
    return bin_dir


def extract_like_krew(archive: Path, target: Path) -> None:
    """extractTARGZ: regular files and directories only, no path out of the target."""
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            path = PurePosixPath(member.name)
            assert not path.is_absolute() and ".." not in path.parts, f"suspicious path {member.name}"
            assert member.isfile() or member.isdir(), (
                f"krew cannot extract {member.name} (type {member.type!r})"
            )
        tar.extractall(target, filter="data")


def move_like_krew(staging: Path, install_dir: Path, op: dict) -> None:
    """moveFiles: a direct move when `from` names a file, else a glob that must match."""
    direct = staging / op["from"]
    if direct.exists():
        target = install_dir / (direct.name if os.path.normpath(op["to"]) == "." else op["to"])
        moves = [(direct, target)]
    else:
        moves = [(match, install_dir / op["to"] / match.name) for match in staging.glob(op["from"])]
        assert moves, f"no files in the plugin archive matched the glob pattern={op['from']}"
    for source, target in moves:
        assert target.resolve().is_relative_to(install_dir.resolve()), f"{target} is out of bounds"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)


# --- tests --------------------------------------------------------------------------------------


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_committed_manifest_follows_krew_rules():
    plugin = load(ROOT / "krew-manifest.yaml")
    assert manifest_problems(plugin) == []
    assert plugin["spec"]["version"] == f"v{__version__}", "version changed: run `make release`"
    (entry,) = plugin["spec"]["platforms"]
    assert entry["uri"].endswith(f"/v{__version__}/{NAME}_{__version__}.tar.gz")
    assert entry["bin"] == NAME
    assert {op["from"] for op in entry["files"]} == {NAME, "LICENSE"}


def mutation(path: str, value):
    """A copy of the manifest with the value at a dotted path (list indexes allowed) replaced."""

    def mutate(plugin: dict) -> dict:
        plugin = copy.deepcopy(plugin)
        *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
        node = plugin
        for part in parents:
            node = node[part]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value(node[last]) if callable(value) else value
        return plugin

    return mutate


DELETE = object()
LINUX = {"matchLabels": {"os": "linux"}}
BROKEN = {
    "api version": mutation("apiVersion", "krew.googlecontainertools.github.com/v1alpha1"),
    "kind": mutation("kind", "Plugins"),
    "name with a dot": mutation("metadata.name", "pre.evy"),
    "windows device name": mutation("metadata.name", "con"),
    "prefixed name": mutation("metadata.name", "kubectl-preevy"),
    "version without v": mutation("spec.version", "0.1.0"),
    "version of two numbers": mutation("spec.version", "v0.1"),
    "version with a leading zero": mutation("spec.version", "v0.01.0"),
    "two-line short description": mutation("spec.shortDescription", "one\ntwo"),
    "long short description": mutation("spec.shortDescription", "word " * 20),
    "long description line": mutation("spec.description", "a line " * 20),
    "flags in description": mutation("spec.description", "Use --kube-pod-template to change it.\n"),
    "caveats without python3": mutation("spec.caveats", lambda text: text.replace("python3", "python")),
    "no platforms": mutation("spec.platforms", []),
    "empty uri": mutation("spec.platforms.0.uri", ""),
    "uppercase sha256": mutation("spec.platforms.0.sha256", "A" * 64),
    "short sha256": mutation("spec.platforms.0.sha256", "abc123"),
    "no bin": mutation("spec.platforms.0.bin", ""),
    "empty files": mutation("spec.platforms.0.files", []),
    "file without to": mutation("spec.platforms.0.files.1.to", ""),
    "unclean to": mutation("spec.platforms.0.files.1.to", "./a/../b"),
    "no selector": mutation("spec.platforms.0.selector", DELETE),
    "empty matchLabels": mutation("spec.platforms.0.selector", {"matchLabels": {}}),
    "selector key distro": mutation("spec.platforms.0.selector", {"matchLabels": {"distro": "debian"}}),
    "selector of nothing": mutation("spec.platforms.0.selector.matchExpressions.0.values", ["plan9"]),
    "windows selected": mutation("spec.platforms.0.selector", {"matchLabels": {"arch": "amd64"}}),
    "darwin missing": mutation("spec.platforms.0.selector", LINUX),
    "overlapping platforms": mutation(
        "spec.platforms", lambda entries: entries + [{**entries[0], "selector": LINUX}]
    ),
    "typo in a key": mutation("spec.platforms.0", lambda entry: {**entry, "sha": entry["sha256"]}),
}


@pytest.mark.parametrize("broken", BROKEN.values(), ids=BROKEN.keys())
def test_validation_rejects_what_krew_rejects(broken):
    assert manifest_problems(broken(load(ROOT / "krew-manifest.yaml"))) != []


def test_release_writes_version_uri_and_sha256_of_the_archive(release, zipapp):
    archive, manifest = release
    plugin = load(manifest)
    assert manifest_problems(plugin) == []
    (entry,) = plugin["spec"]["platforms"]
    assert archive.name == f"{NAME}_{__version__}.tar.gz"
    assert entry["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert entry["uri"] == f"{home_url()}/releases/download/v{__version__}/{archive.name}"
    assert plugin["spec"]["homepage"] == home_url()
    committed = (ROOT / "krew-manifest.yaml").read_text()
    assert re.sub(r"sha256: \w+", "", manifest.read_text()) == re.sub(r"sha256: \w+", "", committed), (
        "release must change only the sha256 (version and uri already name this version)"
    )


def home_url() -> str:
    """The project's home, from the one place it is written."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    return config["metadata"]["url"].strip()


def published_at(release_output: str) -> str:
    [line] = [line for line in release_output.splitlines() if line.startswith("publish it at: ")]
    return line.removeprefix("publish it at: ")


def test_the_manifest_uri_is_where_make_release_says_the_archive_goes(zipapp, tmp_path):
    manifest = tmp_path / "krew-manifest.yaml"
    shutil.copy(ROOT / "krew-manifest.yaml", manifest)
    said = run_script(
        "release.py", "--binary", str(zipapp), "--output-dir", str(tmp_path), "--manifest", str(manifest)
    )
    (committed,) = load(ROOT / "krew-manifest.yaml")["spec"]["platforms"]
    assert committed["uri"] == published_at(said) == load(manifest)["spec"]["platforms"][0]["uri"]
    assert load(ROOT / "krew-manifest.yaml")["spec"]["homepage"] == home_url()
    assert "livecycle" not in (ROOT / "krew-manifest.yaml").read_text() + (ROOT / "setup.cfg").read_text()

    mirror = "https://downloads.example.test/kubectl-preevy"
    said = run_script(
        "release.py", "--binary", str(zipapp), "--output-dir", str(tmp_path), "--manifest", str(manifest),
        "--base-url", mirror,
    )  # fmt: skip
    uri = f"{mirror}/v{__version__}/{NAME}_{__version__}.tar.gz"
    assert published_at(said) == uri == load(manifest)["spec"]["platforms"][0]["uri"]
    assert load(manifest)["spec"]["homepage"] == home_url()


def test_archive_is_deterministic_and_holds_the_zipapp_and_license(release, zipapp, tmp_path):
    archive, _ = release
    run_script("release.py", "--binary", str(zipapp), "--output-dir", str(tmp_path))
    assert (tmp_path / archive.name).read_bytes() == archive.read_bytes()
    assert archive.read_bytes()[4:8] == b"\0\0\0\0"  # gzip header without a time
    with gzip.open(archive) as raw:
        assert raw.read(100).rstrip(b"\0") == b"LICENSE"  # sorted: LICENSE first
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["LICENSE", NAME]
        assert {(m.uid, m.gid, m.uname, m.gname, m.type) for m in members} == {
            (0, 0, "", "", tarfile.REGTYPE)
        }
        assert len({m.mtime for m in members}) == 1
        assert [oct(m.mode) for m in members] == ["0o644", "0o755"]
        assert tar.extractfile(NAME).read() == zipapp.read_bytes()
        assert tar.extractfile("LICENSE").read() == (ROOT / "LICENSE").read_bytes()


def test_an_archive_without_license_does_not_install(release, tmp_path):
    archive, manifest = release
    plugin = load(manifest)
    plugin["spec"]["platforms"][0]["files"] = [{"from": NAME, "to": "."}]
    with pytest.raises(AssertionError, match="LICENSE"):
        krew_install(plugin, archive, tmp_path / "krew")


def test_krew_style_install_runs_through_the_real_kubectl(release, tmp_path):
    kubectl = require_tool("kubectl")
    archive, manifest = release
    bin_dir = krew_install(load(manifest), archive, tmp_path / "krew")
    env = {
        "HOME": str(tmp_path / "home"),
        "KUBECACHEDIR": str(tmp_path / "kubecache"),
        "LANG": "C.UTF-8",
        "PATH": f"{bin_dir}:{Path(kubectl).parent}:{bare_path()}",
    }

    def kubectl_run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([kubectl, *args], env=env, capture_output=True, text=True, timeout=60)

    listed = kubectl_run("plugin", "list")
    assert listed.returncode == 0, listed.stderr
    assert str(bin_dir / NAME) in listed.stdout.splitlines()
    shown = kubectl_run("preevy", "--help")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("usage: kubectl preevy ")
    version = kubectl_run("preevy", "version")
    assert version.stdout == f"kubectl-preevy {__version__}\n"
