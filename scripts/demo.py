#!/usr/bin/env python3
"""The README's first command: `kubectl preevy up` of examples/hello, end to end.

Uses the cluster of your current kubectl context when one answers; otherwise (or with
--emulator) it starts the local cluster emulator (tests/kubesim) as an embedded cluster.
It prints a working URL, keeps the environment until Enter/Ctrl-C (at once when not on a
terminal), then runs `kubectl preevy down` and stops everything it started.

With the emulator it also shows the reviewer's view: a Gateway (`previews`, HTTP, `*.localhost`)
is created, `up --expose gateway --domain localhost` routes every service through it, and the page
is fetched at its public URL (`*.localhost` is 127.0.0.1 for browsers and curl, no DNS set-up; the
emulator's Gateway listens on a local port, printed in the URL).
"""

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "hello"
PLUGIN = str(REPO / "kubectl-preevy")
ENV_ID = "hello-demo"
GATEWAY = "previews"

sys.path.insert(0, str(REPO))
from tests.kubesim.launcher import Kubesim, stop_process  # noqa: E402
from tests.routing import gateway  # noqa: E402


def log(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)


def cluster_answers(env: dict) -> bool:
    probe = subprocess.run(
        ["kubectl", "version", "--request-timeout=3s", "-o", "json"], env=env, capture_output=True, timeout=20
    )
    return probe.returncode == 0


def start_emulator(workdir: Path) -> Kubesim:
    emulator = Kubesim(workdir).start()
    log(
        f"no cluster at hand: started the local emulator (pid {emulator.proc.pid}), kubeconfig {emulator.kubeconfig}"
    )
    return emulator


def wait_for_url(connect: subprocess.Popen, service: str = "web") -> str:
    """The URL of `service` from the table `kubectl preevy connect` prints on stdout."""
    for line in connect.stdout:
        columns = line.split()
        if len(columns) == 3 and columns[0] == service and re.match(r"https?://", columns[2]):
            return columns[2]
    raise SystemExit(f"demo: `kubectl preevy connect` printed no URL for {service}")


def fetch(url: str, attempts: int = 30) -> str:
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"demo: {url} did not answer")


def fetch_public(url: str, local_port: int, attempts: int = 30) -> str:
    """GET url through 127.0.0.1:local_port with its own Host header (as a browser resolving *.localhost)."""
    host = url.split("://", 1)[1].split("/", 1)[0]
    for _ in range(attempts):
        connection = http.client.HTTPConnection("127.0.0.1", local_port, timeout=5)
        try:
            connection.request("GET", "/", headers={"Host": host})
            response = connection.getresponse()
            if response.status == 200:
                return response.read().decode()
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.5)
    raise SystemExit(f"demo: {url} did not answer through the Gateway's port {local_port}")


def up(env: dict, exposed: bool) -> dict:
    """`kubectl preevy up` (through the emulator's Gateway when exposed), its JSON document."""
    flags = (
        ["--expose", "gateway", "--domain", "localhost", "--gateway", f"default/{GATEWAY}"] if exposed else []
    )
    result = subprocess.run(
        [PLUGIN, "up", "--id", ENV_ID, "-o", "json", *flags],
        cwd=EXAMPLE,
        env=env,
        check=True,
        timeout=600,
        stdout=subprocess.PIPE,
        text=True,
    )
    return json.loads(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--emulator", action="store_true", help="use the local emulator even if a cluster answers"
    )
    args = parser.parse_args()
    env = dict(os.environ)
    workdir = Path(tempfile.mkdtemp(prefix="preevy-demo-"))
    env.setdefault("KUBECACHEDIR", str(workdir / "kubecache"))
    shutil.copy2("/bin/busybox", EXAMPLE / "busybox")  # the example image is FROM scratch + static busybox
    emulator = connect = None
    try:
        if args.emulator or not cluster_answers(env):
            emulator = start_emulator(workdir)
            env = emulator.env
        if emulator:
            # a Gateway for every namespace's previews, HTTP on *.localhost
            emulator.kubectl(
                "apply",
                "-n",
                "default",
                "--server-side",
                "-f",
                "-",
                input=gateway(GATEWAY, "localhost", "All"),
            )
        document = up(env, exposed=emulator is not None)
        if emulator:
            public = next(s["url"] for s in document["services"] if s["service"] == "web")
            local_port = emulator.dataplane()["gateways"][f"default/{GATEWAY}"]["80"]
            reviewer_url = f"{public}:{local_port}/"
            print(f"\nA reviewer opens {reviewer_url} (the emulator's Gateway listens on port {local_port}):")
            print(fetch_public(public, local_port))
        connect = subprocess.Popen(
            [PLUGIN, "connect", "--id", ENV_ID], cwd=EXAMPLE, env=env, stdout=subprocess.PIPE, text=True
        )
        url = wait_for_url(connect)
        page = fetch(url)
        print(f"\nThrough `kubectl preevy connect`, {url} serves:\n{page}")
        if sys.stdin.isatty():
            input(f"The preview environment is live at {url}. Press Enter to tear it down... ")
        return 0
    finally:
        if connect:
            stop_process(connect)
        subprocess.run([PLUGIN, "down", "--id", ENV_ID, "--force"], cwd=EXAMPLE, env=env, timeout=300)
        if emulator:
            emulator.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
