"""The kubelet's end of a pod sandbox: the holder process of one pod (see node_holder.py) and
the container instances it runs.

`Holder` starts the holder and speaks its protocol (JSON over a SOCK_SEQPACKET socket pair,
the sender's host pid in SCM_CREDENTIALS: see node_holder.py): it sends `start` and `kill`
requests and resolves each `Instance`'s `started` and `exited` futures from the holder's
events. The socket closing means the sandbox is gone: every instance then counts as exited
(137) and `SandboxGone` tells a starting container to wait for the next sandbox.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pathlib
import signal
import socket
import struct
import subprocess
import sys
import time

from . import podns
from .store import now

log = logging.getLogger("kubesim.kubelet")

HOLDER = str(pathlib.Path(__file__).with_name("node_holder.py"))
HOLDER_START_TIMEOUT = 30.0


class SandboxGone(Exception):
    """The pod's holder died: the container will start in the next one."""


class Instance:
    """One run of a container (what a container runtime calls a container)."""

    def __init__(self, cid: str) -> None:
        loop = asyncio.get_running_loop()
        self.id = cid
        self.host_pid: int | None = None  # the container's pid-namespace init, on the host
        self.idle = False
        self.started: asyncio.Future = loop.create_future()  # -> the "started" event (dict)
        self.exited: asyncio.Future = loop.create_future()  # -> exit code
        self.started_at = now()
        self.started_mono = time.monotonic()

    @property
    def running(self) -> bool:
        return self.started.done() and not self.exited.done()


class Holder:
    """The kubelet's end of one pod holder process (see node_holder.py)."""

    def __init__(self, pod) -> None:
        self.pod = pod
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future = loop.create_future()
        self.dead: asyncio.Future = loop.create_future()
        self.instances: dict[str, Instance] = {}
        self.proc: asyncio.subprocess.Process | None = None
        self.pid: int | None = None  # host pid of the pod's pid-namespace init
        self.pidfd: int | None = None
        self.sock: socket.socket | None = None

    @property
    def alive(self) -> bool:
        return self.ready.done() and not self.ready.exception() and not self.dead.done()

    async def start(self, spec_path: pathlib.Path) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        ours.setblocking(False)
        self.sock = ours
        loop.add_reader(ours.fileno(), self._readable)
        try:
            with open(self.pod.dir / "holder.log", "ab") as errors:
                self.proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-I",
                    "-S",
                    HOLDER,
                    str(spec_path),
                    str(theirs.fileno()),
                    pass_fds=(theirs.fileno(),),
                    stdin=subprocess.DEVNULL,
                    stdout=errors,
                    stderr=errors,
                    start_new_session=True,
                )
        finally:
            theirs.close()
        await asyncio.wait_for(asyncio.shield(self.ready), HOLDER_START_TIMEOUT)
        self.pidfd = podns.pidfd_open(self.pid)

    def _readable(self) -> None:
        while self.sock is not None:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(1 << 16, socket.CMSG_SPACE(12))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._gone()
                return
            pid = None
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(payload) >= 12:
                    pid = struct.unpack("3i", payload[:12])[0]
            try:
                self._dispatch(json.loads(data), pid)
            except Exception:
                log.exception("pod %s: bad message from the holder: %r", self.pod.key, data[:200])

    def _dispatch(self, msg: dict, pid: int | None) -> None:
        event = msg.get("ev")
        if event == "ready":
            self.pid = pid
            if not self.ready.done():
                self.ready.set_result(pid)
        elif event == "fatal":
            if not self.ready.done():
                self.ready.set_exception(RuntimeError(f"pod sandbox: {msg.get('msg')}"))
        elif event == "started":
            inst = self.instances.get(msg.get("id"))
            if inst is not None and not inst.started.done():
                inst.host_pid = pid
                inst.idle = bool(msg.get("idle"))
                inst.started.set_result(msg)
        elif event == "exit":
            inst = self.instances.pop(msg.get("id"), None)
            if inst is not None:
                if not inst.started.done():
                    inst.started.set_result({"error": "the container exited during its creation"})
                if not inst.exited.done():
                    inst.exited.set_result(int(msg.get("code", 128)))

    def _gone(self) -> None:
        if self.sock is not None:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
        if not self.ready.done():
            self.ready.set_exception(RuntimeError("pod sandbox exited during its start (see holder.log)"))
        for inst in list(self.instances.values()):
            if not inst.started.done():
                inst.started.set_result({"error": "pod sandbox gone"})
            if not inst.exited.done():
                inst.exited.set_result(137)
        self.instances.clear()
        if not self.dead.done():
            self.dead.set_result(None)

    def send(self, msg: dict) -> None:
        if self.sock is None or self.dead.done():
            raise ConnectionError("pod sandbox gone")
        try:
            self.sock.send(json.dumps(msg).encode())
        except BlockingIOError:  # the holder is not reading: it is stuck or dying
            raise ConnectionError("pod sandbox not responding") from None

    def kill(self, cid: str, sig: int) -> bool:
        try:
            self.send({"op": "kill", "id": cid, "sig": int(sig)})
            return True
        except ConnectionError:
            return False

    def sigkill(self) -> None:
        """SIGKILL the pod's pid-namespace init: every process of the pod dies."""
        if self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
        elif self.proc is not None and self.proc.returncode is None:
            try:
                self.proc.kill()  # the holder itself then exits on the socket's EOF (close())
            except ProcessLookupError:
                pass

    def close(self) -> None:
        if self.sock is not None:
            try:
                asyncio.get_running_loop().remove_reader(self.sock.fileno())
            except Exception:
                pass
            self.sock.close()
            self.sock = None
        if not self.dead.done():
            self._gone()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None

    async def wait_gone(self, timeout: float) -> None:
        if self.proc is None:
            return
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            log.error("pod %s: holder wrapper %s did not exit", self.pod.key, self.proc.pid)
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
