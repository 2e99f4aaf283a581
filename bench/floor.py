"""Issue 13's goal table in one run: each product command side by side with the raw commands doing the
same work, against kubesim, in interleaved A/B pairs. Prints medians, min/max and the ratio product/raw.

    python bench/floor.py [--quick] [--pairs 5] [--files 10000] [--mb 250] [--binary dist/kubectl-preevy]

Rows (product vs raw):
  fresh up       `up` of examples/hello  vs  kubectl apply (the manifest `up --dry-run` prints) + rollout
                 status + port-forward + tar | kubectl exec tar + docker compose up -d
  re-up          a no-change `up`  vs  the floor with the same guarantees: the listing (get -l), a lock
                 (create + delete of a ConfigMap), the pod's file listing (exec find), port-forward,
                 docker compose up -d
  ls             `ls`  vs  kubectl get statefulsets -l ...
  down           `down`  vs  kubectl delete <the same kinds> -l preevy.dev/instance=... --cascade=foreground
                 --wait (on an environment made raw)
  first copy     the product's copy (filesync.sync)  vs  tar c | kubectl exec tar x (uncompressed), into the
                 pod's volume (where the copy writes), as every copy row
  first copy, slow link  the same with every exec stream paced at 100 Mbit/s (kubesim's link fault)  vs
                 tar cz | kubectl exec -i tar xz, unpacked into the pod's volume as the product's copy is
  one-file copy  the copy after one file changed  vs  tar of that one file over exec
  --help         `kubectl preevy --help` (warm)  vs  kubectl version --client

Needs what the end-to-end tests need: kubectl, docker with compose, dockerd, /bin/busybox, root.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import pathlib
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))
from tests.kubesim.launcher import Kubesim, stop_process  # noqa: E402

PREEVY = ROOT / "kubectl-preevy"
LABEL_PROFILE = "preevy.dev/profile-id"
GOALS = {
    "fresh up": 1.05,
    "no-change re-up": 1.2,
    "ls": 2.0,
    "down": 1.1,
    "first copy": 1.0,
    "first copy, slow link": 1.0,
    "one-file copy": 2.0,
    "--help": 1.3,
}


class Bench:
    def __init__(self, base: pathlib.Path, env: dict[str, str], pairs: int) -> None:
        self.base, self.env, self.pairs = base, env, pairs
        self.results: dict[str, tuple[list[float], list[float]]] = {}

    def run(self, argv: list[str], cwd: pathlib.Path | None = None, **kw: object) -> str:
        result = subprocess.run(
            argv,
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            **kw,  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            sys.exit(f"{' '.join(map(str, argv))} failed ({result.returncode}):\n{result.stderr[-3000:]}")
        return str(result.stdout)

    def pair(self, row: str, product: Callable[[int], float], raw: Callable[[int], float]) -> None:
        """Interleaved: the order of A and B alternates, so drift of the machine falls on both."""
        mine, theirs = self.results.setdefault(row, ([], []))
        for i in range(self.pairs):
            if i % 2 == 0:
                mine.append(product(i))
                theirs.append(raw(i))
            else:
                theirs.append(raw(i))
                mine.append(product(i))
            print(f"  {row} #{i}: product {mine[-1]:.3f}s raw {theirs[-1]:.3f}s", file=sys.stderr)

    def table(self) -> str:
        lines = [
            "| measure | product median (min-max) s | raw median (min-max) s | ratio | goal |",
            "|---|---|---|---|---|",
        ]
        for row, (mine, theirs) in self.results.items():
            ratio = statistics.median(mine) / statistics.median(theirs)
            lines.append(
                f"| {row} | {_spread(mine)} | {_spread(theirs)} | {ratio:.2f} | <= {GOALS.get(row, 0):.2f} |"
            )
        return "\n".join(lines)


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def hello(base: pathlib.Path, name: str) -> pathlib.Path:
    project = base / name
    shutil.copytree(ROOT / "examples" / "hello", project, ignore=shutil.ignore_patterns("busybox"))
    shutil.copy("/bin/busybox", project / "busybox")
    return project


def manifest_of(bench: Bench, project: pathlib.Path, env_id: str) -> str:
    """What `up` would apply (the YAML after the copy listing's comments)."""
    return bench.run([str(PREEVY), "up", "--dry-run", "--id", env_id], cwd=project)


def statefulset_of(manifest: str) -> str:
    match = re.search(r"kind: StatefulSet\nmetadata:\n(?:  .*\n)*?  name: (\S+)", manifest)
    if not match:
        sys.exit("no StatefulSet in the dry-run manifest")
    return match.group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def forward(bench: Bench, pod: str, remote: int = 2375) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        ["kubectl", "port-forward", f"pod/{pod}", f"{port}:{remote}"],
        env=bench.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # "Forwarding from ..."
        yield port
    finally:
        stop_process(proc)


def raw_up(bench: Bench, project: pathlib.Path, manifest: str, remote_dir: str) -> None:
    name = statefulset_of(manifest)
    bench.run(["kubectl", "apply", "-f", "-"], input=manifest)
    bench.run(["kubectl", "rollout", "status", f"statefulset/{name}", "--timeout=300s"])
    with forward(bench, f"{name}-0") as port:
        tar = subprocess.Popen(["tar", "c", "-C", str(project), "site"], stdout=subprocess.PIPE)
        bench.run(
            [
                "kubectl",
                "exec",
                "-i",
                f"{name}-0",
                "-c",
                "docker",
                "--",
                "sh",
                "-c",
                f"mkdir -p {remote_dir} && tar x -C {remote_dir}",
            ],
            stdin=tar.stdout,
        )
        tar.wait()
        compose_up(bench, project, port, f"raw{name[-5:]}")


def compose_up(bench: Bench, project: pathlib.Path, port: int, name: str) -> None:
    bench.run(
        ["docker", "-H", f"tcp://127.0.0.1:{port}", "compose", "-p", name, "up", "-d", "--build"], cwd=project
    )


def raw_delete(bench: Bench, manifest: str) -> None:
    """What `down` deletes, as one kubectl delete: every kind the environment has, by its instance label,
    waited for (foreground: the pod gone before its StatefulSet, dockerd stopped gracefully)."""
    instance = re.search(r"preevy.dev/instance: (\S+)", manifest)
    if not instance:
        sys.exit("no preevy.dev/instance label in the dry-run manifest")
    kinds = "persistentvolumeclaim,serviceaccount,configmap,statefulset.apps,role,rolebinding,pod"
    bench.run(
        [
            "kubectl",
            "delete",
            kinds,
            "-l",
            f"preevy.dev/instance={instance.group(1)}",
            "--cascade=foreground",
            "--wait=true",
            "--timeout=180s",
        ]
    )


def bench_lifecycle(bench: Bench, quick: bool) -> None:
    """fresh up, no-change re-up, ls and down, each pair on its own environments."""
    product_dir = hello(bench.base, "product")
    raw_dir = hello(bench.base, "raw")

    def product_up(i: int) -> float:
        return timed(lambda: bench.run([str(PREEVY), "up", "--id", f"p{i}"], cwd=product_dir))

    manifests: dict[int, str] = {}

    def raw_fresh(i: int) -> float:
        manifests[i] = manifest_of(bench, raw_dir, f"r{i}")
        return timed(lambda: raw_up(bench, raw_dir, manifests[i], f"/var/lib/preevy/raw{i}"))

    bench.pair("fresh up", product_up, raw_fresh)

    def raw_reup(i: int) -> float:
        name = statefulset_of(manifests[i])

        def work() -> None:
            bench.run(["kubectl", "get", "statefulsets", "-l", f"{LABEL_PROFILE}", "-o", "json"])
            bench.run(["kubectl", "create", "configmap", f"lock-{name}"])
            # the file listing a copy needs to know that nothing changed
            bench.run(["kubectl", "exec", f"{name}-0", "-c", "docker", "--", "find", "/var/lib/preevy"])
            with forward(bench, f"{name}-0") as port:
                compose_up(bench, raw_dir, port, f"raw{name[-5:]}")
            bench.run(["kubectl", "delete", "configmap", f"lock-{name}"])

        return timed(work)

    bench.pair("no-change re-up", product_up, raw_reup)
    bench.pair(
        "ls",
        lambda i: timed(lambda: bench.run([str(PREEVY), "ls"], cwd=product_dir)),
        lambda i: timed(lambda: bench.run(["kubectl", "get", "statefulsets", "-l", LABEL_PROFILE])),
    )
    bench.pair(
        "down",
        lambda i: timed(lambda: bench.run([str(PREEVY), "down", "--id", f"p{i}"], cwd=product_dir)),
        lambda i: timed(lambda: raw_delete(bench, manifests[i])),
    )


def make_tree(root: pathlib.Path, files: int, total_bytes: int) -> None:
    rng = random.Random(13)
    size = max(1, total_bytes // files)
    for n in range(files):
        directory = root / f"d{n % 100:02d}" / f"e{n % 7}"
        directory.mkdir(parents=True, exist_ok=True)
        # half random (incompressible), half text: what a repository holds
        data = rng.randbytes(size // 2) + (b"line of source code %d\n" % n) * (size // 44)
        (directory / f"f{n}.dat").write_bytes(data[:size])


SLOW_LINK_BYTES_PER_SECOND = 12_500_000  # 100 Mbit/s


def bench_copy(bench: Bench, files: int, megabytes: int, shape_link: Callable[[int | None], object]) -> None:
    """The product's copy, in-process (filesync.sync), against a raw tar over exec into the same pod."""
    from kubectl_preevy import compose, filesync
    from kubectl_preevy.kubectl import Kubectl

    project_dir = bench.base / "copy"
    make_tree(project_dir / "data", files, megabytes * 1_000_000)
    (project_dir / "compose.yaml").write_text(
        "services:\n  app:\n    image: busybox\n    volumes: ['./data:/data']\n"
    )
    manifest = manifest_of(bench, hello(bench.base, "copyhost"), "copyhost")
    name = statefulset_of(manifest)
    pod = f"{name}-0"
    bench.run(["kubectl", "apply", "-f", "-"], input=manifest)
    bench.run(["kubectl", "rollout", "status", f"statefulset/{name}", "--timeout=300s"])
    # the copy's cache of what it last wrote (synccache.py) starts empty, as on a machine that never copied
    kubectl = Kubectl(None, None, "default", dict(bench.env, XDG_CACHE_HOME=str(bench.base / "copy-cache")))
    os.environ.update(bench.env)
    projects = {}

    def project(i: int) -> compose.ComposeProject:
        if i not in projects:
            projects[i] = compose.load_project(None, f"copy{i}", project_dir, bench.env)
        return projects[i]

    def raw_tar(i: int, paths: list[str], target: str = "", gzip: bool = False) -> float:
        """tar c[z] of the paths | kubectl exec -i tar x[z] into target (default /var/lib/preevy/raw<i>: the
        same volume the product's copy writes to, not the pod's /tmp, which may be memory)."""
        target = target or f"/var/lib/preevy/raw{i}"
        z = "z" if gzip else ""

        def work() -> None:
            tar = subprocess.Popen(["tar", f"c{z}", "-C", str(project_dir), *paths], stdout=subprocess.PIPE)
            bench.run(
                [
                    "kubectl",
                    "exec",
                    "-i",
                    pod,
                    "-c",
                    "docker",
                    "--",
                    "sh",
                    "-c",
                    f"mkdir -p {target} && tar x{z} -C {target}",
                ],
                stdin=tar.stdout,
            )
            tar.wait()

        return timed(work)

    for i in range(bench.pairs):
        project(i)  # the compose model is read outside the timings
    bench.pair(
        "first copy",
        lambda i: timed(lambda: filesync.sync(kubectl, pod, "docker", project(i))),
        lambda i: raw_tar(i, ["data"], f"/var/lib/preevy/raw-fast{i}"),
    )
    shape_link(SLOW_LINK_BYTES_PER_SECOND)
    try:
        for i in range(bench.pairs):
            project(100 + i)

        bench.pair(
            "first copy, slow link",
            lambda i: timed(lambda: filesync.sync(kubectl, pod, "docker", project(100 + i))),
            lambda i: raw_tar(i, ["data"], f"/var/lib/preevy/raw-slow{i}", gzip=True),
        )
    finally:
        shape_link(None)
    changed = "data/d05/e5/f5.dat"

    def product_one(i: int) -> float:
        (project_dir / changed).write_bytes(os.urandom(1000) + str(i).encode())
        return timed(lambda: filesync.sync(kubectl, pod, "docker", project(i)))

    bench.pair("one-file copy", product_one, lambda i: raw_tar(i, [changed], f"/var/lib/preevy/raw-one{i}"))
    bench.run(["kubectl", "delete", "-f", "-", "--wait"], input=manifest)


def bench_help(bench: Bench) -> None:
    bench.run([str(PREEVY), "--help"])  # warm
    bench.pair(
        "--help",
        lambda i: timed(lambda: bench.run([str(PREEVY), "--help"])),
        lambda i: timed(lambda: bench.run(["kubectl", "version", "--client"])),
    )


def use_binary(binary: pathlib.Path) -> None:
    global PREEVY
    PREEVY = binary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 pairs, 1,000 files / 25 MB")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--mb", type=int, default=250)
    parser.add_argument("--only", choices=["lifecycle", "copy", "help"], action="append")
    parser.add_argument(
        "--binary",
        type=pathlib.Path,
        default=PREEVY,
        help="the product to measure: the checkout's launcher (default) or the zipapp (dist/kubectl-preevy)",
    )
    args = parser.parse_args()
    use_binary(args.binary.resolve())
    if args.quick:
        args.pairs, args.files, args.mb = 3, 1000, 25
    only = args.only or ["help", "lifecycle", "copy"]
    # the product's modules compiled once, as an installed package's are: with PYTHONDONTWRITEBYTECODE set
    # (as on the development machine) every run of the checkout would otherwise compile them again
    compileall.compile_dir(ROOT / "src", quiet=1)
    with tempfile.TemporaryDirectory(prefix="preevy-floor-") as tmp:
        base = pathlib.Path(tmp)
        sim = Kubesim(base).start()
        try:
            env = dict(sim.env, XDG_CONFIG_HOME=str(base / "config"))
            bench = Bench(base, env, args.pairs)
            if "help" in only:
                bench_help(bench)
            if "lifecycle" in only:
                bench_lifecycle(bench, args.quick)
            if "copy" in only:
                bench_copy(bench, args.files, args.mb, sim.shape_link)
        finally:
            sim.stop()
    print(
        f"{PREEVY.relative_to(ROOT)}; {bench.pairs} interleaved pairs; copy: {args.files} files / {args.mb} MB\n"
    )
    print(bench.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
