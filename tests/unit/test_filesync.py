"""The incremental copy's decisions: what is listed locally, parsed remotely, sent, kept and deleted."""

import os

from kubectl_preevy import filesync
from kubectl_preevy.compose import SyncedPath
from kubectl_preevy.filesync import Entry


def file(size=10, mtime=1000, mode=0o644):
    return Entry("file", size, mtime, mode)


DIR = Entry("dir", 0, 0, 0o755)


def test_scan_lists_files_dirs_and_links_under_remote_names(tmp_path):
    site = tmp_path / "site"
    (site / "css").mkdir(parents=True)
    (site / "index.html").write_text("hello")
    (site / "css" / "a.css").write_text("body{}")
    (site / "latest").symlink_to("index.html")
    os.mkfifo(site / "fifo")
    os.utime(site / "index.html", (1_700_000_000.7, 1_700_000_000.7))
    found = filesync.scan_local([SyncedPath(site, "relative/site", True)])
    assert sorted(found) == [
        "relative/site",
        "relative/site/css",
        "relative/site/css/a.css",
        "relative/site/index.html",
        "relative/site/latest",
    ]
    entry, local = found["relative/site/index.html"]
    assert (entry.kind, entry.size, entry.mtime) == ("file", 5, 1_700_000_000)
    assert local == site / "index.html"
    assert found["relative/site/latest"][0].kind == "link"


def test_scan_follows_a_root_that_is_a_symlink(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("x")
    (tmp_path / "alias").symlink_to("real")
    found = filesync.scan_local([SyncedPath(tmp_path / "alias", "relative/alias", True)])
    assert found["relative/alias"][0].kind == "dir"
    assert "relative/alias/f" in found


def test_parse_listing_reads_busybox_stat_lines():
    listing = "\n".join(
        [
            "41ed 4096 1700000000 .",
            "41ed 4096 1700000000 ./relative/site",
            "81a4 5 1700000001 ./relative/site/index page.html",
            "a1ff 10 1700000002 ./relative/site/latest",
            "garbage",
        ]
    )
    assert filesync.parse_listing(listing) == {
        "relative/site": Entry("dir", 0, 1700000000, 0o755),
        "relative/site/index page.html": Entry("file", 5, 1700000001, 0o644),
        "relative/site/latest": Entry("link", 10, 1700000002, 0o777),
    }


def test_plan_sends_new_and_changed_keeps_unchanged_deletes_gone_within_roots():
    local = {
        "r": DIR,
        "r/same": file(),
        "r/new": file(),
        "r/bigger": file(size=11),
        "r/touched": file(mtime=2000),
        "r/chmod": file(mode=0o755),
    }
    remote = {
        "r": DIR,
        "r/same": file(),
        "r/bigger": file(),
        "r/touched": file(),
        "r/chmod": file(),
        "r/gone": file(),
        "r/gone-dir": DIR,
        "r/gone-dir/x": file(),
        "other-root/keep": file(),
    }
    plan = filesync.plan(local, remote, ["r"])
    assert plan.send == ["r/bigger", "r/chmod", "r/new", "r/touched"]
    assert plan.unchanged == 1
    assert plan.delete == ["r/gone", "r/gone-dir"]
    assert plan.replace == []


def test_plan_replaces_what_changed_type_or_link_target():
    local = {
        "r": DIR,
        "r/was-file": DIR,
        "r/was-file/x": file(),
        "r/was-dir": file(),
        "r/link": Entry("link", 5, 1, 0o777),
    }
    remote = {
        "r": DIR,
        "r/was-file": file(),
        "r/was-dir": DIR,
        "r/was-dir/old": file(),
        "r/link": Entry("link", 9, 1, 0o777),
    }
    plan = filesync.plan(local, remote, ["r"])
    assert plan.replace == ["r/link", "r/was-dir", "r/was-file"]
    assert plan.send == ["r/link", "r/was-dir", "r/was-file", "r/was-file/x"]
    assert plan.delete == []  # r/was-dir/old goes with r/was-dir


def test_plan_first_copy_sends_everything():
    local = {"r": DIR, "r/a": file(), "conf.txt": file()}
    plan = filesync.plan(local, {}, ["r", "conf.txt"])
    assert plan.send == ["conf.txt", "r", "r/a"] and plan.unchanged == 0 and plan.delete == []


def test_summary_counts_and_sizes():
    stats = filesync.SyncStats(files=3, bytes=12_700, unchanged=41, deleted=1)
    assert stats.summary() == "synced 3 files (12.4 KiB), 41 unchanged, 1 deleted"
    assert filesync.SyncStats(files=1, bytes=99).summary() == "synced 1 file (99 B), 0 unchanged, 0 deleted"
    assert filesync.human_size(512) == "512 B"
    assert filesync.human_size(5 * 1024 * 1024) == "5.0 MiB"


def test_tar_stream_holds_the_members_with_their_metadata(tmp_path):
    import io
    import tarfile

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"content")
    os.utime(tmp_path / "d" / "f", (1_700_000_000, 1_700_000_000))
    buffer = io.BytesIO()
    filesync._write_tar(
        buffer, [("relative/d", tmp_path / "d"), ("relative/d/f", tmp_path / "d" / "f")], True
    )
    with tarfile.open(fileobj=io.BytesIO(buffer.getvalue()), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["relative/d"].isdir()
        assert members["relative/d/f"].mtime == 1_700_000_000
        assert tar.extractfile("relative/d/f").read() == b"content"
