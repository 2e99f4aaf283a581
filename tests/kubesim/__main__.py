"""python -m tests.kubesim --kubeconfig PATH [--state-dir DIR] [--port N]"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import os
import pathlib
import shutil
import signal
import sys
import tempfile

from aiohttp import web

from .cluster import Cluster
from .server import build_app

log = logging.getLogger("kubesim")

KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: kubesim
  cluster:
    server: {tls_url}
    certificate-authority-data: {ca}
- name: kubesim-http
  cluster:
    server: {url}
users:
- name: kubesim
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: kubesim
  context:
    cluster: kubesim
    user: kubesim
    namespace: default
- name: kubesim-http
  context:
    cluster: kubesim-http
    user: kubesim
    namespace: default
current-context: kubesim
preferences: {{}}
"""


def write_kubeconfig(path: pathlib.Path, url: str, cluster: Cluster) -> None:
    """The admin's kubeconfig, as kind writes it: https with the cluster CA and a client
    certificate in `system:masters`. The plain-http cluster (`kubesim-http`) is the same API
    without credentials (every request there is the admin); fixtures use it for raw HTTP."""
    cert, key = cluster.pki.client_certificate("kubernetes-admin", ("system:masters",))
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    text = KUBECONFIG.format(
        url=url, tls_url=cluster.tls_url, ca=b64(cluster.pki.ca_pem), cert=b64(cert), key=b64(key)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".kubeconfig.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _dump_tasks() -> None:
    """SIGUSR1: log the stack of every asyncio task (debugging a hang)."""
    import io

    for task in asyncio.all_tasks():
        buf = io.StringIO()
        task.print_stack(file=buf)
        log.warning("task %s:\n%s", task.get_name(), buf.getvalue())


async def serve(
    kubeconfig: pathlib.Path,
    state_dir: pathlib.Path,
    port: int,
    watch_history: int = 2000,
    tls_port: int = 0,
) -> None:
    cluster = Cluster(state_dir, watch_history=watch_history)
    await cluster.start()
    app = build_app(cluster)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=logging.getLogger("kubesim.access"),
        access_log_format='%a "%r" %s %b %Tfs',
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, shutdown_timeout=3.0)
    await site.start()
    actual = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]  # a TCP server
    url = f"http://127.0.0.1:{actual}"
    tls_site = web.TCPSite(
        runner, "127.0.0.1", tls_port, shutdown_timeout=3.0, ssl_context=cluster.pki.server_context()
    )
    await tls_site.start()
    tls_actual = tls_site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]  # a TCP server
    cluster.tls_url = f"https://127.0.0.1:{tls_actual}"
    write_kubeconfig(kubeconfig, url, cluster)
    log.info(
        "kubesim serving on %s and %s (state dir %s, kubeconfig %s)",
        url,
        cluster.tls_url,
        state_dir,
        kubeconfig,
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, _dump_tasks)
    await stop.wait()
    log.info("stopping")
    app["api"].close_watches()
    try:
        await cluster.stop()
        log.info("cluster stopped")
    finally:
        await runner.cleanup()
    log.info("stopped")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tests.kubesim", description="A local Kubernetes API server and node for tests."
    )
    p.add_argument(
        "--kubeconfig", required=True, type=pathlib.Path, help="where to write the kubeconfig once serving"
    )
    p.add_argument(
        "--state-dir",
        type=pathlib.Path,
        help="where pods and volumes live (default: a temp dir removed on exit)",
    )
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = ephemeral)")
    p.add_argument(
        "--tls-port",
        type=int,
        default=0,
        help="https port on 127.0.0.1 where credentials are checked (0 = ephemeral)",
    )
    p.add_argument(
        "--watch-history",
        type=int,
        default=2000,
        help="events kept for watch replay (older resourceVersions get 410 Gone)",
    )
    p.add_argument("--log-level", default=os.environ.get("KUBESIM_LOG_LEVEL", "INFO"))
    args = p.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    own_state = args.state_dir is None
    state_dir = pathlib.Path(tempfile.mkdtemp(prefix="kubesim-")) if own_state else args.state_dir
    try:
        asyncio.run(
            serve(
                args.kubeconfig.absolute(),
                state_dir.absolute(),
                args.port,
                args.watch_history,
                args.tls_port,
            )
        )
    finally:
        if own_state:
            shutil.rmtree(state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
