"""The zipapp (`make dist`): reproducible, self-contained (python3 alone), complete, quick to
start, and tidy about the extraction directories it leaves in ~/.shiv."""

import argparse
import fcntl
import hashlib
import json
import os
import re
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from kubectl_preevy import __version__
from kubectl_preevy.cli import build_parser
from tests.packaging.support import NAME, ROOT, bare_env, build_zipapp, run_zipapp

# Runs inside the zipapp's environment (SHIV_INTERPRETER=1 -c ...), with no site-packages (-S),
# so every import below can only come from the bundle.
BUNDLE_PROBE = """
import json, sys
from importlib.resources import files
import jinja2, markdown_it, markupsafe, mdurl, plumbum, pygments, rich.console, yaml
modules = [jinja2, markdown_it, markupsafe, mdurl, plumbum, pygments, rich, yaml]
print(json.dumps({
    "files": {m.__name__: m.__file__ for m in modules},
    "libyaml": yaml.__with_libyaml__,
    "loader": getattr(yaml, "CSafeLoader", yaml.SafeLoader).__name__,
    "yaml_roundtrip": yaml.safe_load(yaml.safe_dump({"a": [1, "b"]})),
    "markupsafe_impl": markupsafe._escape_inner.__module__,
    "jinja_escaped": jinja2.Environment(autoescape=True).from_string("{{ x }}").render(x="<b>"),
    "template": files("kubectl_preevy.templates").joinpath("default.yaml.njk").read_text(),
}))
"""


def shiv_dirs(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if re.fullmatch(rf"{NAME}_[0-9a-f]{{64}}", p.name))


def build_id(zipapp: Path) -> str:
    with zipfile.ZipFile(zipapp) as app:
        return json.loads(app.read("environment.json"))["build_id"]


def next_build(zipapp: Path, dest: Path) -> Path:
    """The same zipapp with one more file and so another build id: what an upgrade installs."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shebang = zipapp.read_bytes().split(b"\n", 1)[0] + b"\n"
    with zipfile.ZipFile(zipapp) as old, open(dest, "wb") as out:
        out.write(shebang)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as new:
            for item in old.infolist():
                data = old.read(item)
                if item.filename == "environment.json":
                    env = json.loads(data)
                    env["build_id"] = hashlib.sha256(env["build_id"].encode()).hexdigest()
                    data = json.dumps(env).encode()
                new.writestr(item, data)
            new.writestr("site-packages/kubectl_preevy/NEXT_BUILD", "next\n")
    dest.chmod(0o755)
    return dest


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from command_paths(sub, (*prefix, name))


# --- the build ---------------------------------------------------------------------------------


def test_two_builds_of_the_same_tree_are_byte_identical(zipapp, tmp_path):
    again = build_zipapp(tmp_path / "again" / NAME, tmp_path / "work")
    assert again.read_bytes() == zipapp.read_bytes()


def test_zipapp_starts_with_env_python3_and_runs_the_console_script(zipapp):
    assert zipapp.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert os.access(zipapp, os.X_OK)
    with zipfile.ZipFile(zipapp) as app:
        env = json.loads(app.read("environment.json"))
    assert env["entry_point"] == "kubectl_preevy.cli:console_main"
    assert env["preamble"] == "shiv_preamble.py"
    assert env["reproducible"] is True


def test_zipapp_bundles_every_module_every_template_and_no_compiled_code(zipapp):
    with zipfile.ZipFile(zipapp) as app:
        names = set(app.namelist())
    package = ROOT / "src" / "kubectl_preevy"
    modules = {f"site-packages/kubectl_preevy/{p.relative_to(package)}" for p in package.rglob("*.py")}
    templates = {
        f"site-packages/kubectl_preevy/templates/{p.name}"
        for p in (ROOT / "templates").iterdir()
        if p.suffix in (".njk", ".yaml", ".py")
    }
    assert modules - names == set(), "add the package to setup.cfg [options] packages"
    assert templates - names == set(), "add the pattern to setup.cfg [options.package_data]"
    assert [n for n in names if n.endswith((".so", ".pyd", ".dylib", ".pyc"))] == []


def test_zipapp_bundles_exactly_the_pinned_dependencies(zipapp):
    pinned = re.findall(r"^([a-z0-9-]+)==([^\s]+)", (ROOT / "requirements" / "zipapp.txt").read_text(), re.M)
    with zipfile.ZipFile(zipapp) as app:
        bundled = {
            re.match(r"site-packages/([^/]+)-([^-/]+)\.dist-info/", n).groups()
            for n in app.namelist()
            if re.match(r"site-packages/[^/]+\.dist-info/METADATA$", n)
        }
        metadata = app.read(f"site-packages/kubectl_preevy-{__version__}.dist-info/METADATA").decode()
    normalized = {(name.lower().replace("_", "-"), version) for name, version in bundled}
    assert normalized == {(name, version) for name, version in pinned} | {("kubectl-preevy", __version__)}
    assert f"\nVersion: {__version__}\n" in metadata  # setup.cfg reads kubectl_preevy.__version__


# --- running it with python3 alone --------------------------------------------------------------


def test_runs_with_python3_alone_in_a_fresh_home(zipapp, tmp_path):
    shown = run_zipapp(zipapp, "--help", home=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("usage: kubectl preevy ")
    assert shiv_dirs(tmp_path / ".shiv") == [f"{NAME}_{build_id(zipapp)}"]


def test_first_run_leaves_every_module_compiled_even_where_bytecode_writing_is_off(zipapp, tmp_path):
    """CI images often set PYTHONDONTWRITEBYTECODE: without bytecode made at extraction, every run
    would compile plumbum, rich and our modules again (~50-100 ms a run)."""
    shown = run_zipapp(zipapp, "version", home=tmp_path, PYTHONDONTWRITEBYTECODE="1")
    assert shown.returncode == 0, shown.stderr
    site = tmp_path / ".shiv" / f"{NAME}_{build_id(zipapp)}" / "site-packages"
    sources = [p for p in site.rglob("*.py") if "bin" not in p.relative_to(site).parts]
    uncompiled = [
        str(p.relative_to(site))
        for p in sources
        if not list((p.parent / "__pycache__").glob(f"{p.stem}.*.pyc"))
    ]
    assert len(sources) > 100 and uncompiled == []


def test_runs_without_any_site_packages(zipapp, tmp_path):
    isolated = subprocess.run(
        ["python3", "-S", str(zipapp), "version"],
        env=bare_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert isolated.returncode == 0, isolated.stderr
    assert isolated.stdout == f"kubectl-preevy {__version__}\n"


def test_bundled_dependencies_run_as_pure_python(zipapp, tmp_path):
    probe = subprocess.run(
        ["python3", "-S", str(zipapp), "-c", BUNDLE_PROBE],
        env=bare_env(tmp_path, SHIV_INTERPRETER="1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    shiv_root = str(tmp_path / ".shiv")
    assert all(path.startswith(shiv_root) for path in found["files"].values()), found["files"]
    assert found["libyaml"] is False and found["loader"] == "SafeLoader"
    assert found["yaml_roundtrip"] == {"a": [1, "b"]}
    assert found["markupsafe_impl"] == "markupsafe._native"
    assert found["jinja_escaped"] == "&lt;b&gt;"
    assert found["template"] == (ROOT / "templates" / "default.yaml.njk").read_text()


def test_template_command_prints_the_bundled_template(zipapp, tmp_path):
    shown = run_zipapp(zipapp, "template", home=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == (ROOT / "templates" / "default.yaml.njk").read_text().strip()


def test_version_is_the_package_version(zipapp, tmp_path):
    plain = run_zipapp(zipapp, "version", home=tmp_path)
    as_json = run_zipapp(zipapp, "version", "-o", "json", home=tmp_path)
    flag = run_zipapp(zipapp, "--version", home=tmp_path)
    assert plain.stdout == f"kubectl-preevy {__version__}\n"
    assert json.loads(as_json.stdout) == {
        "apiVersion": "kubectl-preevy/v1",
        "kind": "Version",
        "version": __version__,
    }
    assert flag.stdout == f"kubectl preevy {__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


def test_every_command_has_help_that_reads_kubectl_preevy(zipapp, tmp_path):
    paths = list(command_paths(build_parser("kubectl preevy")))
    assert ("profile", "config", "set") in paths and len(paths) > 10
    for path in paths:
        shown = run_zipapp(zipapp, *path, "-h", home=tmp_path)
        assert shown.returncode == 0, (path, shown.stderr)
        assert shown.stdout.startswith(" ".join(("usage: kubectl preevy", *path))), (path, shown.stdout)


def test_python_too_old_is_one_clear_line(tmp_path):
    preamble = (ROOT / "scripts" / "shiv_preamble.py").read_text()
    code = preamble.replace("MIN_PYTHON = (3, 10)", "MIN_PYTHON = (99, 0)")
    script = tmp_path / "preamble.py"
    script.write_text(code)
    ran = subprocess.run(["python3", str(script)], env=bare_env(tmp_path), capture_output=True, text=True)
    assert ran.returncode == 3
    assert re.fullmatch(
        r"error: kubectl-preevy needs Python 99\.0 or newer, but \S+ is 3\.\d+\.\d+; "
        r"put a newer python3 first on PATH\n",
        ran.stderr,
    ), ran.stderr


# --- ~/.shiv housekeeping -----------------------------------------------------------------------


def test_an_upgrade_removes_the_previous_extraction(zipapp, tmp_path):
    root = tmp_path / "shiv"
    newer = next_build(zipapp, tmp_path / "next" / NAME)
    for app in (zipapp, newer):
        assert run_zipapp(app, "version", home=tmp_path, SHIV_ROOT=str(root)).returncode == 0
    assert shiv_dirs(root) == [f"{NAME}_{build_id(newer)}"]
    leftovers = [p.name for p in root.iterdir() if build_id(zipapp) in p.name]
    assert leftovers == []  # the old build's extraction lock file went too


def test_a_running_older_build_keeps_its_extraction(zipapp, tmp_path):
    root = tmp_path / "shiv"
    newer = next_build(zipapp, tmp_path / "next" / NAME)
    hold = "import sys, time; print('ready', flush=True); sys.stdin.read()"
    running = subprocess.Popen(
        ["python3", str(zipapp), "-c", hold],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=bare_env(tmp_path, SHIV_ROOT=str(root), SHIV_INTERPRETER="1"),
    )
    try:
        assert running.stdout.readline() == "ready\n"
        assert run_zipapp(newer, "version", home=tmp_path, SHIV_ROOT=str(root)).returncode == 0
        assert len(shiv_dirs(root)) == 2
    finally:
        running.stdin.close()
        running.wait(timeout=30)
    assert run_zipapp(newer, "version", home=tmp_path, SHIV_ROOT=str(root)).returncode == 0
    assert shiv_dirs(root) == [f"{NAME}_{build_id(newer)}"]


def test_concurrent_first_runs_of_an_upgrade_all_succeed(zipapp, tmp_path):
    root = tmp_path / "shiv"
    assert run_zipapp(zipapp, "version", home=tmp_path, SHIV_ROOT=str(root)).returncode == 0
    newer = next_build(zipapp, tmp_path / "next" / NAME)
    env = bare_env(tmp_path, SHIV_ROOT=str(root))
    runs = [
        subprocess.Popen(
            ["python3", str(newer), "version"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [run.communicate(timeout=60) + (run.returncode,) for run in runs]
    assert all(rc == 0 and out == f"kubectl-preevy {__version__}\n" for out, _, rc in results), results
    assert shiv_dirs(root) == [f"{NAME}_{build_id(newer)}"]


def test_pruning_touches_only_our_own_build_directories(zipapp, tmp_path):
    root = tmp_path / "shiv"
    other_app = root / f"other-app_{'a' * 64}" / "site-packages" / "kubectl_preevy"
    not_ours = root / f"{NAME}_{'b' * 64}" / "site-packages" / "something_else"
    not_a_build = root / f"{NAME}_notabuildid" / "site-packages" / "kubectl_preevy"
    for path in (other_app, not_ours, not_a_build):
        path.mkdir(parents=True)
    assert run_zipapp(zipapp, "version", home=tmp_path, SHIV_ROOT=str(root)).returncode == 0
    assert all(path.is_dir() for path in (other_app, not_ours, not_a_build))


def test_an_extraction_in_progress_is_not_pruned(zipapp, tmp_path):
    root = tmp_path / "shiv"
    older = root / f"{NAME}_{'c' * 64}"
    (older / "site-packages" / "kubectl_preevy").mkdir(parents=True)
    with open(root / f".{older.name}_lock", "w") as lock:  # shiv holds this while extracting
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert run_zipapp(zipapp, "version", home=tmp_path, SHIV_ROOT=str(root)).returncode == 0
        assert older.is_dir()
    assert run_zipapp(zipapp, "version", home=tmp_path, SHIV_ROOT=str(root)).returncode == 0
    assert not older.exists()


@pytest.mark.parametrize("first_run", [True, False], ids=["first-run", "warm"])
def test_help_starts_quickly(zipapp, tmp_path, first_run):
    """A generous bound (slow CI machines): bench/startup.py measures properly."""
    if not first_run:
        run_zipapp(zipapp, "--help", home=tmp_path)
    started = time.perf_counter()
    shown = run_zipapp(zipapp, "--help", home=tmp_path)
    elapsed = time.perf_counter() - started
    assert shown.returncode == 0
    assert elapsed < (3.0 if first_run else 1.0), f"{elapsed:.2f}s"
