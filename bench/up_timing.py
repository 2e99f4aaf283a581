"""Time `kubectl preevy up` of examples/hello against kubesim: a first up, a second one with no change,
one after editing a file, and `down`. Prints a markdown table (median of --runs).

    python bench/up_timing.py [--runs 3]

Needs what the end-to-end tests need: kubectl, docker with compose, dockerd, /bin/busybox, root.
"""

import argparse
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.kubesim.launcher import Kubesim  # noqa: E402

PREEVY = ROOT / "kubectl-preevy"
STEPS = ("first up", "second up (no change)", "up after editing a file", "down")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="preevy-bench-") as tmp:
        base = pathlib.Path(tmp)
        sim = Kubesim(base).start()
        try:
            env = dict(sim.env, XDG_CONFIG_HOME=str(base / "config"))
            times = {step: [] for step in STEPS}
            for run in range(runs):
                for step, seconds in measure(base / f"run{run}", env, f"bench-{run}").items():
                    times[step].append(seconds)
        finally:
            sim.stop()
    print("| step | seconds (median of %d) |\n|---|---|" % runs)
    for step in STEPS:
        print(f"| {step} | {statistics.median(times[step]):.2f} |")
    return 0


def measure(project_dir: pathlib.Path, env: dict, env_id: str) -> dict[str, float]:
    shutil.copytree(ROOT / "examples" / "hello", project_dir, ignore=shutil.ignore_patterns("busybox"))
    shutil.copy("/bin/busybox", project_dir / "busybox")
    results = {
        STEPS[0]: timed(["up", "--id", env_id], project_dir, env),
        STEPS[1]: timed(["up", "--id", env_id], project_dir, env),
    }
    (project_dir / "site" / "index.html").write_text("<h1>edited</h1>\n")
    results[STEPS[2]] = timed(["up", "--id", env_id], project_dir, env)
    results[STEPS[3]] = timed(["down", "--id", env_id], project_dir, env)
    return results


def timed(args: list[str], cwd: pathlib.Path, env: dict) -> float:
    started = time.monotonic()
    result = subprocess.run(
        [str(PREEVY), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        sys.exit(f"kubectl preevy {' '.join(args)} failed:\n{result.stderr}")
    return time.monotonic() - started


if __name__ == "__main__":
    sys.exit(main())
