"""What this machine last wrote as the sync record of a pod's copy, so that the next copy can skip the listing.

Only a hint: the exec that uses it first checks, in the pod, that the record there is still exactly these
bytes (sha256), that no copy was left half done, and that every path about to be written or removed is as
the record says; else it writes nothing and the copy lists the pod's files as usual (filesync.py).
Kept under $XDG_CACHE_HOME/kubectl-preevy/sync/ (else ~/.cache/...), one file per (API server, namespace,
pod, project directory in the pod).
"""

import hashlib
import os
import pathlib
from collections.abc import Mapping

from kubectl_preevy import profiles


class SyncCache:
    def __init__(self, directory: pathlib.Path, place: str) -> None:
        self.directory, self.place = directory, place

    @classmethod
    def of(cls, environ: Mapping[str, str], server: str, namespace: str, pod: str) -> "SyncCache":
        return cls(profiles.cache_dir(environ) / "sync", "\0".join((server, namespace, pod)))

    def _path(self, remote_dir: str) -> pathlib.Path:
        key = hashlib.sha256(f"{self.place}\0{remote_dir}".encode()).hexdigest()[:40]
        return self.directory / f"{key}.record"

    def load(self, remote_dir: str) -> bytes | None:
        try:
            return self._path(remote_dir).read_bytes()
        except OSError:
            return None

    def save(self, remote_dir: str, record: bytes) -> None:
        """Best effort: without a cache the next copy lists the pod's files, as it would anyway."""
        path = self._path(remote_dir)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_bytes(record)
            temporary.replace(path)
        except OSError:
            pass
