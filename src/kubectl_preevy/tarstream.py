"""The copy's byte stream: tar members written by the system's GNU tar (fast: C, big writes) straight into
kubectl's stdin (or a compressor's), after the members we wrote there ourselves.

tar's own listing says which members went out, and a mark member (a directory named after the others) says
when every one of them was read: the member named after it (the sync record) is written once that is known,
and tar ends the archive.

Compressors are separate processes (`pigz`, `gzip`, one core each beside tar and kubectl): in-process gzip
runs at ~60 MB/s of the one core Python has. Without any, the caller falls back to in-process gzip.
"""

import dataclasses
import fcntl
import functools
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable

from kubectl_preevy import process

BLOCK = 512
END_OF_ARCHIVE = bytes(2 * BLOCK)
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


@dataclasses.dataclass
class Archived:
    """What tar sent, and how it ended."""

    names: list[str]  # the members that went out, in order (directories without their trailing /)
    returncode: int
    stderr: str  # tar's warnings and errors
    marked: bool  # the mark went out: every member named before it was read whole


def archive(
    tar: str,
    names: str,
    cwd: str,
    out_fd: int,
    mark: str,
    read: Callable[[str], None],
    last: Callable[[str], str],
) -> Archived:
    """GNU tar writes straight into out_fd (no byte passes through us) the members listed in the file names
    (NUL-terminated, relative to cwd), then `mark` (a directory under cwd), then the one member named by
    last(), then the end of the archive. What went out is told by tar's own listing (-v, on its stderr, one
    line as each member starts): read(name) for each member once tar went on to the next one (it was read
    whole); last(tar's warnings so far) once the mark went, so that it can write the member it names (e.g. a
    record of what went).
    The mark's name, never a member's, is what says the members before it are done. tar reads the name after
    the mark from a pipe that stays empty until then (it reads names one by one, as it goes)."""
    tail_read, tail_write = os.pipe()
    argv = [tar, *GNU_TAR_FLAGS, "--verbose", f"--files-from={names}", f"--files-from=/dev/fd/{tail_read}"]
    warnings_start = (f"{tar}: ".encode(), b"tar: ")  # never a member's name: ours are relative, not "tar"
    listed: list[str] = []
    warnings: list[bytes] = []
    marked = False
    try:
        proc = process.popen(
            argv,
            env=dict(os.environ, LC_ALL="C"),  # the listing escapes every byte outside ASCII: one decoding
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out_fd,
            stderr=subprocess.PIPE,
            pass_fds=(tail_read,),
            # without us, its next listed member meets a closed stderr (SIGPIPE), its last name a closed pipe
            ends_without_us=True,
        )
    except BaseException:
        os.close(tail_write)
        raise
    finally:
        os.close(tail_read)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith(warnings_start) or not line.endswith(b"\n"):
                warnings.append(line)
                continue
            name = unescape(line[:-1]).removesuffix("/")
            if listed and not marked:
                read(listed[-1])  # tar went on: the previous member was read whole
            if name == mark and not marked:
                marked = True
                said = b"".join(warnings).decode(errors="replace")
                os.write(tail_write, os.fsencode(last(said)) + b"\0")
                os.close(tail_write)
                tail_write = -1
            listed.append(name)
        returncode = proc.wait()
    finally:
        if tail_write >= 0:
            os.close(tail_write)
        process.stop(proc)
    text = b"".join(warnings).decode(errors="replace")
    process.journal.output(proc, text)
    return Archived([n for n in listed if n != mark], returncode, text, marked)


_ESCAPE = re.compile(rb"\\([0-7]{3}|.)")
_ESCAPED = {b"a": b"\a", b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}


def unescape(line: bytes) -> str:
    """A name as GNU tar lists it in the C locale (its `escape` quoting style: \\ooo, \\n..., \\\\)."""
    if b"\\" not in line:
        return line.decode(errors="surrogateescape")  # os.fsdecode's, on Linux

    def one(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        return bytes([int(code, 8)]) if len(code) == 3 else _ESCAPED.get(code, code)

    return os.fsdecode(_ESCAPE.sub(one, line))


def start_compressor(argv: list[str], out_fd: int) -> subprocess.Popen[bytes]:
    """A compressor writing into out_fd (kubectl's stdin); we write into its stdin."""
    proc = process.popen(
        argv, stdin=subprocess.PIPE, stdout=out_fd, stderr=subprocess.DEVNULL, ends_without_us=True
    )
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
