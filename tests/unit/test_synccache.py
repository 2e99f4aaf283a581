"""synccache.py: the record of a pod's copy kept on this machine, forgotten with the pod, pruned when old."""

import os
import time

from kubectl_preevy.synccache import MAX_AGE_DAYS, SyncCache

SERVER, NAMESPACE = "https://127.0.0.1:6443", "previews"


def caches(tmp_path, *pods: str) -> list[SyncCache]:
    return [SyncCache.of({"XDG_CACHE_HOME": str(tmp_path)}, SERVER, NAMESPACE, pod) for pod in pods]


def test_a_record_is_kept_per_pod_and_project_directory_and_forgotten_with_the_pod(tmp_path):
    environ = {"XDG_CACHE_HOME": str(tmp_path)}
    pod, other = caches(tmp_path, "default-pr-1-abcde-0", "default-pr-2-fghij-0")
    pod.save("/var/lib/preevy/projects/shop", b"record one")
    pod.save("/var/lib/preevy/projects/docs", b"record two")
    other.save("/var/lib/preevy/projects/shop", b"record three")
    assert pod.load("/var/lib/preevy/projects/shop") == b"record one"
    assert pod.load("/var/lib/preevy/projects/docs") == b"record two"

    SyncCache.forget_pod(environ, lambda: SERVER, NAMESPACE, "default-pr-1-abcde-0")
    assert pod.load("/var/lib/preevy/projects/shop") is None
    assert pod.load("/var/lib/preevy/projects/docs") is None
    assert other.load("/var/lib/preevy/projects/shop") == b"record three"


def test_forgetting_with_no_cache_at_all_makes_nothing(tmp_path):
    def server() -> str:
        raise AssertionError("the server is not asked when nothing was kept")

    SyncCache.forget_pod({"XDG_CACHE_HOME": str(tmp_path)}, server, NAMESPACE, "default-pr-1-abcde-0")
    assert list(tmp_path.iterdir()) == []


def test_a_new_pods_record_prunes_those_not_written_for_max_age_days(tmp_path):
    stale, recent, new = caches(tmp_path, "default-gone-0", "default-idle-0", "default-new-0")
    stale.save("/p", b"old")
    recent.save("/p", b"recent")
    flat_layout = tmp_path / "kubectl-preevy" / "sync" / f"{'0' * 40}.record"
    flat_layout.write_bytes(b"from an earlier version")
    long_ago = time.time() - (MAX_AGE_DAYS + 1) * 86400
    for path in (stale._path("/p").parent, flat_layout):
        os.utime(path, (long_ago, long_ago))
    a_while_ago = time.time() - (MAX_AGE_DAYS - 1) * 86400
    os.utime(recent._path("/p").parent, (a_while_ago, a_while_ago))

    recent.save("/p", b"again")  # an existing pod's record: no pruning
    assert stale.load("/p") == b"old"
    new.save("/p", b"new")
    assert stale.load("/p") is None and not flat_layout.exists()
    assert recent.load("/p") == b"again"
