"""The local side of the copy: every file, directory and symlink under the bind-mount sources, as an Entry
(kind, size, mtime, mode) keyed by its path in the pod, exclusions (ignore.py) applied.

This runs over the whole tree on every `up` (10,000 files: one `lstat` each, the floor of the scan), so the
loop is plain: os.scandir, one stat per entry, no per-file objects beyond the Entry and no calls that can
be avoided (the exclusion patterns are matched only when there are any).
"""

import os
import pathlib
import stat
from typing import NamedTuple

from kubectl_preevy import ignore
from kubectl_preevy.compose import SyncedPath


class Entry(NamedTuple):
    """A file, local or in the pod, in the record's order of fields (a tuple is a JSON array)."""

    kind: str  # "file", "dir" or "link"
    size: int
    mtime: int  # whole seconds
    mode: int  # permission bits
    mtime_ns: int = 0  # local files only (the pod's listing has whole seconds): edits within a second


Found = dict[str, tuple[Entry, str]]  # remote path -> (entry, local path)

_KINDS = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "link"}
_EUID = os.geteuid() if hasattr(os, "geteuid") else -1
_ROOT = _EUID == 0  # reads every file
_new = tuple.__new__
_NS = 1_000_000_000


def kind_of(mode: int) -> str | None:
    """ "file", "dir", "link", or None (sockets, fifos, devices: not ours to copy)."""
    return _KINDS.get(stat.S_IFMT(mode))


def entry_of(st: os.stat_result) -> Entry | None:
    kind = _KINDS.get(stat.S_IFMT(st.st_mode))
    if kind is None:
        return None
    if kind == "file":
        return Entry(kind, st.st_size, st.st_mtime_ns // _NS, st.st_mode & 0o7777, st.st_mtime_ns)
    # a link's size is its target's length (what `stat` says in the pod); a directory's is the file system's
    return Entry(kind, st.st_size if kind == "link" else 0, st.st_mtime_ns // _NS, st.st_mode & 0o7777, 0)


def scan(paths: list[SyncedPath], excluder: ignore.Excluder | None = None) -> Found:
    """Every file, directory and symlink under the paths, keyed by remote path, a directory before what it
    holds. A root that is a symlink is followed (Docker follows it too); links inside are kept as links.
    An unreadable file fails here (PermissionError), before anything is sent."""
    found: Found = {}
    for root in paths:
        real = os.path.realpath(root.local)
        st = os.stat(real)
        entry = entry_of(st)
        if entry is None:
            continue
        if entry.kind == "file" and not _readable(real, st):
            raise PermissionError(13, "Permission denied", real)
        found[root.remote] = (entry, real)  # a mount's own root is always there (the service mounts it)
        if entry.kind == "dir":
            relative = _relative(excluder, root.local)
            # a root a pattern names is copied (empty, unless a `!` re-includes): what it holds is excluded
            named = (
                excluder is not None and relative is not None and ignore.excluded(relative, excluder.patterns)
            )
            _Walk(found, excluder).directory(real, root.remote, relative, named)
    return found


def _relative(excluder: ignore.Excluder | None, named: pathlib.Path) -> str | None:
    """The root as the exclusion patterns see it: relative to the project directory, on the path as the
    project names it (not the link's target); None when nothing under it can be excluded."""
    if excluder is None or excluder.empty:
        return None
    try:
        relative = named.relative_to(excluder.root).as_posix()
    except ValueError:
        return None  # outside the project directory: never excluded
    return "" if relative == "." else relative


class _Walk:
    def __init__(self, found: Found, excluder: ignore.Excluder | None) -> None:
        self.found = found
        self.patterns = excluder.patterns if excluder is not None else ()
        self.negations = excluder is not None and excluder.has_negations

    def directory(self, local: str, remote: str, relative: str | None, parent_excluded: bool = False) -> bool:
        """Add what the directory holds; whether anything was kept. relative: its path for the exclusion
        patterns (None: none apply); parent_excluded: the directory itself is excluded (walked because a `!`
        may re-include something under it, or a mount's root)."""
        with os.scandir(local) as listing:
            children = list(listing)  # the directory closed before its subdirectories are opened
        found, kept = self.found, False
        for child in children:
            try:
                st = child.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # gone since the directory was read
            mode = st.st_mode
            kind = _KINDS.get(mode & 0o170000)
            if kind is None:
                continue
            path, name = child.path, child.name
            child_remote = f"{remote}/{name}"
            child_relative = None if relative is None else f"{relative}/{name}" if relative else name
            excluded = child_relative is not None and self._excluded(child_relative, parent_excluded)
            if kind == "file":
                if excluded:
                    continue
                if not (_ROOT or _readable(path, st)):
                    raise PermissionError(13, "Permission denied", path)
                mtime_ns = st.st_mtime_ns
                # tuple.__new__: an Entry without the Python frame of its __new__ (10,000 times per scan)
                entry = _new(Entry, (kind, st.st_size, mtime_ns // _NS, mode & 0o7777, mtime_ns))
                found[child_remote] = (entry, path)
                kept = True
            elif kind == "dir":
                if excluded and not self.negations:
                    continue
                found[child_remote] = (Entry(kind, 0, st.st_mtime_ns // _NS, mode & 0o7777, 0), path)
                if self.directory(path, child_remote, child_relative, excluded) or not excluded:
                    kept = True
                else:
                    del found[child_remote]  # excluded, and nothing under it re-included
            elif not excluded:
                found[child_remote] = (Entry(kind, st.st_size, st.st_mtime_ns // _NS, mode & 0o7777, 0), path)
                kept = True
        return kept

    def _excluded(self, relative: str, parent_excluded: bool) -> bool:
        if not self.negations and not parent_excluded:
            # without `!`, a path is excluded when a pattern matches it or a parent; the parents were not
            return any(p.regex.fullmatch(relative) for p in self.patterns)
        return ignore.excluded(relative, self.patterns)


def _readable(local: str, st: os.stat_result) -> bool:
    if _EUID == 0 or (st.st_uid == _EUID and st.st_mode & stat.S_IRUSR):
        return True  # the common cases, without a system call
    return os.access(local, os.R_OK)
