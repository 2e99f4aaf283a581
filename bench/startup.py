#!/usr/bin/env python3
"""Start-up time and peak memory of the kubectl-preevy zipapp; prints a markdown table.

    python3 bench/startup.py [--binary dist/kubectl-preevy] [--runs 20]

Runs in a bare environment (fresh HOME, PATH=/usr/bin:/bin) as a user's shell would:
first run = shiv extracts the bundle (a fresh SHIV_ROOT each time); warm = already extracted.
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BARE_PATH = "/usr/bin:/bin"
# Peak RSS of one child: measured by a helper process whose only child is the command.
RSS_PROBE = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", type=Path, default=ROOT / "dist" / "kubectl-preevy")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    binary = args.binary.resolve()
    if not binary.is_file():
        sys.exit(f"{binary} does not exist: run `make dist` first")
    with tempfile.TemporaryDirectory(prefix="preevy-bench-") as scratch:
        print(report(binary, Path(scratch), args.runs))
    return 0


def report(binary: Path, scratch: Path, runs: int) -> str:
    env = {
        "HOME": str(scratch / "home"),
        "PATH": BARE_PATH,
        "LANG": "C.UTF-8",
        "KUBECACHEDIR": str(scratch / "kubecache"),
    }
    python = shutil.which("python3", path=BARE_PATH) or sys.executable
    plugin_dir = scratch / "bin"
    plugin_dir.mkdir()
    (plugin_dir / "kubectl-preevy").symlink_to(binary)
    rows = [
        ("`python3 -c pass` (the interpreter alone)", [python, "-c", "pass"], env, None),
        (
            "`kubectl-preevy --help`, first run (extracts to ~/.shiv)",
            [python, str(binary), "--help"],
            env,
            lambda i: {"SHIV_ROOT": str(scratch / f"first-run-{i}")},
        ),
        ("`kubectl-preevy --help`, warm", [python, str(binary), "--help"], env, None),
        ("`kubectl-preevy version`, warm", [python, str(binary), "version"], env, None),
        (
            "`./kubectl-preevy --help` from a checkout",
            [python, str(ROOT / "kubectl-preevy"), "--help"],
            env,
            None,
        ),
    ]
    kubectl = shutil.which("kubectl")
    if kubectl:
        through_kubectl = {**env, "PATH": f"{plugin_dir}:{Path(kubectl).parent}:{BARE_PATH}"}
        rows.append(
            (
                "`kubectl preevy --help`, warm (through kubectl)",
                [kubectl, "preevy", "--help"],
                through_kubectl,
                None,
            )
        )
    subprocess.run([python, str(binary), "--help"], env=env, stdout=subprocess.DEVNULL, check=True)  # warm up
    lines = [
        f"kubectl-preevy start-up: {describe(python, binary)}, {runs} runs each",
        "",
        "| command | min | median | peak RSS |",
        "|---|---:|---:|---:|",
    ]
    for title, argv, row_env, per_run_env in rows:
        times = time_runs(argv, row_env, runs, per_run_env)
        rss = peak_rss_mib(python, argv, {**row_env, **(per_run_env("rss") if per_run_env else {})})
        lines.append(f"| {title} | {ms(min(times))} | {ms(statistics.median(times))} | {rss:.0f} MiB |")
    return "\n".join(lines)


def time_runs(argv: list[str], env: dict, runs: int, per_run_env) -> list[float]:
    times = []
    for i in range(runs):
        run_env = {**env, **(per_run_env(i) if per_run_env else {})}
        started = time.perf_counter()
        subprocess.run(argv, env=run_env, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return times


def peak_rss_mib(python: str, argv: list[str], env: dict) -> float:
    out = subprocess.run(
        [python, "-c", RSS_PROBE, *argv], env=env, capture_output=True, text=True, check=True
    )
    kib = int(out.stdout) / (1024 if sys.platform == "darwin" else 1)  # macOS reports bytes
    return kib / 1024


def describe(python: str, binary: Path) -> str:
    version = subprocess.run([python, "--version"], capture_output=True, text=True).stdout.split()[-1]
    return (
        f"{python} {version}, {platform.machine()} {os.cpu_count()} cores, "
        f"zipapp {binary.stat().st_size / 2**20:.1f} MiB"
    )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


if __name__ == "__main__":
    sys.exit(main())
