"""The copy's decisions (what is sent, kept, deleted) and the record of what was sent."""

import random

from kubectl_preevy import syncplan
from kubectl_preevy.localscan import Entry
from kubectl_preevy.syncplan import Remote


def file(size=10, mtime=1000, mode=0o644, mtime_ns=0):
    return Entry("file", size, mtime, mode, mtime_ns)


DIR = Entry("dir", 0, 0, 0o755)


def remote(files, record=None, pending=()):
    return Remote(files=dict(files), record=None if record is None else dict(record), pending=set(pending))


def test_plan_first_copy_sends_everything():
    local = {"r": DIR, "r/a": file(), "conf.txt": file()}
    plan = syncplan.plan(local, remote({}), ["r", "conf.txt"])
    assert plan.send == ["conf.txt", "r", "r/a"] and plan.unchanged == 0
    assert plan.delete_files == plan.delete_dirs == plan.kept == []
    assert plan.record == local


def test_plan_sends_local_edits_and_leaves_what_a_container_changed():
    sent = {"r": DIR, "r/same": file(), "r/edited": file(), "r/theirs-changed": file()}
    local = {**sent, "r/edited": file(size=11), "r/new": file()}
    pod = {**sent, "r/theirs-changed": file(size=99, mtime=5000), "r/db/pg": file(size=8192)}
    plan = syncplan.plan(local, remote(pod, record=sent), ["r"])
    assert plan.send == ["r/edited", "r/new"]
    assert plan.unchanged == 2  # r/same, and r/theirs-changed: left as the container made it
    assert plan.delete_files == plan.delete_dirs == plan.kept == []
    assert "r/db/pg" not in plan.record


def test_plan_deletes_only_what_the_record_says_was_sent():
    sent = {"r": DIR, "r/gone": file(), "r/gone-dir": DIR, "r/gone-dir/x": file()}
    local = {"r": DIR}
    pod = {**sent, "r/gone-dir/written-by-app": file(), "r/app-data": DIR, "r/app-data/f": file()}
    plan = syncplan.plan(local, remote(pod, record=sent), ["r"])
    assert plan.delete_files == ["r/gone", "r/gone-dir/x"]
    assert plan.delete_dirs == ["r/gone-dir"]  # removed only if empty: the app's file stays
    assert plan.record == {"r": DIR}


def test_plan_without_a_record_deletes_and_overwrites_nothing_and_adopts_equal_files():
    local = {"r": DIR, "r/a": file(), "r/b": file(size=3)}
    pod = {"r": DIR, "r/a": file(), "r/b": file(size=4), "r/old": file(), "r/pgdata": DIR}
    plan = syncplan.plan(local, remote(pod), ["r"])
    assert plan.send == [] and plan.delete_files == [] and plan.delete_dirs == []
    assert plan.kept == ["r/b"]
    assert plan.record == {"r": DIR, "r/a": file()}


def test_plan_a_container_file_where_a_new_local_file_appears_is_kept():
    local = {"r": DIR, "r/conf": file(size=1), "r/x": DIR, "r/x/y": file()}
    pod = {"r": DIR, "r/conf": file(size=2), "r/x": file()}
    plan = syncplan.plan(local, remote(pod, record={"r": DIR}), ["r"])
    assert plan.kept == ["r/conf", "r/x"] and plan.send == []


def test_plan_replaces_what_changed_type_and_rewrites_mounted_files_in_place():
    sent = {"r": DIR, "r/was-file": file(), "r/link": Entry("link", 9, 1, 0o777), "r/app.ini": file()}
    local = {
        "r": DIR,
        "r/was-file": DIR,
        "r/was-file/x": file(),
        "r/link": Entry("link", 5, 1, 0o777),
        "r/app.ini": file(size=12),
    }
    plan = syncplan.plan(local, remote(sent, record=sent), ["r"], {"r/app.ini"})
    assert plan.replace == ["r/link", "r/was-file"]
    assert plan.in_place == ["r/app.ini"]
    assert plan.send == ["r/app.ini", "r/link", "r/was-file", "r/was-file/x"]


def test_plan_after_a_broken_copy_resends_the_pending_paths():
    local = {"r": DIR, "r/half": file(size=100), "r/done": file()}
    pod = {"r": DIR, "r/half": file(size=40, mtime=9), "r/done": file()}
    plan = syncplan.plan(local, remote(pod, record={"r": DIR}, pending=["r/half", "r/done"]), ["r"])
    assert plan.send == ["r/half"] and plan.kept == []
    assert set(plan.record) == {"r", "r/half", "r/done"}


def test_plan_keeps_record_entries_of_paths_no_longer_copied():
    sent = {"old": DIR, "old/f": file(), "r": DIR}
    plan = syncplan.plan({"r": DIR}, remote(sent, record=sent), ["r"])
    assert plan.delete_files == [] and plan.record == sent


def test_record_round_trip_and_garbage():
    record = {"r": DIR, "r/a b": file()}
    assert syncplan.parse_record(syncplan.record_json(record).decode()) == record
    assert syncplan.parse_record("not json") is None


def test_a_record_as_written_and_one_with_odd_entries_read_alike():
    record = {"r": DIR, "r/a": file(mtime_ns=1000 * 10**9), "r/l": Entry("link", 3, 7, 0o777)}
    written = syncplan.record_json(record)
    assert syncplan.parse_record(written) == record
    odd = written.replace(
        b'"r/l":["link",3,7,511,0]', b'"r/l":["link","3",7,511],"r/x":["file",1,true],"r/y":7'
    )
    assert syncplan.parse_record(odd) == record  # numbers as strings read, the malformed left out
    assert syncplan.parse_record(b'{"entries": []}') is None


class Unsettled(Entry):
    """An entry equal to nothing (its fields compare as usual): the plan cannot decide it in bulk."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return False

    __hash__ = Entry.__hash__


def decisions(sync_plan: syncplan.SyncPlan) -> tuple:
    record = {path: tuple(entry) for path, entry in sync_plan.record.items()}
    return (
        sync_plan.send,
        sync_plan.replace,
        sync_plan.in_place,
        sync_plan.kept,
        sync_plan.unchanged,
        record,
    )


def test_the_plan_decides_as_the_rules_path_by_path_on_random_trees():
    rng = random.Random(13)
    names = ["r", "r/a", "r/a/b", "r/a/b/c", "r/d", "r/d/e", "r/f", "s", "s/g"]
    entries = [
        DIR,
        Entry("dir", 0, 5, 0o700),
        file(),
        file(size=11),
        file(mtime_ns=1000 * 10**9 + 1),
        Entry("link", 4, 1, 0o777),
        Entry("link", 5, 1, 0o777),
    ]
    for _ in range(3000):

        def tree():
            return {n: rng.choice(entries) for n in names if rng.random() < 0.6}

        local, pod, record = tree(), tree(), tree() if rng.random() < 0.8 else None
        if rng.random() < 0.5 and record is not None:
            pod = dict(record)  # the record standing for the pod's files (no listing)
        pending = {n for n in names if rng.random() < 0.1}
        remote = Remote(pod, record, pending)
        by_path: dict[str, Entry] = {p: Unsettled(*e) for p, e in local.items()}  # each one through the rules
        assert decisions(syncplan.plan(local, remote, ["r", "s"], {"r/f"})) == decisions(
            syncplan.plan(by_path, remote, ["r", "s"], {"r/f"})
        )


def test_a_record_written_from_the_previous_one_is_the_same_bytes_as_one_written_whole():
    rng = random.Random(7)
    record = {
        f"r/{name}": file(size=n, mtime_ns=n * 10**9) for n, name in enumerate(["a", 'q"x', "é", "b/c", "z"])
    }
    record["r"] = DIR
    written = (syncplan.record_json(record), record)
    for _ in range(200):
        changed = dict(record)
        for path in rng.sample(sorted(record), rng.randint(0, 3)):
            changed[path] = file(size=rng.randint(0, 99), mtime_ns=rng.randint(0, 10**12))
        assert syncplan.record_json(changed, written) == syncplan.record_json(changed)
    fewer = {p: e for p, e in record.items() if p != "r/z"}
    assert syncplan.record_json(fewer, written) == syncplan.record_json(fewer)  # other paths: written whole
    not_ours = (b'{"entries":{}}', record)
    assert syncplan.record_json(record, not_ours) == written[0]
