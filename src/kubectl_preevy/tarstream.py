"""The copy's byte stream: tar members written by the system's GNU tar (fast: C, big writes), relayed by us
into kubectl's stdin, optionally through a compressor process.

The relay reads GNU tar's output member by member (512-byte headers), so that we know exactly which members
went out, and leaves out tar's end-of-archive blocks: our own members (the sync record) follow, then the end.

Compressors are separate processes (`pigz`, `gzip`, one core each beside tar and kubectl): in-process gzip
runs at ~60 MB/s of the one core Python has. Without any, the caller falls back to in-process gzip.
"""

import dataclasses
import fcntl
import functools
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from typing import Protocol

from kubectl_preevy import process

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
END_OF_ARCHIVE = bytes(2 * BLOCK)
READ_SIZE = 1 << 20
PIPE_SIZE = 1 << 20  # Linux's default /proc/sys/fs/pipe-max-size: fewer, bigger reads and writes
F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Python >= 3.10 on Linux)
# one line of a member name list (-T) per member, exactly as given: no options, no unquoting, no recursion
GNU_TAR_FLAGS = (
    "--create",
    "--file=-",
    "--format=gnu",
    "--blocking-factor=128",
    "--hard-dereference",
    "--no-recursion",
    "--null",
    "--no-unquote",
    "--verbatim-files-from",
)
LONG_NAME_TYPES = (b"L", b"K")  # GNU long name / long link name: a pseudo-member before the real one
COMPRESSORS = {"gzip": ("pigz", "gzip")}  # local programs, preferred first


@functools.cache
def gnu_tar() -> str | None:
    """The path of GNU tar, or None (no tar, or another tar: bsdtar's flags differ)."""
    path = shutil.which("tar")
    if path is None:
        return None
    try:
        result = process.run([path, "--version"], timeout=10)
    except Exception:  # noqa: BLE001 (a tar that does not answer is no tar to use)
        return None
    return path if result.ok and "GNU tar" in result.stdout.split("\n", 1)[0] else None


def compressor_argv(kind: str, level: int) -> list[str] | None:
    """The local program that writes a `kind` stream at that level (pigz before gzip), or None."""
    for name in COMPRESSORS.get(kind, ()):
        if shutil.which(name):
            return [name, f"-{level}", "-c"]
    return None


def widen_pipe(fd: int) -> None:
    try:
        fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass  # not a pipe, or a lower limit: the default size works, a little slower


def small_member(name: str, data: bytes, mode: int = 0o600) -> bytes:
    """A whole tar member (header and padded data) for bytes we hold."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, int(time.time())
    return info.tobuf(tarfile.GNU_FORMAT) + data + bytes(-len(data) % BLOCK)


class Writer(Protocol):
    def write(self, data: bytes | memoryview, /) -> int: ...


@dataclasses.dataclass
class Relayed:
    names: list[str]  # the members that went out, in order (directories without their trailing /)
    returncode: int
    stderr: str
    bytes: int  # what was written out


def relay(argv: list[str], cwd: str, out: Writer) -> Relayed:
    """Run tar (argv) in cwd, write its members to out (not its end-of-archive blocks)."""
    with open(os.devnull, "rb") as devnull, tempfile.TemporaryFile() as stderr:
        proc = process.popen(argv, cwd=cwd, stdin=devnull, stdout=subprocess.PIPE, stderr=stderr)
        try:
            assert proc.stdout is not None
            widen_pipe(proc.stdout.fileno())
            parser = _Members(out)
            fd = proc.stdout.fileno()
            while not parser.done and (chunk := os.read(fd, READ_SIZE)):
                parser.feed(chunk)
            while os.read(fd, READ_SIZE):  # padding after the end-of-archive blocks
                pass
            returncode = proc.wait()
        finally:
            process.stop(proc)
        stderr.seek(0)
        text = stderr.read().decode(errors="replace")
        process.journal.output(proc, text)
    return Relayed(parser.names, returncode, text, parser.written)


class _Members:
    """A tar stream parsed as it passes: headers are read, data is passed on untouched."""

    def __init__(self, out: Writer) -> None:
        self.out = out
        self.names: list[str] = []
        self.written = 0
        self.done = False
        self._carry = b""  # the start of a header split across reads
        self._left = 0  # bytes of the current member's (padded) data still to pass
        self._long = bytearray()  # a GNU long name being read
        self._long_left = 0

    def feed(self, chunk: bytes) -> None:
        data = self._carry + chunk if self._carry else chunk
        self._carry = b""
        view = memoryview(data)
        i = 0
        while i < len(data):
            if self._left:
                n = min(self._left, len(data) - i)
                if self._long_left:
                    take = min(n, self._long_left)
                    self._long += view[i : i + take]
                    self._long_left -= take
                i += n
                self._left -= n
                continue
            if len(data) - i < BLOCK:
                self._carry = bytes(view[i:])
                break
            header = view[i : i + BLOCK]
            if header == ZERO_BLOCK:
                self.done = True
                break
            kind = bytes(header[156:157])
            size = _size(header)
            if kind in LONG_NAME_TYPES:
                if kind == b"L":
                    self._long, self._long_left = bytearray(), size
            else:
                raw = self._long.split(b"\0", 1)[0] if self._long else bytes(header[:100]).split(b"\0", 1)[0]
                self.names.append(os.fsdecode(bytes(raw)).rstrip("/"))
                self._long = bytearray()
            i += BLOCK
            self._left = size + (-size % BLOCK)
        end = len(data) - len(self._carry) if not self.done else i
        if end:
            self.out.write(view[:end])
            self.written += end


def _size(header: memoryview) -> int:
    field = bytes(header[124:136])
    if field[0] & 0x80:  # base-256, for sizes of 8 GiB and more
        return int.from_bytes(field[1:], "big")
    return int(field.split(b"\0", 1)[0].strip() or b"0", 8)


def start_compressor(argv: list[str], out_fd: int) -> subprocess.Popen[bytes]:
    """A compressor writing into out_fd (kubectl's stdin); we write into its stdin."""
    proc = process.popen(argv, stdin=subprocess.PIPE, stdout=out_fd, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    widen_pipe(proc.stdin.fileno())
    return proc


def finish_compressor(proc: subprocess.Popen[bytes]) -> int:
    try:
        if proc.stdin is not None:
            proc.stdin.close()
    except BrokenPipeError:
        pass
    code = proc.wait()
    process.stop(proc)
    return code
