"""Incremental copy of the project's bind-mount sources into the pod, through `kubectl exec ... tar`.

Two execs at most per `up`: one lists what the pod has (`find | xargs stat`, busybox-compatible),
one deletes what is gone locally and unpacks a tar stream of what is new or changed (same size,
whole-second mtime and permissions = unchanged). The tar is written straight into kubectl's
stdin, so a big tree never sits in memory.
"""

import dataclasses
import gzip
import os
import pathlib
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from kubectl_preevy import console, messages, process
from kubectl_preevy.compose import ComposeProject, SyncedPath, synced_paths
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.kubectl import Kubectl

LIST_TIMEOUT_SECONDS = 120
GZIP_LEVEL = 1  # the tree travels once per change: fast beats small
# $1: the project dir in the pod; the rest: directories to create (bind sources missing locally).
LIST_SCRIPT = (
    'mkdir -p "$1" && cd "$1" && shift && { [ $# -eq 0 ] || mkdir -p -- "$@"; } && '
    "find . -print0 | xargs -r0 stat -c '%f %s %Y %n'"
)
# $1: the project dir in the pod; the rest: paths to delete before unpacking stdin.
APPLY_SCRIPT = 'cd "$1" && shift && {{ [ $# -eq 0 ] || rm -rf -- "$@"; }}{untar}'
UNTAR = " && tar -xzf -"
MAX_DELETE_ARGS_BYTES = 64 * 1024


@dataclasses.dataclass(frozen=True)
class Entry:
    kind: str  # "file", "dir" or "link"
    size: int
    mtime: int  # whole seconds
    mode: int  # permission bits


@dataclasses.dataclass
class SyncPlan:
    send: list[str]  # remote paths (under the project dir), parents before children
    delete: list[str]  # gone locally: removed in the pod
    replace: list[str]  # changed type or link target: removed, then sent again
    unchanged: int  # files and links not sent


@dataclasses.dataclass
class SyncStats:
    files: int = 0
    bytes: int = 0
    unchanged: int = 0
    deleted: int = 0

    def summary(self) -> str:
        return messages.SYNC_SUMMARY.format(
            files=self.files,
            noun="file" if self.files == 1 else "files",
            size=human_size(self.bytes),
            unchanged=self.unchanged,
            deleted=self.deleted,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
        }


def sync(
    kubectl: Kubectl, pod: str, container: str, project: ComposeProject, compress: bool = True
) -> SyncStats:
    try:
        return _sync(kubectl, pod, container, project, compress)
    except (PermissionError, FileNotFoundError) as err:  # a local file unreadable, or gone meanwhile
        raise PreevyError(
            messages.LOCAL_FILE_UNREADABLE.format(path=err.filename, error=err.strerror), ExitCode.FAILURE
        ) from None


def _sync(kubectl: Kubectl, pod: str, container: str, project: ComposeProject, compress: bool) -> SyncStats:
    paths = synced_paths(project)
    if not paths:
        return SyncStats()
    local = scan_local([p for p in paths if p.exists])
    missing = [p.remote for p in paths if not p.exists]
    for path in paths:
        if not path.exists:
            console.info(messages.SYNC_MISSING_SOURCE.format(path=path.local))
    listing = _exec(
        kubectl, pod, container, LIST_SCRIPT, [project.remote_dir, *missing], timeout=LIST_TIMEOUT_SECONDS
    )
    sync_plan = plan(
        {path: entry for path, (entry, _) in local.items()},
        parse_listing(listing),
        [p.remote for p in paths if p.exists],
    )
    if sync_plan.send or sync_plan.delete or sync_plan.replace:
        _apply(kubectl, pod, container, project.remote_dir, sync_plan, local, compress)
    sent_files = [path for path in sync_plan.send if local[path][0].kind != "dir"]
    return SyncStats(
        files=len(sent_files),
        bytes=sum(local[path][0].size for path in sent_files),
        unchanged=sync_plan.unchanged,
        deleted=len(sync_plan.delete),
    )


def scan_local(paths: list[SyncedPath]) -> dict[str, tuple[Entry, pathlib.Path]]:
    """Every file, directory and symlink under the paths, keyed by remote path.

    A root that is a symlink is followed (Docker follows it too); links inside are kept as links.
    """
    found: dict[str, tuple[Entry, pathlib.Path]] = {}
    for root in paths:
        real = pathlib.Path(os.path.realpath(root.local))
        _scan(real, root.remote, os.stat(real), found)
    return found


def _scan(local: pathlib.Path, remote: str, st: os.stat_result, found: dict[str, Any]) -> None:
    entry = _entry(st)
    if entry is None:
        return  # sockets, fifos, devices: not ours to copy
    found[remote] = (entry, local)
    if entry.kind == "dir":
        for child in sorted(os.scandir(local), key=lambda e: e.name):
            _scan(
                pathlib.Path(child.path), f"{remote}/{child.name}", child.stat(follow_symlinks=False), found
            )


def _entry(st: os.stat_result) -> Entry | None:
    kind = _kind(st.st_mode)
    if kind is None:
        return None
    return Entry(
        kind=kind,
        size=st.st_size if kind != "dir" else 0,
        mtime=int(st.st_mtime),
        mode=stat.S_IMODE(st.st_mode),
    )


def _kind(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "link"
    return None


def parse_listing(text: str) -> dict[str, Entry]:
    """`stat -c '%f %s %Y %n'` lines (raw hex mode, size, mtime, ./path) -> entries by path."""
    entries = {}
    for line in text.splitlines():
        parts = line.split(" ", 3)
        if len(parts) != 4 or not parts[3].startswith("./"):
            continue  # ".", or a name with a newline in it: such a file is simply sent again
        try:
            mode, size, mtime = int(parts[0], 16), int(parts[1]), int(parts[2])
        except ValueError:
            continue
        kind = _kind(mode)
        if kind:
            entries[parts[3][2:]] = Entry(
                kind=kind, size=size if kind != "dir" else 0, mtime=mtime, mode=stat.S_IMODE(mode)
            )
    return entries


def plan(local: dict[str, Entry], remote: dict[str, Entry], roots: list[str]) -> SyncPlan:
    """What to send, replace and delete so that the pod's copy of the roots equals the local one."""
    send, replace = [], []
    for path in sorted(local):
        mine, theirs = local[path], remote.get(path)
        if theirs is not None and (
            theirs.kind != mine.kind or (mine.kind == "link" and theirs.size != mine.size)
        ):
            replace.append(path)
            send.append(path)
        elif theirs is None or _changed(mine, theirs):
            send.append(path)
    sent = set(send)
    unchanged = sum(1 for path, entry in local.items() if entry.kind != "dir" and path not in sent)
    gone = [
        path
        for path in remote
        if path not in local
        and any(_under(path, root) for root in roots)
        and not any(_under(path, replaced) for replaced in replace)
    ]
    return SyncPlan(send=send, delete=_topmost(gone), replace=replace, unchanged=unchanged)


def _changed(mine: Entry, theirs: Entry) -> bool:
    if mine.kind == "dir":
        return mine.mode != theirs.mode
    if mine.kind == "link":
        return False
    return (mine.size, mine.mtime, mine.mode) != (theirs.size, theirs.mtime, theirs.mode)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


def _topmost(paths: list[str]) -> list[str]:
    """The paths without those inside another one (rm -rf of the parent covers them)."""
    chosen: list[str] = []
    for path in sorted(paths):
        if not any(_under(path, parent) for parent in chosen):
            chosen.append(path)
    return chosen


def _apply(
    kubectl: Kubectl,
    pod: str,
    container: str,
    remote_dir: str,
    sync_plan: SyncPlan,
    local: dict[str, tuple[Entry, pathlib.Path]],
    compress: bool,
) -> None:
    """Removals first, then the tar; the last batch of removals rides in the exec that unpacks."""
    batches = list(_batches(sync_plan.delete + sync_plan.replace)) or [[]]
    separate, last = (batches, []) if not sync_plan.send else (batches[:-1], batches[-1])
    for batch in separate:
        _exec(
            kubectl,
            pod,
            container,
            APPLY_SCRIPT.format(untar=""),
            [remote_dir, *batch],
            timeout=LIST_TIMEOUT_SECONDS,
        )
    if sync_plan.send:
        script = APPLY_SCRIPT.format(untar=UNTAR if compress else UNTAR.replace("z", ""))
        _stream_tar(
            kubectl,
            pod,
            container,
            script,
            [remote_dir, *last],
            [(path, local[path][1]) for path in sync_plan.send],
            compress,
        )


def _batches(paths: list[str]) -> Iterator[list[str]]:
    """paths in groups that fit a command line."""
    batch: list[str] = []
    size = 0
    for path in paths:
        if batch and size + len(path) > MAX_DELETE_ARGS_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(path)
        size += len(path) + 1
    if batch:
        yield batch


def _exec_argv(pod: str, container: str, script: str, script_args: list[str], stdin: bool) -> list[str]:
    return [
        "exec",
        *(["-i"] if stdin else []),
        pod,
        "-c",
        container,
        "--",
        "sh",
        "-c",
        script,
        "sh",
        *script_args,
    ]


def _exec(
    kubectl: Kubectl, pod: str, container: str, script: str, script_args: list[str], timeout: float
) -> str:
    result = kubectl.run(*_exec_argv(pod, container, script, script_args, stdin=False), timeout=timeout)
    if not result.ok:
        raise _sync_error(kubectl, result)
    return result.stdout


def _stream_tar(
    kubectl: Kubectl,
    pod: str,
    container: str,
    script: str,
    script_args: list[str],
    members: list[tuple[str, pathlib.Path]],
    compress: bool,
) -> None:
    with tempfile.TemporaryFile() as stderr:
        proc = kubectl.popen(
            *_exec_argv(pod, container, script, script_args, stdin=True),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            try:
                assert proc.stdin is not None  # stdin=PIPE
                _write_tar(proc.stdin, members, compress)
            except BrokenPipeError:
                pass  # kubectl ended early: its exit code and stderr say why
            finally:
                _close_quietly(proc.stdin)
            proc.wait()
        finally:
            process.stop(proc)
        stderr.seek(0)
        result = process.Result(
            process.argv_of(proc), proc.returncode, "", stderr.read().decode(errors="replace")
        )
    if not result.ok:
        raise _sync_error(kubectl, result)


def _write_tar(pipe: IO[bytes], members: list[tuple[str, pathlib.Path]], compress: bool) -> None:
    sink = gzip.GzipFile(fileobj=pipe, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) if compress else pipe
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.GNU_FORMAT, dereference=False) as tar:
        for remote_path, local_path in members:
            info = tar.gettarinfo(str(local_path), arcname=remote_path)
            if info.isreg():
                with open(local_path, "rb") as content:
                    tar.addfile(info, content)
            else:
                tar.addfile(info)
    if compress:
        sink.close()


def _close_quietly(pipe: IO[bytes] | None) -> None:
    if pipe is None:
        return
    try:
        pipe.close()
    except BrokenPipeError:
        pass


def _sync_error(kubectl: Kubectl, result: process.Result) -> PreevyError:
    error = kubectl.error(result)
    if error.exit_code != ExitCode.FAILURE:
        return error
    return PreevyError(messages.FILE_SYNC_FAILED.format(error=result.last_error_line()), ExitCode.FAILURE)


def human_size(size: int) -> str:
    scaled: float = size
    for unit in ("B", "KiB", "MiB", "GiB"):
        if scaled < 1024 or unit == "GiB":
            return f"{size} {unit}" if unit == "B" else f"{scaled:.1f} {unit}"
        scaled /= 1024
    return f"{scaled:.1f} GiB"
