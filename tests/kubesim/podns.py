"""Linux namespace primitives for the kubesim node (standard library only).

Used on both sides: the kubelet (host side: netns sockets, pid listing, pidfds) and the pod
holder program `node_holder.py`, which imports this file by path (it runs as `python3 -I -S`).
Nothing here changes the host's mounts: mount() is only ever called by the holder and its
children, after they left the host mount namespace.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import errno
import fcntl
import os
import socket
import struct
import threading

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def mount(
    source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None
) -> None:
    _check(
        _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
        f"mount {source or fstype} on {target}",
    )


def umount(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def sethostname(name: str) -> None:
    raw = name.encode()[:64]
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def set_process_name(name: str) -> None:
    """What ps shows as the command (the 15-byte comm); best effort."""
    _libc.prctl(15, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)  # PR_SET_NAME


def loopback_up() -> None:
    """ip link set lo up, in the calling thread's network namespace."""
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        ifreq = struct.pack("16sh14x", b"lo", 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(sock, SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh14x", b"lo", flags | IFF_UP))


def ns_id(pid: int | str, kind: str) -> str | None:
    """'pid:[4026531836]'-style identity of a process's namespace; None if the process is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def pidfd_open(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except OSError:
        return None


def _proc_table() -> dict[int, tuple[int, str | None]]:
    """pid -> (ppid, pid-namespace id) for every host process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) < 2 or fields[0] == b"Z":  # zombies are dead already
            continue
        table[int(entry)] = (int(fields[1]), ns_id(entry, "pid"))
    return table


def pod_host_pids(holder_pid: int, extra: tuple[int, ...] = ()) -> set[int]:
    """Every live host pid of a pod: the holder, its descendants (dockerd's shims and containers
    included), every member of their pid namespaces (processes that entered by nsenter), and
    `extra` pids that are still alive."""
    table = _proc_table()
    if holder_pid not in table:
        return {pid for pid in extra if pid in table}
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)

    def with_descendants(roots) -> set[int]:
        seen, todo = set(), list(roots)
        while todo:
            pid = todo.pop()
            if pid not in seen:
                seen.add(pid)
                todo.extend(children.get(pid, ()))
        return seen

    members = with_descendants([holder_pid])
    namespaces = {table[pid][1] for pid in members if table[pid][1]}
    members |= with_descendants([pid for pid, (_, ns) in table.items() if ns in namespaces])
    return members | {pid for pid in extra if pid in table}


class NetnsSockets:
    """Creates sockets inside another network namespace.

    setns(CLONE_NEWNET) only switches the calling thread, and a socket stays in the namespace it
    was created in: one worker thread switches into the pod's netns, creates the socket, switches
    back. Connecting and all I/O then happen anywhere (e.g. on the asyncio loop).
    """

    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="kubesim-netns")
        self._host_fd: int | None = None
        self._broken = False
        self._lock = threading.Lock()

    def _create(self, netns_fd: int, family: int, kind: int) -> socket.socket:
        with self._lock:
            if self._broken:
                raise OSError(errno.EIO, "netns helper thread is stuck in a foreign namespace")
            if self._host_fd is None:
                self._host_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            setns(netns_fd, CLONE_NEWNET)
            try:
                return socket.socket(family, kind)
            finally:
                try:
                    setns(self._host_fd, CLONE_NEWNET)
                except OSError:
                    self._broken = True
                    raise

    async def socket(
        self, netns_fd: int, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM
    ) -> socket.socket:
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self._create, netns_fd, family, kind
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._host_fd is not None:
            try:
                os.close(self._host_fd)
            except OSError:
                pass
            self._host_fd = None
