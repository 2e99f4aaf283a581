"""Code run in a fresh interpreter, with our package importable: for what import-time behaviour a test
checks (pytest has imported every module already)."""

import os
import pathlib
import subprocess
import sys

import kubectl_preevy

SRC = pathlib.Path(kubectl_preevy.__file__).parents[1]


def run_fresh(code: str) -> str:
    """The stdout of code run by a new python3 (a failure raises, with its stderr)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONPATH=str(SRC)),
    ).stdout
