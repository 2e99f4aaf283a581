"""The copy's decisions: from the local files (localscan.py), the pod's files and the record of what we sent
there, what to send, rewrite in place, delete and keep (`plan`, by the rules in filesync.py's docstring); and
the record itself, as the pod keeps it (`.preevy-sync/record`: JSON, read by `parse_record`, written by
`record_json`).

Both run over every path of the tree on every `up`, so the common case is decided in bulk: a path whose
entry here, in the record and in the pod are the same (a change against the record we last wrote, where the
record stands for the pod's files) is unchanged, and only the others go through the rules one by one.
"""

import dataclasses
import json
from operator import itemgetter

from kubectl_preevy.localscan import Entry


@dataclasses.dataclass
class Remote:
    """What the pod has: its files, the record of what we sent, the paths of a broken copy."""

    files: dict[str, Entry]
    record: dict[str, Entry] | None  # None: no record (a first sync, or an older version's copy)
    pending: set[str]


@dataclasses.dataclass
class SyncPlan:
    """What a copy sends, deletes and keeps, and the record once it is done."""

    send: list[str]  # remote paths (under the project dir), parents before children
    delete_files: list[str]  # ours, gone locally: removed in the pod
    delete_dirs: list[str]  # ours, gone locally: removed in the pod if empty (deepest first)
    replace: list[str]  # ours, changed type or link target: removed, then sent again
    in_place: list[str]  # sent, then rewritten in place over the pod's file (same inode)
    kept: list[str]  # in the pod, not ours, different from the local file: left as they are
    record: dict[str, Entry]  # the record once this plan is applied
    unchanged: int  # files and links not sent
    # the record it was planned against, as written (bytes, entries), when that is known: record_json
    # then rewrites only the entries that differ
    written: tuple[bytes, dict[str, Entry]] | None = None

    @property
    def empty(self) -> bool:
        return not (self.send or self.delete_files or self.delete_dirs or self.replace)


# --- the record ----------------------------------------------------------------------------------------


def json_or(text: str | bytes, default: object) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return default


def parse_record(text: str | bytes) -> dict[str, Entry] | None:
    """The record's entries; None when it is unreadable (as if there were none: nothing is deleted then). An
    entry whose fields are not what they should be is left out (as if the path were not recorded)."""
    data = json_or(text, None)
    if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
        return None
    entries: dict[str, object] = data["entries"]
    fields = list(entries.values())
    if _as_written(fields):
        return dict(zip(entries, map(Entry._make, fields), strict=True))  # type: ignore[arg-type]
    record = {}
    for path, value in entries.items():
        if isinstance(value, list) and len(value) in (4, 5):
            try:
                mtime_ns = int(value[4]) if len(value) > 4 else 0
                record[path] = Entry(str(value[0]), int(value[1]), int(value[2]), int(value[3]), mtime_ns)
            except (TypeError, ValueError):
                continue
    return record


def _as_written(fields: list[object]) -> bool:
    """Whether every entry is as record_json writes it ([str, int, int, int, int]): checked column by column
    (loops in C), the whole record then made in one step."""
    if not set(map(type, fields)) <= {list} or not set(map(len, fields)) <= {5}:  # type: ignore[arg-type]
        return False
    columns = [set(map(type, map(itemgetter(i), fields))) for i in range(5)]  # type: ignore[arg-type]
    return columns[0] <= {str} and all(column <= {int} for column in columns[1:])


RECORD_START = b'{"version":1,"entries":{'
SPLICE_MAX = 64  # entries rewritten in the bytes of the previous record; past that, all are written


def record_json(record: dict[str, Entry], written: tuple[bytes, dict[str, Entry]] | None = None) -> bytes:
    """Entries as [kind, size, mtime, mode, mtime_ns] (Entry's own order: a tuple is a JSON array), by path.
    written: a record this function wrote (its bytes and entries); when the paths are the same and a few
    entries differ, its bytes with those rewritten (the same bytes, without encoding 10,000 entries again)."""
    if written is not None:
        spliced = _spliced(record, *written)
        if spliced is not None:
            return spliced
    return json.dumps({"version": 1, "entries": dict(sorted(record.items()))}, separators=(",", ":")).encode()


def _spliced(record: dict[str, Entry], data: bytes, entries: dict[str, Entry]) -> bytes | None:
    if not data.startswith(RECORD_START) or record.keys() != entries.keys():
        return None
    changed = [path for path, entry in record.items() if entries[path] != entry]
    if len(changed) > SPLICE_MAX:
        return None
    for path in changed:
        key = json.dumps(path).encode() + b":"
        old, new = key + _encoded(entries[path]), key + _encoded(record[path])
        at = data.find(old)
        # a key's quotes are the only unescaped ones in it: "key":[...] is found once, after { or ,
        if at < 0 or data[at - 1 : at] not in (b"{", b",") or data.find(old, at + 1) >= 0:
            return None
        data = data[:at] + new + data[at + len(old) :]
    return data


def _encoded(entry: Entry) -> bytes:
    return json.dumps(entry, separators=(",", ":")).encode()


# --- the decisions -------------------------------------------------------------------------------------


def plan(
    local: dict[str, Entry],
    remote: Remote,
    roots: list[str],
    mounted: set[str] | frozenset[str] = frozenset(),
) -> SyncPlan:
    """What to send, delete and keep: the rules of filesync.py's docstring."""
    record = remote.record or {}
    pending = remote.pending
    owned = set(record) | pending
    pod = remote.files
    new_record: dict[str, Entry] = {}
    # the same here, in the record and in the pod: unchanged, nothing to decide (unless a kept path of the
    # pod's blocks it: see below)
    settled: list[str] = []
    rest: list[str] = []
    for path, mine in local.items():
        if record.get(path) == mine and pod.get(path) == mine and path not in pending:
            settled.append(path)
            new_record[path] = mine
        else:
            rest.append(path)
    send: list[str] = []
    replace: list[str] = []
    in_place: list[str] = []
    kept: list[str] = []
    blocked: list[str] = []  # kept paths that are not directories: nothing of ours goes under them
    unchanged = sum(local[p].kind == "file" for p in settled)  # files, as "synced N files" counts them
    for path in sorted(rest):
        if any(_under(path, b) and path != b for b in blocked):
            continue
        mine, theirs, ours = local[path], pod.get(path), path in owned
        previous = record.get(path)
        if theirs is None:
            if ours and previous is not None and _same(mine, previous) and path not in pending:
                new_record[path] = previous  # removed in the pod by a container: left so
                unchanged += mine.kind == "file"
            else:
                send.append(path)
                new_record[path] = mine
            continue
        if not ours:
            if theirs.kind == mine.kind and (mine.kind == "dir" or _same(mine, theirs)):
                new_record[path] = mine  # the same as ours: adopted (an older version's copy)
                unchanged += mine.kind == "file"
            else:
                kept.append(path)
                if theirs.kind != "dir":
                    blocked.append(path)
            continue
        if path in pending:  # a broken copy may have left it half-written: what is there?
            changed = not _same(mine, theirs)
        else:
            changed = previous is None or not _same(mine, previous)
        if mine.kind == "dir" and theirs.kind == "dir":
            new_record[path] = mine
            if changed and mine.mode != theirs.mode:
                send.append(path)
            continue
        if not changed:
            new_record[path] = previous if previous is not None else mine
            unchanged += mine.kind == "file"
            if theirs.kind != mine.kind and theirs.kind != "dir":
                blocked.append(path)
            continue
        if theirs.kind == "dir":
            kept.append(path)  # a container made a directory of it: never removed with what it holds
            continue
        if theirs.kind != mine.kind or mine.kind == "link":
            replace.append(path)
        elif mine.kind == "file" and path in mounted:
            in_place.append(path)
        send.append(path)
        new_record[path] = mine
    if blocked:  # what is under a kept path goes nowhere, and is not recorded
        for path in settled:
            if any(_under(path, b) and path != b for b in blocked):
                del new_record[path]
                unchanged -= local[path].kind == "file"
    delete_files, delete_dirs = [], []
    for path in sorted(owned.difference(local)):
        if not any(_under(path, root) for root in roots):
            if path in record:
                new_record[path] = record[path]  # no longer copied: left as it is, still ours
            continue
        theirs = pod.get(path)
        if theirs is None:
            continue
        sent_kind = record[path].kind if path in record else theirs.kind
        if theirs.kind == "dir" and sent_kind == "dir":
            delete_dirs.append(path)
        elif theirs.kind != "dir" and sent_kind != "dir":
            delete_files.append(path)
    return SyncPlan(
        send=send,
        delete_files=delete_files,
        delete_dirs=sorted(delete_dirs, reverse=True),
        replace=replace,
        in_place=in_place,
        kept=kept,
        record=new_record,
        unchanged=unchanged,
    )


def _same(mine: Entry, other: Entry) -> bool:
    if mine.kind != other.kind:
        return False
    if mine.kind == "dir":
        return mine.mode == other.mode
    if mine.kind == "link":
        return mine.size == other.size
    if mine.mtime_ns and other.mtime_ns and mine.mtime_ns != other.mtime_ns:
        return False
    return (mine.size, mine.mtime, mine.mode) == (other.size, other.mtime, other.mode)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")
