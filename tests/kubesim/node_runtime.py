"""PodRuntime: what the pod routes (podapi.py), probes and fault injection use of a running pod.

`kubelet.Pod` inherits it. Everything goes through the pod's sandbox: the holder's pid (the
pod's pid-namespace init) or a running container instance's, and the pod's network namespace
(sockets made inside it by podns.NetnsSockets).
"""

from __future__ import annotations

import asyncio
import errno
import pathlib
import shutil
import socket
from typing import Any

from . import node_volumes, podns

NSENTER = shutil.which("nsenter") or "/usr/bin/nsenter"
ENV = shutil.which("env") or "/usr/bin/env"


class PodRuntime:
    """Needs from the pod: holder, by_name, netns_fd, kubelet.netns, dir, name, key."""

    holder: Any
    by_name: dict[str, Any]
    netns_fd: int | None
    kubelet: Any
    dir: pathlib.Path
    name: str
    key: str

    def exec_argv(self, container: str, command: list[str]) -> list[str]:
        """Host argv running `command` in the container's namespaces (its mount and pid
        namespaces while it runs, else the pod's), with its env and working directory.
        Raises OSError when the pod has no running sandbox."""
        holder = self.holder
        if holder is None or not holder.alive:
            raise OSError(errno.ESRCH, f"pod {self.key} has no running sandbox")
        c = self.by_name.get(container)
        inst = c.instance if c is not None else None
        target = inst.host_pid if inst is not None and inst.running and inst.host_pid else holder.pid
        env = (
            dict(c.env)
            if c is not None and c.env
            else {"PATH": node_volumes.DEFAULT_PATH, "HOME": "/root", "HOSTNAME": self.name}
        )
        return [
            NSENTER,
            "-t",
            str(target),
            "--net",
            "--mount",
            "--pid",
            "--uts",
            "--ipc",
            "--wd",
            "--",
            ENV,
            "-i",
            "--",
            *[f"{k}={v}" for k, v in env.items()],
            *command,
        ]

    async def connect_socket(self, port: int) -> socket.socket:
        """A non-blocking socket connected to 127.0.0.1:port (else [::1]:port) in the pod's netns."""
        holder = self.holder
        if holder is None or not holder.alive or self.netns_fd is None:
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"pod {self.key} is not running")
        first_error = None
        for family, address in ((socket.AF_INET, ("127.0.0.1", port)), (socket.AF_INET6, ("::1", port))):
            try:
                return await self._connect(family, address)
            except OSError as e:
                first_error = first_error or e
        raise first_error

    async def _connect(self, family: int, address: tuple) -> socket.socket:
        sock = await self.kubelet.netns.socket(self.netns_fd, family)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, address)
            return sock
        except BaseException:
            sock.close()
            raise

    async def open_connection(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        sock = await self.connect_socket(port)
        try:
            return await asyncio.open_connection(sock=sock)
        except BaseException:
            sock.close()
            raise

    def log_path(self, container: str, previous: bool = False) -> pathlib.Path:
        """The output file of the container's current instance (running, else the newest
        terminated); previous=True: that of lastState.terminated. A file that does not exist
        when there was no such instance."""
        c = self.by_name.get(container)
        if c is None:
            return self.dir / "logs" / container / "none.log"
        return c.log_file(previous)

    def host_pids(self) -> list[int]:
        holder = self.holder
        wrapper = holder is not None and holder.proc is not None and holder.proc.returncode is None
        extra = (holder.proc.pid,) if wrapper else ()
        if holder is None or holder.pid is None or holder.dead.done():
            return sorted(podns.pod_host_pids(-1, extra))
        return sorted(podns.pod_host_pids(holder.pid, extra))
