"""Helpers of the packaging tests: building with the real scripts, and a bare environment
(python3 only, fresh HOME) to run what they built."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
NAME = "kubectl-preevy"


def bare_path() -> str:
    """PATH of a machine that has python3 and nothing else we need: Debian's /usr/bin/python3
    if it is there, else the directory of the python3 running the tests."""
    if Path("/usr/bin/python3").exists():
        return "/usr/bin:/bin"
    return f"{Path(sys.executable).parent}:/usr/bin:/bin"


def bare_env(home: Path, **extra: str) -> dict[str, str]:
    """Like `env -i HOME=<home> PATH=...`: no venv, no PYTHONPATH, nothing inherited."""
    return {"HOME": str(home), "PATH": bare_path(), "LANG": "C.UTF-8", **extra}


def run_script(name: str, *args: str) -> str:
    """Runs scripts/<name> as `make` does; its output, or a test failure showing it."""
    step = subprocess.run([sys.executable, str(SCRIPTS / name), *args], capture_output=True, text=True)
    if step.returncode != 0:
        pytest.fail(f"{name} {' '.join(args)} failed ({step.returncode}):\n{step.stdout}{step.stderr}")
    return step.stdout


def build_zipapp(output: Path, work_dir: Path) -> Path:
    run_script("build_zipapp.py", "--output", str(output), "--work-dir", str(work_dir))
    return output


def run_zipapp(
    zipapp: Path, *args: str, home: Path, python: str = "python3", timeout: float = 60, **extra_env: str
) -> subprocess.CompletedProcess:
    """`python3 <zipapp> args...` in a bare environment."""
    return subprocess.run(
        [python, str(zipapp), *args],
        env=bare_env(home, **extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
