"""What this machine last wrote as the sync record of a pod's copy, so that the next copy can skip the listing.

Only a hint: the exec that uses it first checks, in the pod, that the record there is still exactly these
bytes (sha256), that no copy was left half done, and that every path about to be written or removed is as
the record says; else it writes nothing and the copy lists the pod's files as usual (filesync.py).
Kept under $XDG_CACHE_HOME/kubectl-preevy/sync/ (else ~/.cache/...): a directory per (API server, namespace,
pod), a file in it per project directory in the pod. `down` forgets the pods it deletes; the directories of
pods not copied to for MAX_AGE_DAYS (deleted from elsewhere, or by a cluster gone) are removed when a new
one is made.
"""

import pathlib
import shutil
import time
from collections.abc import Callable, Mapping

from kubectl_preevy import profiles

MAX_AGE_DAYS = 30


class SyncCache:
    def __init__(self, directory: pathlib.Path, place: str) -> None:
        self.directory, self.place = directory, place

    @classmethod
    def of(cls, environ: Mapping[str, str], server: str, namespace: str, pod: str) -> "SyncCache":
        return cls(profiles.cache_dir(environ) / "sync", "\0".join((server, namespace, pod)))

    @classmethod
    def forget_pod(
        cls, environ: Mapping[str, str], server: Callable[[], str], namespace: str, pod: str
    ) -> None:
        """Remove what this machine kept of a pod being deleted. server: asked only when something was kept
        (it may need to read the kubeconfig)."""
        if (profiles.cache_dir(environ) / "sync").is_dir():
            shutil.rmtree(cls.of(environ, server(), namespace, pod)._place_dir(), ignore_errors=True)

    def kept(self) -> bool:
        """Whether this machine keeps a record of a copy into the pod (a hint that it exists)."""
        return self._place_dir().is_dir()

    def _place_dir(self) -> pathlib.Path:
        return self.directory / _digest(self.place)

    def _path(self, remote_dir: str) -> pathlib.Path:
        return self._place_dir() / f"{_digest(remote_dir)}.record"

    def load(self, remote_dir: str) -> bytes | None:
        try:
            return self._path(remote_dir).read_bytes()
        except OSError:
            return None

    def save(self, remote_dir: str, record: bytes) -> None:
        """Best effort: without a cache the next copy lists the pod's files, as it would anyway."""
        path = self._path(remote_dir)
        if not path.parent.is_dir():
            _prune(self.directory)
        profiles.write_cache_file(path, record)


def _digest(text: str) -> str:
    import hashlib  # here: only this needs it (its OpenSSL binding costs ~2 ms)

    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _prune(directory: pathlib.Path) -> None:
    """Remove the pods' directories not written for MAX_AGE_DAYS (and files of the earlier flat layout)."""
    oldest = time.time() - MAX_AGE_DAYS * 86400
    try:
        entries = list(directory.iterdir())
    except OSError:
        return
    for entry in entries:
        try:
            if entry.stat().st_mtime >= oldest:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink()
        except OSError:
            pass
