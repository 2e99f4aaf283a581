"""Incremental copy of the project's bind-mount sources into the pod, through `kubectl exec ... tar`.

The copy behaves like a bind mount of the user's files, and never loses what containers wrote:
the pod keeps, next to the copy (`<project dir>/.preevy-sync/record`, outside what any container
mounts), a record of what each sync sent (path, kind, size, mtime, mode). A sync then

- sends what is new locally, and what changed locally since the record (local edits win);
- leaves alone a file unchanged locally, even if a container changed or removed it in the pod;
- deletes in the pod only what the record says we sent and the user deleted (directories only
  when empty: what a container wrote in them stays);
- never deletes nor overwrites a path that is not in the record (written by a container, or by an
  older version of this tool): a pod file equal to the local one is adopted into the record, a
  different one is kept and named in one line.

Files that are themselves mounted (single-file binds, secrets, configs) are rewritten in place
(`cat > file`: same inode), so a running container sees the edit; tar would unlink and create a new
file that the container's mount never shows.

One exec per copy (a Session, started before the local scan: see NEXT), into which we send scripts: the
listing (`find | xargs stat` and the record, BusyBox-compatible) when it is needed, then the write:
deletions, a tar stream unpacked, and the new record renamed over the old (written last, so a broken copy
leaves the old record and the list of paths it was about to send, `.preevy-sync/pending`, which the next
sync treats as ours). The listing is skipped for a first copy from this machine into an empty directory,
and for a change against the record we last wrote there (synccache.py), both checked in the pod first.
The tar is written straight into kubectl's stdin, so a big tree never sits in memory.
"""

import dataclasses
import gzip
import hashlib
import io
import ipaddress
import json
import os
import pathlib
import re
import secrets
import shlex
import signal
import stat
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, NoReturn, Protocol, TypeVar

from kubectl_preevy import (
    compose,
    console,
    ignore,
    localscan,
    messages,
    parallel,
    process,
    retry,
    syncplan,
    tarstream,
)
from kubectl_preevy.compose import ComposeProject, SyncedPath
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.kubectl import Kubectl
from kubectl_preevy.localscan import Entry as Entry  # also filesync.Entry: what a sync plan holds
from kubectl_preevy.synccache import SyncCache
from kubectl_preevy.syncplan import Remote, parse_record, plan, record_json
from kubectl_preevy.syncplan import SyncPlan as SyncPlan  # also filesync.SyncPlan: what preview returns

_T = TypeVar("_T")

LIST_TIMEOUT_SECONDS = 120
GZIP_LEVEL = 1  # the tree travels once per change: fast beats small
STREAM_PLAIN = "plain tar (the cluster is on this machine)"
STREAM_PLAIN_CHOSEN = "plain tar (PREEVY_COPY_STREAM)"
STREAM_GZIP = "tar.gz, level {level}"
STREAM_SPLIT = "plain tar in 2 streams"
STREAM_MEASURED = "{kind} (the link measured {rate}/s)"
STREAM_VARIABLE = "PREEVY_COPY_STREAM"  # `tar` or `gzip`: the choice made by hand
# A big copy (unless PREEVY_COPY_STREAM says) first measures the link, in the exec that unpacks: the pod says
# "ready", reads PROBE_SLACK bytes, says "mid", reads PROBE_MEASURED more (sent once "mid" came: BusyBox's
# `head -c` reads ahead of what it passes on), says "probed" (both lines travel back alike: the time from
# "mid" to "probed" is the second part's upload and a round trip, whatever the buffers on the way hold; an
# idle link's slack, which a paced link gives to the first bytes, went to the first part), then it reads the
# stream's kind. Below SLOW_LINK bytes/s (one core of gzip -1 runs at 60-100 MB/s: well ahead of such a
# link) the tar goes gzipped.
PROBE_MIN_SEND = 16 << 20  # smaller copies are not measured: the probe would cost more than it saves
PROBE_MEASURED = 256 << 10
PROBE_SLACK = 256 << 10  # an exec that waited while we planned (after the listing): that long a link's slack
# a new exec's (Session.measure): its link idle at most the round trip of the "ready" line; every byte of the
# probe is a byte less of the copy on a slow link (64 KiB: 5 ms at 100 Mbit/s)
PROBE_SLACK_NEW = 64 << 10


def probe_lines(slack: int) -> str:
    return (
        f"echo ready; head -c {slack} >/dev/null || exit 1; echo mid; "
        f"head -c {PROBE_MEASURED} >/dev/null || exit 1; echo probed; "
    )


SYSTEM_TAR_MEMBERS = 100  # a send of fewer members (and under PROBE_MIN_SEND) is written in-process
# A first copy from here whose scan takes longer than this (thousands of files: likely a big copy) measures the
# link meanwhile, in the exec started for it (Session.measure): the probe then costs nothing on the way
EARLY_PROBE_AFTER = 0.015
SLOW_LINK_BYTES_PER_SECOND = 25_000_000
VERY_SLOW_LINK_BYTES_PER_SECOND = 15_000_000  # gzip -6 then: ~60 MB/s of one core, still well ahead
STATE_DIR = ".preevy-sync"  # under the remote project dir, beside relative/ and absolute/
RECORD = f"{STATE_DIR}/record"
RECORD_NEW = f"{STATE_DIR}/record.new"
PENDING = f"{STATE_DIR}/pending"
PROBE_PART = probe_lines(PROBE_SLACK) + "read z; "

INPLACE_DIR = f"{STATE_DIR}/inplace"
COPY_ROOTS = ("relative", "absolute")
CHANGED_SIZE = -1  # a recorded size no file has: "send it again" (it changed while it was sent)
SECTION_MARK = "#preevy-sync "
# Only POSIX sh and BusyBox applets with their BusyBox flags (docker:dind is Alpine): no -printf,
# no GNU long options. $1: the project dir in the pod; with $2 = "write", the rest are directories
# to create (bind sources missing locally); "read" creates nothing (`up --dry-run`).
LIST_SCRIPT = (
    'd=$1; m=$2; shift 2; if [ "$m" = write ]; then mkdir -p "$d/' + STATE_DIR + '" || exit 1; fi; '
    'cd "$d" 2>/dev/null || exit 0; '
    'if [ "$m" = write ] && [ $# -gt 0 ]; then mkdir -p -- "$@" || exit 1; fi; '
    f"echo '{SECTION_MARK}record'; cat {RECORD} 2>/dev/null; echo; "
    f"echo '{SECTION_MARK}pending'; cat {PENDING} 2>/dev/null; echo; "
    f"echo '{SECTION_MARK}files'; "
    f"for r in {' '.join(COPY_ROOTS)}; do "
    'if [ -e "$r" ]; then stat -c %n "$r" >/dev/null || exit 1; '
    # a file a container removes meanwhile is simply not listed
    "find \"$r\" -print0 | xargs -0 stat -c '%f %s %Y %n' 2>/dev/null; fi; done"
)
# $1: the project dir; then f:PATH (a file or link to delete), d:PATH (a directory to remove if
# empty, deepest first), i:MODE:PATH (a file to rewrite in place from INPLACE_DIR after unpacking).
DELETE_PART = (
    'cd "$1" || exit 1; shift; '
    '( for a do shift; case $a in f:*) set -- "$@" "${a#f:}";; esac; done; '
    '[ $# -eq 0 ] || exec rm -f -- "$@" ) || exit 1; '
    'for a do case $a in d:*) rmdir -- "${a#d:}" 2>/dev/null;; esac; done; '
)
UNPACK_PART = (
    "tar -xf - || exit 1; "
    'for a do case $a in i:*) a=${a#i:}; m=${a%%:*}; p=${a#*:}; s="' + INPLACE_DIR + '/$p"; '
    '[ ! -f "$s" ] || { cat "$s" > "$p" && chmod "$m" "$p" && touch -r "$s" "$p"; } || exit 1;; esac; done; '
    f"{{ [ ! -e {INPLACE_DIR} ] || rm -rf {INPLACE_DIR}; }} && mv -f {RECORD_NEW} {RECORD} && "
    f"rm -f {PENDING} {STATE_DIR}/part-*"  # and what a failed split left (split_start)
)
# A big plain stream (a fast link) is unpacked by two tars at once: one reads the session's stream, the other
# a FIFO that a second exec writes into (a split). Creating thousands of files is what takes the pod's time on
# a fast link (one tar: one core, one file at a time); the record is renamed into place only once both tars
# ended well and the second one reached its last member (SPLIT_END), so a failed half is a failed copy.
SPLIT_MIN_MEMBERS = 2000
SPLIT_MIN_BYTES = 64 << 20
SPLIT_WAIT_TICKS = 1500  # how long (0.02 s each: 30 s) either side waits in the pod for the other to be there
SPLIT_PREFIX = f"{STATE_DIR}/part-"


def split_start(fifo: str) -> str:
    """Before the stream's tar: the FIFO made, its tar started in the background ($b)."""
    return f"rm -f {SPLIT_PREFIX}* && mkfifo {fifo} || exit 1; tar -xf {fifo} & b=$!; "


def split_unpack(fifo: str) -> str:
    """UNPACK_PART's tar, then the background one's end: it ran from a writer that opened the FIFO
    ({fifo}.started) and unpacked the whole part ({fifo}.end, its last member)."""
    return (
        "tar -xf - || { kill $b; exit 1; }; "
        f"n=0; while [ ! -e {fifo}.started ]; do "
        f"[ $n -lt {SPLIT_WAIT_TICKS} ] || {{ kill $b; exit 1; }}; n=$((n+1)); sleep 0.02; done; "
        f"wait $b && [ -e {fifo}.end ] || exit 1; rm -f {fifo} {fifo}.started {fifo}.end; "
    )


def split_writer(remote_dir: str, fifo: str) -> str:
    """The second exec's command: its stdin into the FIFO, once that exists (opened before saying so)."""
    return (  # started before the first stream's script ran: the directory may not exist yet
        f'f={shlex.quote(remote_dir)}/{fifo}; n=0; until [ -p "$f" ]; do '
        f"[ $n -lt {SPLIT_WAIT_TICKS} ] || exit 1; n=$((n+1)); sleep 0.02; done; "
        'exec 3>"$f" && : > "$f.started" && exec cat >&3'
    )


MAX_ARGS_BYTES = 64 * 1024
MAX_GUARDS = 64
# One exec carries a whole copy: its command (NEXT) reads a script from stdin (its length on a line, then
# the script, ending with SCRIPT_END) and evaluates it; a script that lists ends with NEXT again, so the
# listing and the write share the exec, and the exec starts while the local files are scanned. The `set --`
# line of each script gives it its arguments ($1...), quoted by us.
SCRIPT_END = "#preevy-sync script end"
NEXT = f'IFS= read -r n && s=$(head -c "$n") && case $s in *"{SCRIPT_END}") eval "$s";; *) exit 1;; esac'
# Writes without a listing first say whether the pod's copy is as assumed, before they read anything: a
# copy never made from here goes only into a directory holding nothing of ours or of anyone's (m:DIR: a
# missing bind source, made empty); one made from here only when the record is what we last wrote
# (h:SHA256), no copy was left half done, and each path about to be written or removed is as the record
# says (g:EXPECTED:PATH, EXPECTED being `stat -c %f,%s,%Y` or - for none).
FRESH = "fresh"
FRESH_PART = (
    f"d=$1; for p in {STATE_DIR}/record {STATE_DIR}/pending {' '.join(COPY_ROOTS)}; do "
    'if [ -e "$d/$p" ] || [ -L "$d/$p" ]; then echo taken; ' + NEXT + "; exit $?; fi; done; "
    f'mkdir -p "$d/{STATE_DIR}" || exit 1; '
    'for a do case $a in m:*) mkdir -p -- "$d/${a#m:}" || exit 1;; esac; done; '
    f"echo {FRESH}; "
)
CURRENT = "current"
STALE = "{ echo stale; " + NEXT + "; exit $?; }"
PROBE_SCRIPT = probe_lines(PROBE_SLACK_NEW) + NEXT  # Session.measure
RECORD_AS_CACHED = (  # $1: the project dir, $2: the cached record's sha256 (h:)
    f'[ ! -e "$1/{PENDING}" ] && [ "$(sha256sum < "$1/{RECORD}" 2>/dev/null)" = "${{2#h:}}  -" ]'
)
# Session.check: the record's part of GUARD_PART, run while the files are scanned; its answer: CURRENT or stale
CHECK_SCRIPT = f"if {RECORD_AS_CACHED}; then echo {CURRENT}; else echo stale; fi; {NEXT}"
GUARD_PATHS_PART = (  # GUARD_PART once CHECK_SCRIPT said the record is as cached
    f'cd "$1" 2>/dev/null || {STALE}; '
    "for a do case $a in g:*) a=${a#g:}; e=${a%%:*}; p=${a#*:}; "
    's=$(stat -c %f,%s,%Y -- "$p" 2>/dev/null) || s=-; '
    f'[ "$s" = "$e" ] || {STALE};; esac; done; '
    f"echo {CURRENT}; "
)
GUARD_PART = f"{RECORD_AS_CACHED} || {STALE}; {GUARD_PATHS_PART}"  # $2: h:SHA256


@dataclasses.dataclass
class SyncStats:
    """What a copy sent, left and deleted, and how."""

    files: int = 0
    bytes: int = 0
    unchanged: int = 0
    deleted: int = 0
    stream: str = ""  # how the files travelled (STREAM_PLAIN or STREAM_GZIP), when any did
    measured: float | None = None  # the link's rate (bytes/s), when it was measured
    level: int = 0  # gzip's, 0: plain tar
    streams: int = 1  # tar streams unpacked at once

    def summary(self) -> str:
        line = messages.SYNC_SUMMARY.format(
            files=self.files,
            noun="file" if self.files == 1 else "files",
            size=human_size(self.bytes),
            unchanged=self.unchanged,
            deleted=self.deleted,
        )
        return line + messages.SYNC_STREAM.format(stream=self.stream) if self.stream else line

    def as_json(self) -> dict[str, int]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
        }


_Bytes = bytes  # Sent has a field named bytes


@dataclasses.dataclass
class Sent:
    """What one tar stream really carried: the files that changed or vanished while being read."""

    changed: list[str] = dataclasses.field(default_factory=list)
    vanished: list[str] = dataclasses.field(default_factory=list)
    bytes: int = 0
    rate: float | None = None  # bytes/s the link was measured at, when it was
    level: int = 0  # gzip's, 0: plain tar
    record: _Bytes = b""  # the record it ends with (RECORD_NEW), as written
    streams: int = 1  # 2: split (SPLIT_MIN_MEMBERS)
    refused: bool = False  # the pod's copy was not as assumed (FRESH_PART, GUARD_PART): nothing was written


# --- the sync ----------------------------------------------------------------------------------------


class Replies(Protocol):
    """The script's stdout, as the writers read it: line by line."""

    def readline(self) -> bytes: ...


Writer = Callable[[IO[bytes], Replies | None], Sent]  # (the script's stdin, its stdout) -> what went


class Shell(Protocol):
    """Where the scripts run: the pod (PodShell), or a local BusyBox in tests. With a cache (the record
    last written there from here), a copy may skip the listing."""

    @property
    def cache(self) -> SyncCache | None: ...

    def run(self, script: str, args: list[str]) -> str: ...

    def open(self, command: str) -> "Opened":
        """Start `sh -c command` there, its stdin and stdout ours."""
        ...


@dataclasses.dataclass(frozen=True)
class Stream:
    """How the tar travels."""

    compress: bool
    measure: bool = False  # chosen by us: a big copy measures the link first, and decides by it
    # the link's rate (bytes/s), when it was measured while the files were scanned
    measured: float | None = None
    # the system's GNU tar writes the members, when there is one: None, for a send of SYSTEM_TAR_MEMBERS or
    # more (a smaller one is written in-process: no tar process to start); True: always; False: never
    system_tar: bool | None = None
    # two streams at once (SPLIT_MIN_MEMBERS): None, for a big plain send by GNU tar; True: for any send by
    # GNU tar of two members or more, plain; False: never
    split: bool | None = None


def sync(
    kubectl: Kubectl,
    pod: str,
    container: str,
    project: ComposeProject,
    compress: bool | None = None,
    *,
    system_tar: bool | None = None,
) -> SyncStats:
    """compress None: chosen by the link (choose_stream)."""
    local = _local(kubectl.server_url())
    stream = choose_stream(local, kubectl.environ) if compress is None else Stream(compress)
    stream = dataclasses.replace(stream, system_tar=system_tar)
    stats = sync_with(PodShell(kubectl, pod, container), project, stream)
    if stats.files:
        stats.stream = describe_stream(local, stats)
    return stats


def describe_stream(local: bool, stats: SyncStats) -> str:
    gzipped = STREAM_GZIP.format(level=stats.level)
    plain = STREAM_SPLIT if stats.streams > 1 else "plain tar"
    if stats.measured is not None:
        kind = gzipped if stats.level else plain
        return STREAM_MEASURED.format(kind=kind, rate=human_size(int(stats.measured)))
    if stats.level:
        return gzipped
    return (STREAM_PLAIN if local else STREAM_PLAIN_CHOSEN).replace("plain tar", plain, 1)


def choose_stream(local: bool, environ: Mapping[str, str]) -> Stream:
    """A big copy measures the link first and goes gzipped only when it is slow; a small one goes plain to a
    cluster on this machine, gzipped to another; PREEVY_COPY_STREAM=tar|gzip decides instead."""
    chosen = environ.get(STREAM_VARIABLE, "").strip().lower()
    if chosen in ("tar", "plain", "gzip", "gz"):
        return Stream(compress=chosen in ("gzip", "gz"))
    return Stream(compress=not local, measure=True)


def choose_compress(local: bool, environ: Mapping[str, str]) -> bool:
    """Whether the copy starts gzipped: not when the API server (and so the pod's exec stream) is on this
    machine, where compressing (~60 MB/s of one core) is slower than the link; otherwise yes, the link
    being unknown and often slower than that. PREEVY_COPY_STREAM=tar|gzip decides instead."""
    return choose_stream(local, environ).compress


def _local(server_url: str) -> bool:
    host = urllib.parse.urlsplit(server_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def sync_with(shell: Shell, project: ComposeProject, compress: bool | Stream = True) -> SyncStats:
    """Copy what changed; a file changing while it is sent is sent once more, then as read."""
    stream = compress if isinstance(compress, Stream) else Stream(compress)
    try:
        stats, sent = _sync_once(shell, project, stream)
        if sent.changed:
            console.info(messages.SYNC_CHANGED_RETRY.format(paths=_some(sent.changed)))
            again, sent = _sync_once(shell, project, stream, report=False)
            stats.files += again.files
            stats.bytes += again.bytes
            if sent.changed:
                console.info(messages.SYNC_CHANGED_AS_READ.format(paths=_some(sent.changed)))
        return stats
    except PermissionError as err:  # a local file unreadable
        raise PreevyError(
            messages.LOCAL_FILE_UNREADABLE.format(path=err.filename, error=err.strerror), ExitCode.FAILURE
        ) from None


def _sync_once(
    shell: Shell, project: ComposeProject, stream: Stream, report: bool = True
) -> tuple[SyncStats, Sent]:
    """One exec (Session): the listing when needed, and the copy; report=False (the retry): the lines
    already said are not repeated."""
    paths = compose.synced_paths(project)
    if not paths:
        return SyncStats(), Sent()
    session = Session(shell)  # the exec starts while we scan
    try:
        return _sync_in(session, paths, project, stream, report)
    finally:
        session.stop()


def _sync_in(
    session: "Session", paths: list[SyncedPath], project: ComposeProject, stream: Stream, report: bool
) -> tuple[SyncStats, Sent]:
    for path in paths:
        if not path.exists and report:
            console.info(messages.SYNC_MISSING_SOURCE.format(path=path.local))
    cache = session.cache
    cached = cache.load(project.remote_dir) if cache is not None else None
    scanned = threading.Event()

    roots = {p.remote: pathlib.Path(os.path.realpath(p.local)) for p in paths if p.exists}
    missing = [p.remote for p in paths if not p.exists]
    mounted = mounted_files(project)

    def scan_and_plan() -> tuple[localscan.Found, dict[str, Entry], Planned | None]:
        """The scan, and the plan that skips the listing (if any), made while the link is measured or the
        pod's record checked."""
        try:
            local = localscan.scan([p for p in paths if p.exists], excluder_of(project))
        finally:
            scanned.set()
        entries = {path: entry for path, (entry, _) in local.items()}
        if cache is None:
            return local, entries, None
        return local, entries, _plan_without_listing(cached, (entries, local, roots), missing, mounted)

    # meanwhile, a first copy from here measures the link; a later one checks the pod's record is as cached
    early = stream.measure and cache is not None and cached is None
    check = cache is not None and cached is not None and not missing
    meanwhile = (
        (lambda: session.measure(scanned))
        if early
        else (lambda: session.check(project.remote_dir, record_digest(cached)))
        if check and cached is not None
        else None
    )
    # a first copy from here is likely big, written by GNU tar: which tar this is, found meanwhile (~10 ms)
    find_tar = tarstream.gnu_tar if cached is None and stream.system_tar is not False else None
    (local, entries, planned), answer, _ = parallel.together(scan_and_plan, meanwhile, find_tar)
    if early and answer is not None:
        stream = dataclasses.replace(stream, measured=answer)
    if check and planned is not None and answer is not None:
        # the record checked: the write checks its paths only; or it is not as cached: the listing
        sync_plan, (line, _, arguments) = planned
        planned = (sync_plan, (line, GUARD_PATHS_PART, arguments)) if answer else None
    if cache is not None and planned is not None:
        done = _without_listing(session, cache, project.remote_dir, planned, local, roots, stream)
        if done is not None:
            return done
    remote = list_remote(session, project.remote_dir, missing, write=True)
    sync_plan = plan(entries, remote, [p.remote for p in paths], mounted)
    if sync_plan.kept and report:
        console.warn(
            messages.SYNC_KEPT.format(
                count=len(sync_plan.kept), paths=_some(sync_plan.kept), directory=project.remote_dir
            )
        )
    sent = Sent()
    if not sync_plan.empty or sync_plan.record != remote.record or remote.pending:
        sent = _apply(session, project.remote_dir, sync_plan, local, stream, roots)
    else:
        session.close()
        if remote.record is not None:
            sent.record = record_json(remote.record)  # as this version writes it: the pod's, if it did
    if cache is not None and sent.record:
        cache.save(project.remote_dir, sent.record)
    return _stats(sync_plan, local, sent), sent


def _stats(sync_plan: SyncPlan, local: dict[str, tuple[Entry, str]], sent: Sent) -> SyncStats:
    if sync_plan.in_place:
        console.info(messages.SYNC_IN_PLACE.format(paths=_some(sync_plan.in_place)))
    # files, not the links among them (nor directories): "synced N files" counts what a user calls files
    sent_files = [p for p in sync_plan.send if local[p][0].kind == "file" and p not in sent.vanished]
    return SyncStats(
        files=len(sent_files),
        bytes=sent.bytes,
        unchanged=sync_plan.unchanged,
        deleted=len(sync_plan.delete_files),
        measured=sent.rate,
        level=sent.level,
        streams=sent.streams,
    )


LocalTree = tuple[dict[str, Entry], dict[str, tuple[Entry, str]], dict[str, pathlib.Path]]


Planned = tuple[SyncPlan, tuple[str, str, list[str]]]  # a plan and its guard (see _apply)


def _plan_without_listing(
    cached: bytes | None, tree: LocalTree, missing: list[str], mounted: set[str]
) -> Planned | None:
    """The plan of a copy that skips the listing: a first copy from here into a directory holding nothing
    (FRESH_PART), or a change against the record we last wrote there (GUARD_PART); None when the change is
    not one to check that way: list the pod's files."""
    entries, local, roots = tree
    if cached is None:
        sync_plan = plan(entries, Remote({}, None, set()), [*roots, *missing], mounted)
        guard = (FRESH, FRESH_PART, [f"m:{m}" for m in missing])
    else:
        record = parse_record(cached.decode(errors="replace"))
        if record is None or missing:
            return None
        sync_plan = plan(entries, Remote(dict(record), record, set()), [*roots, *missing], mounted)
        sync_plan.written = (cached, record)
        if sync_plan.empty and sync_plan.record == record:
            return None  # nothing changed here: the listing says whether the pod's copy did
        checks = _guards(sync_plan, record, local)
        if checks is None:
            return None
        guard = (CURRENT, GUARD_PART, [record_digest(cached), *checks])  # h: ignored by GUARD_PATHS_PART
    if len(guard[2]) > MAX_GUARDS:
        return None  # a stat per path in the pod: past a few dozen, one listing is quicker
    return sync_plan, guard


def _without_listing(
    shell: "Session",
    cache: SyncCache,
    remote_dir: str,
    planned: Planned,
    local: dict[str, tuple[Entry, str]],
    roots: dict[str, pathlib.Path],
    stream: Stream,
) -> tuple[SyncStats, Sent] | None:
    """One exec, no listing (_plan_without_listing). None: the pod's copy was not as assumed (nothing was
    written): list the pod's files."""
    sync_plan, guard = planned
    sent = _apply(
        shell, remote_dir, sync_plan, local, stream, roots, guard, lambda r: cache.save(remote_dir, r)
    )
    if sent.refused:
        return None
    return _stats(sync_plan, local, sent), sent


def record_digest(record: bytes) -> str:
    return f"h:{hashlib.sha256(record).hexdigest()}"


def _guards(
    sync_plan: SyncPlan, record: dict[str, Entry], local: dict[str, tuple[Entry, str]]
) -> list[str] | None:
    """g:EXPECTED:PATH for each path written or removed; None when one is not a file on both sides (links and
    directories: their times in the pod are not the record's), or directories are removed."""
    if sync_plan.delete_dirs:
        return None
    checks = []
    for path in [*sync_plan.send, *sync_plan.delete_files, *sync_plan.replace]:
        was = record.get(path)
        if was is None:
            checks.append(f"g:-:{path}")
        elif was.kind == "file" and (path not in local or local[path][0].kind == "file"):
            checks.append(f"g:{stat.S_IFREG | was.mode:x},{was.size},{was.mtime}:{path}")
        else:
            return None
    return checks


def preview(shell: Shell | None, project: ComposeProject) -> tuple[SyncPlan, dict[str, Entry]]:
    """What a sync would do and the local entries (`up --dry-run`): against the pod's files when
    there is a pod (shell), else everything is sent. Nothing is written anywhere."""
    paths = compose.synced_paths(project)
    local = localscan.scan([p for p in paths if p.exists], excluder_of(project))
    remote = Remote({}, None, set())
    if shell is not None:
        remote = list_remote(shell, project.remote_dir, [], write=False)
    entries = {path: entry for path, (entry, _) in local.items()}
    return plan(entries, remote, [p.remote for p in paths], mounted_files(project)), entries


def mounted_files(project: ComposeProject) -> set[str]:
    """Remote paths of the local files that are mounted themselves (single-file binds, secrets,
    configs), nested in a copied directory or not: these are rewritten in place."""
    return {
        compose.remote_relative_path(source, project.working_dir)
        for source in compose.mount_sources(project)
        if source.is_file()
    }


def _some(paths: list[str], limit: int = 5) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


# --- local files -----------------------------------------------------------------------------------


def excluder_of(project: ComposeProject) -> ignore.Excluder:
    compose_file = str(project.files[0]) if project.files else "the compose file"
    return ignore.load(project.working_dir, project.x_preevy, compose_file)


# --- the pod's side ----------------------------------------------------------------------------------


def list_remote(shell: "Shell | Session", remote_dir: str, missing: list[str], *, write: bool) -> Remote:
    return parse_remote(shell.run(LIST_SCRIPT, [remote_dir, "write" if write else "read", *missing]))


def parse_remote(text: str) -> Remote:
    """The list script's output: record, pending paths, then `stat` lines."""
    sections: dict[str, list[str]] = {"record": [], "pending": [], "files": []}
    current = None
    for line in text.splitlines():
        if line.startswith(SECTION_MARK) and line[len(SECTION_MARK) :] in sections:
            current = line[len(SECTION_MARK) :]
        elif current is not None:
            sections[current].append(line)
    record_text = "\n".join(sections["record"]).strip()
    pending_text = "\n".join(sections["pending"]).strip()
    return Remote(
        files=parse_listing("\n".join(sections["files"])),
        record=parse_record(record_text) if record_text else None,
        pending=_pending(pending_text),
    )


def _pending(text: str) -> set[str]:
    paths = syncplan.json_or(text, []) if text else []
    return {p for p in paths if isinstance(p, str)} if isinstance(paths, list) else set()


def parse_listing(text: str) -> dict[str, Entry]:
    """`stat -c '%f %s %Y %n'` lines (raw hex mode, size, mtime, path) -> entries by path."""
    lines: list[tuple[list[str], str]] = []  # (mode, size, mtime), name
    for line in text.splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and _LISTING_FIELDS.fullmatch(" ".join(parts[:3])):
            lines.append((parts[:3], parts[3]))
        elif lines:  # a name with a newline in it goes on on the next line
            lines[-1] = (lines[-1][0], lines[-1][1] + "\n" + line)
    entries = {}
    for fields, path in lines:
        name = path[2:] if path.startswith("./") else path
        if not name or name == ".":
            continue
        mode, size, mtime = int(fields[0], 16), int(fields[1]), int(fields[2])
        kind = localscan.kind_of(mode)
        if kind:
            entries[name] = Entry(
                kind=kind, size=size if kind != "dir" else 0, mtime=mtime, mode=stat.S_IMODE(mode)
            )
    return entries


_LISTING_FIELDS = re.compile(r"[0-9a-f]+ \d+ -?\d+")


# --- applying it -------------------------------------------------------------------------------------


def _apply(
    shell: "Session",
    remote_dir: str,
    sync_plan: SyncPlan,
    local: dict[str, tuple[Entry, str]],
    stream: Stream,
    roots: dict[str, pathlib.Path],
    guard: tuple[str, str, list[str]] | None = None,
    written: Callable[[bytes], None] = lambda record: None,
) -> Sent:
    """Removals first, then the tar; the last batch of removals rides in the exec that unpacks. guard:
    (the line that says go on, the script that says it, its arguments) run first in that exec; any other
    line and nothing is written (Sent.refused). written(the record sent): once the whole stream went, while
    the pod unpacks it."""
    arguments = (
        [f"f:{p}" for p in sync_plan.delete_files + sync_plan.replace]
        + [f"d:{p}" for p in sync_plan.delete_dirs]
        + [f"i:{local[p][0].mode:o}:{p}" for p in sync_plan.in_place]
    )
    batches = list(_batches(arguments)) or [[]]
    if guard is not None and len(batches) > 1:
        return Sent(refused=True)  # removals would run before the guard
    for batch in batches[:-1]:
        shell.run(DELETE_PART + "true", [remote_dir, *batch])
    in_place = set(sync_plan.in_place)
    members = [(f"{INPLACE_DIR}/{p}" if p in in_place else p, p, local[p][1]) for p in sync_plan.send]
    send_bytes = sum(local[p][0].size for p in sync_plan.send if local[p][0].kind == "file")
    many = len(members) >= SYSTEM_TAR_MEMBERS or send_bytes >= PROBE_MIN_SEND
    tar = tarstream.gnu_tar() if stream.system_tar or (stream.system_tar is None and many) else None

    ahead: list[bytes] = []  # the record as planned, made while the pod answers the script

    def write(pipe: IO[bytes], compress: int) -> Sent:
        if tar is None or not _straight_into(pipe, compress):
            assert not split  # the script waits for the second stream: split only where tar writes
            return write_tar(pipe, members, sync_plan, compress, ahead[0] if ahead else b"")
        return _SystemTar(tar, members, sync_plan, local, roots, second, fifo).write(pipe, compress)

    def meanwhile() -> None:
        if tar is None:
            ahead.append(record_json(sync_plan.record, sync_plan.written))

    big = stream.measure and send_bytes >= PROBE_MIN_SEND
    probe = big and stream.measured is None
    rate = stream.measured if big else None
    level = _level_for(rate) if rate is not None else GZIP_LEVEL if stream.compress else 0
    split = (
        tar is not None
        and not probe
        and not level
        and stream.split is not False
        and len(members) >= 2
        and (stream.split or len(members) >= SPLIT_MIN_MEMBERS or send_bytes >= SPLIT_MIN_BYTES)
        and shell.opened.proc.stdin is not None
        and _has_fileno(shell.opened.proc.stdin)
    )
    fifo = f"{SPLIT_PREFIX}{secrets.token_hex(6)}" if split else ""
    if probe:
        unpack = PROBE_PART + UNPACK_PART.replace("tar -xf", "tar -x${z}f")
    elif split:
        unpack = split_start(fifo) + UNPACK_PART.replace("tar -xf - || exit 1; ", split_unpack(fifo))
    else:
        unpack = UNPACK_PART.replace("tar -xf", "tar -xzf") if level else UNPACK_PART
    expected, guard_part, guard_args = guard or ("", "", [])

    def body(pipe: IO[bytes], replies: Replies | None) -> Sent:
        if guard is not None and (replies is None or replies.readline() != f"{expected}\n".encode()):
            return Sent(refused=True)
        sent = _probed(pipe, replies, write) if probe else write(pipe, level)
        if not probe:
            sent.rate = rate
        pipe.close()  # the stream ends: the pod unpacks it meanwhile
        written(sent.record)
        return sent

    script = guard_part + DELETE_PART + unpack
    arguments = [remote_dir, *guard_args, *batches[-1]]
    # a split's second exec starts now: connected by the time the first stream's script answered
    second = shell.shell.open(split_writer(remote_dir, fifo)) if split else None
    try:
        return shell.stream(script, arguments, body, says_first=guard is not None, meanwhile=meanwhile)
    finally:
        if second is not None:
            second.stop()  # ended already if the stream used it; else (refused, failed before) ended now


def _probed(pipe: IO[bytes], replies: Replies | None, write: Callable[[IO[bytes], int], Sent]) -> Sent:
    """The link measured (PROBE_PART), then the tar, gzipped if the link is slow."""
    assert replies is not None
    rate = _measured(pipe, replies)
    if rate is None:
        return Sent()  # the exec failed: kubectl's exit code and stderr say why
    level = _level_for(rate)
    pipe.write(b"z\n" if level else b"\n")
    sent = write(pipe, level)
    sent.rate = rate
    return sent


def _measured(pipe: IO[bytes], replies: Replies, slack: int = PROBE_SLACK) -> float | None:
    """The link's upload rate (bytes/s) by probe_lines(slack); None when the pod did not say them."""
    if replies.readline() != b"ready\n":
        return None
    pipe.write(bytes(slack))
    pipe.flush()
    if replies.readline() != b"mid\n":
        return None
    started = time.monotonic()
    pipe.write(bytes(PROBE_MEASURED))
    pipe.flush()
    if replies.readline() != b"probed\n":
        return None
    return PROBE_MEASURED / max(time.monotonic() - started, 1e-6)


def _level_for(rate: float) -> int:
    """gzip's level for a link of that rate (bytes/s): 0 (plain tar) on a fast one."""
    return 0 if rate >= SLOW_LINK_BYTES_PER_SECOND else 6 if rate < VERY_SLOW_LINK_BYTES_PER_SECOND else 1


def _batches(arguments: list[str]) -> Iterator[list[str]]:
    """arguments in groups that fit a command line."""
    batch: list[str] = []
    size = 0
    for argument in arguments:
        if batch and size + len(argument) > MAX_ARGS_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(argument)
        size += len(argument) + 1
    if batch:
        yield batch


def _nothing() -> None:
    pass


class _Replayed:
    """A stdout whose first line was already read (by Session): readline() gives it back first."""

    def __init__(self, first: bytes, rest: Replies) -> None:
        self.first: bytes | None = first
        self.rest = rest

    def readline(self) -> bytes:
        if self.first is not None:
            line, self.first = self.first, None
            return line
        return self.rest.readline()


@dataclasses.dataclass
class Opened:
    """A started `sh -c NEXT` (kubectl exec -i, or a local sh). finish(): wait for it, raise what its failure
    means; stop(): end it now; transient(): once it failed, the line saying why trying again may help, or ""."""

    proc: subprocess.Popen[bytes]
    finish: Callable[[], None]
    stop: Callable[[], None]
    transient: Callable[[], str]


class Session:
    """The one exec of a copy (see NEXT): started first, then given the listing and/or the write scripts;
    run() and stream() are Shell's (what list_remote and _apply call)."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self.cache = shell.cache
        self.opened = shell.open(NEXT)
        self.answered = False  # a script of ours ran there: a failure now is not one to start again
        self.expired = False
        self.ended = False

    def _send(self, script: str, args: list[str]) -> None:
        assert self.opened.proc.stdin is not None
        text = f"set -- {' '.join(shlex.quote(a) for a in args)}\n{script}\n{SCRIPT_END}".encode()
        self.opened.proc.stdin.write(b"%d\n" % len(text) + text)
        self.opened.proc.stdin.flush()

    def _first_line(self, script: str, args: list[str], meanwhile: Callable[[], None] = _nothing) -> bytes:
        """Send a script, read its first line (meanwhile() run once in between). An exec that failed before any
        script of ours answered, for a transient reason (the API server busy...), is started again, with
        back-off."""
        for delay in [*retry.delays(), None]:
            assert self.opened.proc.stdout is not None
            try:
                self._send(script, args)
                meanwhile()
                meanwhile = _nothing
                line = self.opened.proc.stdout.readline()
            except BrokenPipeError:
                line = b""
            if line or self.answered or self.expired or delay is None:
                return line
            why = self.opened.transient()
            if not why:
                return line
            console.warn(messages.RETRYING.format(command="kubectl exec", error=why, seconds=delay))
            time.sleep(delay)
            self.opened = self.shell.open(NEXT)
        return b""

    def measure(self, scanned: threading.Event) -> float | None:
        """The link's upload rate (bytes/s, by PROBE_SCRIPT), unless the scan ended
        (scanned) within EARLY_PROBE_AFTER. Run in a thread while the main one scans, which uses the session only
        once this returned. Nothing is written in the pod: an exec that fails here is started again by the next
        script when the failure is transient (in the main thread: a child outlives no thread's step), None."""
        if scanned.wait(EARLY_PROBE_AFTER):
            return None
        return self._meanwhile(
            PROBE_SCRIPT, [], lambda out, replies: _measured(out, replies, PROBE_SLACK_NEW)
        )

    def check(self, remote_dir: str, digest: str) -> bool | None:
        """Whether the pod's record is the one cached here (digest: h:SHA256) and no copy was left half done
        (CHECK_SCRIPT), in a thread while the main one scans (as measure); None: the exec failed."""
        answers = {f"{CURRENT}\n".encode(): True, b"stale\n": False}
        return self._meanwhile(
            CHECK_SCRIPT, [remote_dir, digest], lambda _, replies: answers.get(replies.readline())
        )

    def _meanwhile(
        self, script: str, args: list[str], answer: Callable[[IO[bytes], IO[bytes]], _T | None]
    ) -> _T | None:
        """A script that writes nothing, run in a thread while the main one scans (measure, check): what
        answer(its stdin, its stdout) reads of it, within LIST_TIMEOUT_SECONDS; None: the exec failed."""
        proc = self.opened.proc
        assert proc.stdin is not None and proc.stdout is not None
        timer = threading.Timer(LIST_TIMEOUT_SECONDS, self._expire)
        timer.start()
        try:
            self._send(script, args)
            return answer(proc.stdin, proc.stdout)
        except BrokenPipeError:
            return None
        finally:
            timer.cancel()

    def run(self, script: str, args: list[str]) -> str:
        marker = f"{SECTION_MARK}end {secrets.token_hex(8)}".encode()
        wrapped = f"( {script}\n) || exit $?\necho '{marker.decode()}'\n{NEXT}"
        timer = threading.Timer(LIST_TIMEOUT_SECONDS, self._expire)
        timer.start()
        try:
            line = self._first_line(wrapped, args)
            self.answered = True
            lines = [line]
            assert self.opened.proc.stdout is not None
            while line and line.rstrip(b"\n") != marker:
                line = self.opened.proc.stdout.readline()
                lines.append(line)
        finally:
            timer.cancel()
        if not line:
            self._failed()
        return b"".join(lines[:-1]).decode(errors="replace")

    def stream(
        self,
        script: str,
        args: list[str],
        write: Writer,
        *,
        says_first: bool = False,
        meanwhile: Callable[[], None] = _nothing,
    ) -> Sent:
        """The script, then write(its stdin, its stdout) once it said a first line (no byte of the stream
        is sent before the script reads it: BusyBox's `head -c`, which reads the script, reads ahead of what
        it passes on): "go", or the script's own (says_first: write reads it); the exec ends with it unless
        the script refused (Sent.refused). meanwhile(): run while the pod answers."""
        proc = self.opened.proc
        if says_first:
            assert proc.stdout is not None
            first = self._first_line(script, args, meanwhile)
            self.answered = True
            if not first:
                self._failed()
            replies: Replies | None = _Replayed(first, proc.stdout)
        else:
            go = self._first_line(f"echo go\n{script}", args, meanwhile)
            self.answered = True
            if go != b"go\n":
                self._failed()
            replies = proc.stdout
        proc = self.opened.proc
        sent = Sent()
        try:
            assert proc.stdin is not None
            sent = write(proc.stdin, replies)
        except BrokenPipeError:
            pass  # the exec ended early: its exit code and stderr say why
        except BaseException:
            self.stop()  # before its stdin ends: a half stream is never unpacked as whole
            raise
        if sent.refused:
            return sent
        self._end()
        return sent

    def close(self) -> None:
        """End an exec that has nothing more to do."""
        if self.ended:
            return
        try:
            self._send("exit 0", [])
        except BrokenPipeError:
            pass
        self._end()

    def _end(self) -> None:
        self.ended = True
        _close_quietly(self.opened.proc.stdin)
        if self.opened.proc.stdout is not None:
            self.opened.proc.stdout.read()
        self.opened.finish()

    def stop(self) -> None:
        if not self.ended:
            self.ended = True
            self.opened.stop()

    def _expire(self) -> None:
        self.expired = True
        self.opened.stop()

    def _failed(self) -> NoReturn:
        """The exec ended before the script said what it should: raise what that means."""
        self.ended = True
        if self.expired:
            raise PreevyError(
                messages.COMMAND_TIMED_OUT.format(command="kubectl exec", seconds=LIST_TIMEOUT_SECONDS),
                ExitCode.TIMEOUT,
            )
        _close_quietly(self.opened.proc.stdin)
        self.opened.finish()
        raise PreevyError(messages.FILE_SYNC_FAILED.format(error="the exec ended early"), ExitCode.FAILURE)


class PodShell:
    """The scripts run by `kubectl exec` in the pod's first container."""

    def __init__(self, kubectl: Kubectl, pod: str, container: str) -> None:
        self.kubectl, self.pod, self.container = kubectl, pod, container
        self._cache: SyncCache | None = None

    @property
    def cache(self) -> SyncCache:
        if self._cache is None:
            kubectl = self.kubectl
            self._cache = SyncCache.of(kubectl.environ, kubectl.server_url(), kubectl.namespace, self.pod)
        return self._cache

    def _argv(self, script: str, args: list[str], stdin: bool) -> list[str]:
        return [
            "exec",
            *(["-i"] if stdin else []),
            self.pod,
            "-c",
            self.container,
            "--",
            "sh",
            "-c",
            script,
            "sh",
            *args,
        ]

    def run(self, script: str, args: list[str]) -> str:
        # the listing (mkdir -p, cat, find) and the removals (rm -f, rmdir) are safe to repeat
        result = self.kubectl.run(
            *self._argv(script, args, stdin=False), timeout=LIST_TIMEOUT_SECONDS, retry_transient=True
        )
        if not result.ok:
            raise _sync_error(self.kubectl, result)
        return result.stdout

    def open(self, command: str) -> Opened:
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed once the exec ended)
        proc = self.kubectl.popen(
            *self._argv(command, [], stdin=True),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            ends_without_us=True,  # `sh` there ends at the end of its stdin, and so does the exec
        )
        assert proc.stdin is not None
        tarstream.widen_pipe(proc.stdin.fileno())  # the tar goes through it: fewer, bigger writes
        said: list[str] = []

        def ended() -> str:
            if not said:
                _close_quietly(proc.stdin)
                try:
                    proc.wait()
                finally:
                    process.stop(proc)
                stderr.seek(0)
                said.append(stderr.read().decode(errors="replace"))
                stderr.close()
                process.journal.output(proc, said[0])
            return said[0]

        def finish() -> None:
            text = ended()
            if proc.returncode != 0:
                raise _sync_error(
                    self.kubectl, process.Result(process.argv_of(proc), proc.returncode, "", text)
                )

        def transient() -> str:
            text = ended()
            return retry.transient_line(text) if proc.returncode and retry.is_transient(text) else ""

        return Opened(proc, finish, lambda: process.stop(proc), transient)


def write_tar(
    pipe: IO[bytes],
    members: Sequence[tuple[str, str, str | pathlib.Path]],
    sync_plan: SyncPlan,
    compress: int,
    planned: bytes = b"",
) -> Sent:
    """The tar stream: first the list of paths about to be sent (PENDING), then the members
    (arcname, remote path, local path), then the record of what was really sent (RECORD_NEW): planned
    (record_json of the plan's record, made ahead) when every member went as it was planned."""
    level = int(compress)  # True: gzip's level 1
    sink, finish = _compressed(pipe, level) if level else (pipe, _nothing)
    sent = Sent(level=level)
    record = dict(sync_plan.record)
    as_planned = bool(planned)
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.GNU_FORMAT, dereference=False) as tar:
        _add_bytes(tar, PENDING, json.dumps([m[1] for m in members]).encode())
        for arcname, remote_path, local_path in members:
            outcome = _add_member(tar, arcname, local_path)
            if outcome is None:
                sent.vanished.append(remote_path)
                record.pop(remote_path, None)
                as_planned = False
                continue
            entry, changed, size = outcome
            sent.bytes += size
            record[remote_path] = entry._replace(size=CHANGED_SIZE) if changed else entry
            as_planned = as_planned and record[remote_path] == sync_plan.record.get(remote_path)
            if changed:
                sent.changed.append(remote_path)
        sent.record = planned if as_planned else record_json(record, sync_plan.written)
        _add_bytes(tar, RECORD_NEW, sent.record)
    finish()
    return sent


class _SystemTar:
    """A sync's tar stream with GNU tar writing the members under copied directories (the bulk: C, big
    writes, straight into the stream: tarstream.archive); we write the rest before it: the pending list, the
    roots themselves, files rewritten in place (under INPLACE_DIR). tar then writes the record of what really
    went (RECORD_NEW, written by us once tar's listing said so) and the end of the archive."""

    def __init__(
        self,
        tar: str,
        members: Sequence[tuple[str, str, str | pathlib.Path]],
        sync_plan: SyncPlan,
        local: dict[str, tuple[Entry, str]],
        roots: dict[str, pathlib.Path],
        second: Opened | None = None,
        fifo: str = "",
    ) -> None:
        """second: the exec that writes into the pod's FIFO (split_writer), when the stream is split."""
        self.tar, self.local = tar, local
        self.second, self.fifo = second, fifo
        self.record, self.written = dict(sync_plan.record), sync_plan.written
        self.planned = sync_plan.record
        self.dir_roots = {r: real for r, real in roots.items() if r in local and local[r][0].kind == "dir"}
        under = tuple(root + "/" for root in self.dir_roots)
        self.ours: list[tuple[str, str, str | pathlib.Path]] = []  # written by us
        self.theirs: list[str] = []  # by GNU tar: under a copied directory, named as in the pod
        for member in members:
            arcname, remote, _ = member
            if arcname == remote and under and remote.startswith(under):
                self.theirs.append(remote)
            else:
                self.ours.append(member)

    def write(self, pipe: IO[bytes], compress: int) -> Sent:
        """compress: gzip's level, 0 (or False) for plain tar. pipe: a file descriptor's (tar writes into it)."""
        level = int(compress)
        sent = Sent(level=level)
        sink, finish = _compressed(pipe, level) if level else (pipe, _nothing)
        try:
            out = _Counting(sink)
            pending = [m[1] for m in self.ours] + self.theirs
            out.write(tarstream.small_member(PENDING, json.dumps(pending).encode()))
            tar = tarfile.TarFile(fileobj=out, mode="w", format=tarfile.GNU_FORMAT, dereference=False)  # type: ignore[arg-type]
            for arcname, remote_path, local_path in self.ours:
                self._note(sent, remote_path, _add_member(tar, arcname, local_path))
            if self.theirs or self.second is not None:  # a split's second stream is awaited in the pod
                sink.flush()  # ours before tar's, in the same pipe
                self._archive(sink.fileno(), sent)
            else:
                sent.record = record_json(self.record, self.written)
                out.write(tarstream.small_member(RECORD_NEW, sent.record))
                out.write(tarstream.END_OF_ARCHIVE)
        finally:
            finish()
        return sent

    def _note(self, sent: Sent, remote_path: str, outcome: tuple[Entry, bool, int] | None) -> None:
        if outcome is None:
            sent.vanished.append(remote_path)
            self.record.pop(remote_path, None)
            return
        entry, changed, size = outcome
        sent.bytes += size
        self.record[remote_path] = entry._replace(size=CHANGED_SIZE) if changed else entry
        if changed:
            sent.changed.append(remote_path)

    def _archive(self, fd: int, sent: Sent) -> None:
        """GNU tar's members, read from a directory of links named as the roots are in the pod, then the
        record, then the end of the archive. Split (self.second): half of them in a second stream, written by
        a second GNU tar into a second exec, which the pod unpacks at the same time (split_unpack); the
        record is written once both tars have read their members."""
        went: set[str] = set()
        local = self.local
        noting = threading.Lock()  # a split's two listings are read in two threads
        # the record as planned, encoded while tar reads the files (sent if every member went so); started once
        # tar runs (the encoding holds the GIL: not while tar is being started)
        planned, ahead = self.planned, list[bytes]()
        encoding = threading.Thread(
            target=lambda: ahead.append(record_json(planned, self.written)), daemon=True
        )

        def read(path: str) -> None:
            with noting:
                if encoding.ident is None:
                    encoding.start()
            found = local.get(path)  # None: the mark
            if found is None:
                return
            entry, local_path = found
            changed = entry.kind == "file" and _changed_since(entry, local_path)
            with noting:
                went.add(path)
                sent.bytes += entry.size  # the plan recorded it as sent: only a change is noted
                if changed:
                    self.record[path] = entry._replace(size=CHANGED_SIZE)
                    sent.changed.append(path)

        first, second = _halves(self.theirs) if self.second is not None else (self.theirs, [])
        with tempfile.TemporaryDirectory(prefix="preevy-sync-") as tmp:
            view = pathlib.Path(tmp, "view")
            for root, real in self.dir_roots.items():
                (view / root).parent.mkdir(parents=True, exist_ok=True)
                (view / root).symlink_to(real)
            (view / STATE_DIR).mkdir(parents=True)
            (view / STATE_DIR).chmod(0o755)  # the mark: the pod's own STATE_DIR, as mkdir -p made it there
            beside = _Beside(self, view, second, read) if self.second is not None else None

            def last(stderr: str) -> str:
                if beside is not None:
                    stderr += beside.wait_read()
                self._left_out(sent, went, stderr)
                if encoding.ident is not None:
                    encoding.join()
                as_planned = ahead and self.record == planned
                sent.record = ahead[0] if as_planned else record_json(self.record, self.written)
                return _written(view, RECORD_NEW, sent.record)

            try:
                _check_archived(self._tar(first, view, tmp, fd, read, last), RECORD_NEW, "the record")
            except BaseException:
                if beside is not None:
                    beside.stop()
                raise
            if beside is not None:
                sent.streams = 2
                beside.finish()

    def _tar(
        self,
        members: list[str],
        view: pathlib.Path,
        tmp: str,
        fd: int,
        read: Callable[[str], None],
        last: Callable[[str], str],
    ) -> tarstream.Archived:
        names = tempfile.NamedTemporaryFile(dir=tmp, delete=False)  # noqa: SIM115 (closed below)
        with names:
            names.write(b"".join(os.fsencode(p) + b"\0" for p in [*members, STATE_DIR]))
        return tarstream.archive(self.tar, names.name, str(view), fd, STATE_DIR, read, last)

    def _left_out(self, sent: Sent, went: set[str], stderr: str) -> None:
        """The members tar did not send: gone (left out of the record), or unreadable (the copy fails)."""
        for path in self.theirs:
            if path in went:
                continue
            if os.path.lexists(self.local[path][1]):
                raise PreevyError(
                    messages.FILE_SYNC_FAILED.format(error=_last_line(stderr, path)), ExitCode.FAILURE
                )
            self._note(sent, path, None)


class _Beside:
    """The second stream of a split copy (_SystemTar._archive): a second exec (split_writer), into which a
    second GNU tar writes the other half of the members, in a thread, ending with the FIFO's end member."""

    def __init__(
        self, copy: "_SystemTar", view: pathlib.Path, members: list[str], read: Callable[[str], None]
    ) -> None:
        assert copy.second is not None
        self.end = f"{copy.fifo}.end"
        self.opened = copy.second
        self.archived: list[tarstream.Archived] = []
        self.warnings = ""
        self.read_all = threading.Event()  # its members read (its mark went), or its tar ended
        tmp = str(view.parent)

        def last(stderr: str) -> str:
            self.warnings = stderr
            self.read_all.set()
            return _written(view, self.end, b"")

        def write() -> None:
            stdin = self.opened.proc.stdin
            assert stdin is not None
            try:
                self.archived.append(copy._tar(members, view, tmp, stdin.fileno(), read, last))
            finally:
                self.read_all.set()
                _close_quietly(stdin)

        self.thread = threading.Thread(target=write, daemon=True)
        self.thread.start()

    def wait_read(self) -> str:
        """Once its tar has read its members (or ended): its warnings so far."""
        self.read_all.wait()
        return self.warnings

    def stop(self) -> None:
        self.opened.stop()
        self.thread.join()

    def finish(self) -> None:
        """Its exec's end (kubectl's error, if it failed, says why), then whether its stream was whole."""
        self.thread.join()
        self.opened.finish()
        _check_archived(self.archived[0] if self.archived else None, self.end, "the second stream")


def _halves(members: list[str]) -> tuple[list[str], list[str]]:
    """The members in two lists of about as many, each directory's files in one of them (two tars creating
    files in one directory would wait for each other), in their order."""
    by_directory: dict[str, list[str]] = {}
    for member in members:
        by_directory.setdefault(os.path.dirname(member), []).append(member)
    first: list[str] = []
    second: list[str] = []
    for group in by_directory.values():
        (first if len(first) <= len(second) else second).extend(group)
    return first, second


def _written(view: pathlib.Path, name: str, data: bytes) -> str:
    """A member tar sends last (its name), written under the view now."""
    descriptor = os.open(view / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(descriptor, "wb") as member:
        member.write(data)
    return name


def _check_archived(archived: "tarstream.Archived | None", last: str, what: str) -> None:
    """A tar stream that ended early or without its last member: the copy failed."""
    if archived is not None and archived.returncode == -signal.SIGPIPE:
        raise BrokenPipeError  # the exec ended early: its exit code and stderr say why
    if archived is None or not archived.marked or last not in archived.names:
        error = _last_line(archived.stderr if archived else "", what)
        raise PreevyError(messages.FILE_SYNC_FAILED.format(error=error), ExitCode.FAILURE)


def _changed_since(entry: Entry, local_path: str) -> bool:
    """Whether a file sent by tar differs now from what the scan saw (changed before or while it was read)."""
    if entry.kind != "file":
        return False
    try:
        st = os.lstat(local_path)
    except FileNotFoundError:
        return True
    return (st.st_size, st.st_mtime_ns) != (entry.size, entry.mtime_ns)


def _last_line(stderr: str, path: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"tar did not send {path}"


def _straight_into(pipe: IO[bytes], level: int) -> bool:
    """Whether GNU tar can write into pipe (a file descriptor's), or into the compressor writing into it."""
    return _has_fileno(pipe) and (not level or tarstream.compressor_argv("gzip", level) is not None)


def _has_fileno(pipe: IO[bytes]) -> bool:
    try:
        pipe.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


class _Counting:
    """A write-only stream that knows its position (what tarfile asks of its file)."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink, self.position = sink, 0

    def write(self, data: bytes | memoryview) -> int:
        self.sink.write(data)
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position


def _compressed(pipe: IO[bytes], level: int) -> tuple[IO[bytes], Callable[[], None]]:
    """A gzip stream into pipe: a local pigz or gzip process (a core of its own), else in-process gzip."""
    argv = tarstream.compressor_argv("gzip", level)
    if argv is None or not _has_fileno(pipe):
        gz = gzip.GzipFile(fileobj=pipe, mode="wb", compresslevel=level, mtime=0)
        return gz, gz.close  # type: ignore[return-value]
    pipe.flush()
    proc = tarstream.start_compressor(argv, pipe.fileno())
    assert proc.stdin is not None

    def finish() -> None:
        tarstream.finish_compressor(proc)  # its exit code: kubectl's tar says what was wrong with the stream

    return proc.stdin, finish


def _add_member(
    tar: tarfile.TarFile, arcname: str, local_path: str | pathlib.Path
) -> tuple[Entry, bool, int] | None:
    """One file as it is now: (its entry, whether it changed while read, bytes); None if it is gone."""
    try:
        if not os.path.islink(local_path) and os.path.isfile(local_path):
            with open(local_path, "rb") as content:
                before = os.fstat(content.fileno())
                info = tar.gettarinfo(arcname=arcname, fileobj=content)
                info.mode = stat.S_IMODE(before.st_mode)
                reader = _ExactReader(content, info.size)
                tar.addfile(info, reader)
                after = os.fstat(content.fileno())
            entry = localscan.entry_of(before)
            assert entry is not None
            changed = reader.short or (after.st_size, after.st_mtime_ns) != (
                before.st_size,
                before.st_mtime_ns,
            )
            return entry, changed, info.size
        st = os.lstat(local_path)
        entry = localscan.entry_of(st)
        if entry is None:
            return None
        tar.addfile(tar.gettarinfo(str(local_path), arcname=arcname))
        return entry, False, 0
    except FileNotFoundError:
        return None


class _ExactReader(io.RawIOBase):
    """Exactly `size` bytes of a file: zeros after a shrink (the tar header is already written),
    and `short` says so."""

    def __init__(self, content: IO[bytes], size: int) -> None:
        self.content, self.left, self.short = content, size, False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        wanted = self.left if size < 0 else min(size, self.left)
        data = self.content.read(wanted) if wanted else b""
        if len(data) < wanted:
            self.short = True
            data += b"\0" * (wanted - len(data))
        self.left -= len(data)
        return data


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o600
    tar.addfile(info, io.BytesIO(data))


def _close_quietly(pipe: IO[bytes] | None) -> None:
    try:
        if pipe is not None:
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
