#!/usr/bin/env python3
"""Builds dist/kubectl-preevy: one reproducible zipapp (shiv) that needs nothing but python3.

    python3 scripts/build_zipapp.py [--output dist/kubectl-preevy] [--work-dir build/zipapp]

Steps: pinned build tools into build/tools (pip --target: no venv, no system change); a wheel
of a clean copy of the project; the pinned runtime dependencies (requirements/zipapp.txt,
hash-checked, platform-independent choice of wheels); compiled extensions removed (PyYAML and
MarkupSafe fall back to pure Python); shiv --reproducible with SOURCE_DATE_EPOCH set to the
last commit's time. Two builds of the same tree are byte-identical. The bytecode is made once, when a
build is first extracted (--compile-pyc): no later run compiles anything, even where
PYTHONDONTWRITEBYTECODE is set, as in many CI images.
"""

import argparse
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD_REQUIREMENTS = ROOT / "requirements" / "build.txt"
ZIPAPP_REQUIREMENTS = ROOT / "requirements" / "zipapp.txt"
PREAMBLE = ROOT / "scripts" / "shiv_preamble.py"
CONSOLE_SCRIPT = "kubectl-preevy"
SHEBANG = "/usr/bin/env python3"
# What goes into the wheel: nothing else of the checkout can leak in (stale build/, caches).
PROJECT_FILES = ("setup.cfg", "pyproject.toml", "README.md", "LICENSE", "src", "templates")
# 1980-01-01, the earliest time a zip entry can carry: used when there is no commit yet.
FALLBACK_EPOCH = 315532800
# Wheels are chosen for this target, whatever machine builds: their Python code is the same
# for every target, and the compiled parts are removed (strip_compiled).
WHEEL_TARGET = (
    "--platform",
    "manylinux2014_x86_64",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
)
# The bundle must work on each of these (python_requires >= 3.10): markers are checked for all.
SUPPORTED_PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14")
SUPPORTED_PLATFORMS = (("linux", "Linux", "posix"), ("darwin", "Darwin", "posix"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "dist" / CONSOLE_SCRIPT)
    parser.add_argument(
        "--work-dir", type=Path, default=ROOT / "build" / "zipapp", help="scratch directory, emptied first"
    )
    parser.add_argument(
        "--tools-dir",
        type=Path,
        default=ROOT / "build" / "tools",
        help="where the pinned build tools are installed (kept between builds)",
    )
    args = parser.parse_args(argv)
    build(args.output.resolve(), args.work_dir.resolve(), args.tools_dir.resolve())
    return 0


def build(output: Path, work_dir: Path, tools_dir: Path) -> None:
    if importlib.util.find_spec("pip") is None:
        sys.exit(f"{sys.executable} has no pip: install it (Debian: apt-get install python3-pip)")
    epoch = source_date_epoch()
    ensure_tools(tools_dir)
    shutil.rmtree(work_dir, ignore_errors=True)
    site = work_dir / "site-packages"
    site.mkdir(parents=True)
    wheel = build_wheel(copy_project(work_dir / "project"), work_dir / "wheel", tools_dir, epoch)
    unpack_wheel(wheel, site)
    install_dependencies(site)
    strip_compiled(site)
    check_requirements(site)
    normalize_modes(site)
    run_shiv(site, output, tools_dir, epoch)
    print(f"built {output} ({output.stat().st_size // 1024} KiB, SOURCE_DATE_EPOCH={epoch})")


def source_date_epoch() -> int:
    """$SOURCE_DATE_EPOCH, else the last commit's time, else a fixed date."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%ct"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        out = ""
    return int(out) if out.isdigit() else FALLBACK_EPOCH


def ensure_tools(tools_dir: Path) -> None:
    """Installs requirements/build.txt into tools_dir once (redone when the file changes)."""
    stamp = tools_dir / ".requirements-sha256"
    wanted = hashlib.sha256(BUILD_REQUIREMENTS.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == wanted:
        return
    staging = tools_dir.with_name(f"{tools_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    pip_install(["--target", str(staging), "-r", str(BUILD_REQUIREMENTS)])
    (staging / stamp.name).write_text(wanted)
    shutil.rmtree(tools_dir, ignore_errors=True)
    try:
        staging.rename(tools_dir)
    except OSError:  # a concurrent build installed them first
        shutil.rmtree(staging, ignore_errors=True)
        if not (stamp.is_file() and stamp.read_text() == wanted):
            raise


def copy_project(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    dest.mkdir(parents=True)
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=ignore)
        elif source.is_file():
            shutil.copy2(source, dest / name)
    return dest


def build_wheel(project: Path, wheel_dir: Path, tools_dir: Path, epoch: int) -> Path:
    """Calls setuptools' PEP 517 backend (pinned, from tools_dir) as any build frontend would."""
    wheel_dir.mkdir()
    code = "import sys, setuptools.build_meta as backend; backend.build_wheel(sys.argv[1])"
    run_quietly([sys.executable, "-c", code, str(wheel_dir)], cwd=project, env=tool_env(tools_dir, epoch))
    (wheel,) = wheel_dir.glob("*.whl")
    return wheel


def unpack_wheel(wheel: Path, site: Path) -> None:
    """A pure-Python wheel unpacked into site-packages is an installed package (shiv finds the
    console script in its entry_points.txt)."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)


def install_dependencies(site: Path) -> None:
    pip_install(["--target", str(site), "--no-compile", *WHEEL_TARGET, "-r", str(ZIPAPP_REQUIREMENTS)])


def strip_compiled(site: Path) -> None:
    """Removes compiled extensions (they match one Python and one CPU; the pure-Python
    fallbacks of PyYAML and MarkupSafe run everywhere) and pip's console scripts (their
    shebang names the build machine's python)."""
    for pattern in ("*.so", "*.pyd", "*.dylib"):
        for path in site.rglob(pattern):
            path.unlink()
    shutil.rmtree(site / "bin", ignore_errors=True)
    for cache in list(site.rglob("__pycache__")):
        shutil.rmtree(cache)
    for record in site.glob("*.dist-info/RECORD"):
        drop_removed_files(record, site)


def drop_removed_files(record: Path, site: Path) -> None:
    """Keeps RECORD true to what is bundled (and free of the removed scripts' hashes, which
    depend on the build machine)."""

    def bundled(line: str) -> bool:
        path = (site / line.rsplit(",", 2)[0]).resolve()
        return path.is_relative_to(site) and path.is_file()

    lines = record.read_text().splitlines(keepends=True)
    record.write_text("".join(line for line in lines if bundled(line)))


def check_requirements(site: Path) -> None:
    """Fails when requirements/zipapp.txt misses a dependency (or pins a version a package
    does not accept) for any supported Python on Linux or macOS."""
    from importlib.metadata import distributions

    from pip._vendor.packaging.requirements import Requirement  # pip is there: we just used it
    from pip._vendor.packaging.utils import canonicalize_name

    installed = {
        canonicalize_name(dist.metadata["Name"]): dist.version for dist in distributions(path=[str(site)])
    }
    problems = []
    for dist in distributions(path=[str(site)]):
        for line in dist.requires or []:
            requirement = Requirement(line)
            if not any(
                requirement.marker is None or requirement.marker.evaluate(env)
                for env in marker_environments()
            ):
                continue
            version = installed.get(canonicalize_name(requirement.name))
            if version is None or not requirement.specifier.contains(version, prereleases=True):
                problems.append(f"{dist.metadata['Name']} needs {requirement} (bundled: {version})")
    if problems:
        sys.exit("requirements/zipapp.txt does not satisfy:\n  " + "\n  ".join(problems))


def marker_environments():
    for python in SUPPORTED_PYTHONS:
        for sys_platform, system, os_name in SUPPORTED_PLATFORMS:
            yield {
                "python_version": python,
                "python_full_version": python + ".0",
                "sys_platform": sys_platform,
                "platform_system": system,
                "os_name": os_name,
                "implementation_name": "cpython",
                "platform_python_implementation": "CPython",
                "extra": "",
            }


def normalize_modes(site: Path) -> None:
    """shiv stores each file's mode: make it independent of the builder's umask."""
    for path in site.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def run_shiv(site: Path, output: Path, tools_dir: Path, epoch: int) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    run_quietly(
        [
            sys.executable,
            "-m",
            "shiv",
            "--reproducible",
            "--site-packages",
            str(site),
            "--compile-pyc",
            "--console-script",
            CONSOLE_SCRIPT,
            "--python",
            SHEBANG,
            "--preamble",
            str(PREAMBLE),
            "--output-file",
            str(partial),
        ],
        env=tool_env(tools_dir, epoch),
    )
    partial.replace(output)


def pip_install(args: list[str]) -> None:
    run_quietly(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-deps",
            "--require-hashes",
            "--only-binary=:all:",
            *args,
        ],
        env={**os.environ, "PIP_ROOT_USER_ACTION": "ignore"},
    )


def run_quietly(argv: list[str], **kwargs) -> None:
    """Runs a build step; its output is shown only when it fails."""
    step = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    if step.returncode != 0:
        sys.stderr.write(step.stdout)
        sys.exit(f"build step failed (exit {step.returncode}): {' '.join(argv)}")


def tool_env(tools_dir: Path, epoch: int) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tools_dir), "SOURCE_DATE_EPOCH": str(epoch)}


if __name__ == "__main__":
    sys.exit(main())
