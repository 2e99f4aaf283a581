"""The incremental copy: the pod's listing parsed, the scripts under BusyBox, the tar stream, the one exec."""

import contextlib
import io
import os
import pathlib
import shutil
import subprocess
import tarfile
import tempfile

import pytest

from kubectl_preevy import compose, filesync, localscan, retry, syncplan, tarstream
from kubectl_preevy.compose import ComposeProject
from kubectl_preevy.localscan import Entry
from kubectl_preevy.synccache import SyncCache
from kubectl_preevy.syncplan import Remote
from tests.prerequisites import require_tool


def test_parse_listing_reads_busybox_stat_lines():
    listing = "\n".join(
        [
            "41ed 4096 1700000000 .",
            "41ed 4096 1700000000 ./relative/site",
            "81a4 5 1700000001 ./relative/site/index page.html",
            "a1ff 10 1700000002 ./relative/site/latest",
            "81a4 3 1700000003 ./relative/site/two",
            "lines 1 2",  # a file name with a newline in it goes on on the next line
        ]
    )
    assert filesync.parse_listing(listing) == {
        "relative/site": Entry("dir", 0, 1700000000, 0o755),
        "relative/site/index page.html": Entry("file", 5, 1700000001, 0o644),
        "relative/site/latest": Entry("link", 10, 1700000002, 0o777),
        "relative/site/two\nlines 1 2": Entry("file", 3, 1700000003, 0o644),
    }


def test_summary_counts_and_sizes():
    stats = filesync.SyncStats(files=3, bytes=12_700, unchanged=41, deleted=1)
    assert stats.summary() == "synced 3 files (12.4 KiB), 41 unchanged, 1 deleted"
    assert filesync.SyncStats(files=1, bytes=99).summary() == "synced 1 file (99 B), 0 unchanged, 0 deleted"
    assert filesync.human_size(512) == "512 B"
    assert filesync.human_size(5 * 1024 * 1024) == "5.0 MiB"


# --- the scripts under BusyBox (as in docker:dind, Alpine) -------------------------------------------


PYTHON_TAR = filesync.Stream(compress=True, system_tar=False)  # the in-process writer, gzipped
SYSTEM_TAR = filesync.Stream(compress=False, system_tar=True)  # GNU tar writes the members, plain
SPLIT = filesync.Stream(compress=False, system_tar=True, split=True)  # two GNU tars into two shells at once


class BusyboxShell:
    """The sync's scripts run by BusyBox's sh with only BusyBox applets on PATH, on a local directory."""

    def __init__(self, tmp_path: pathlib.Path) -> None:
        busybox = require_tool("busybox")
        self.bin = tmp_path / "busybox-bin"
        self.bin.mkdir()
        applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout
        for applet in applets.split():
            (self.bin / applet).symlink_to(busybox)
        self.env = {"PATH": str(self.bin)}
        self.calls = 0
        self.cache = None  # a SyncCache: copies may skip the listing

    def _argv(self, script, args):
        self.calls += 1
        return [str(self.bin / "sh"), "-c", script, "sh", *args]

    def run(self, script, args):
        result = subprocess.run(self._argv(script, args), capture_output=True, text=True, env=self.env)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def open(self, command):
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 (read in finish)
        proc = subprocess.Popen(
            self._argv(command, []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=self.env,
        )

        def finish():
            proc.stdin.close()
            code = proc.wait()
            stderr.seek(0)
            assert code == 0, stderr.read().decode()

        def stop():
            proc.kill()
            proc.wait()

        return filesync.Opened(proc, finish, stop, lambda: "")


@pytest.fixture
def shell(tmp_path):
    return BusyboxShell(tmp_path)


def sync_project(tmp_path, model_services, secrets=None):
    working_dir = tmp_path / "project"
    model = {"name": "pod", "services": model_services}
    if secrets:
        model["secrets"] = secrets
    project = ComposeProject(
        name="pod", files=[working_dir / "compose.yaml"], working_dir=working_dir, model=model, x_preevy=None
    )
    return project


def run_sync(shell, project, pod_dir, stream=PYTHON_TAR):
    with remote_dir_at(pod_dir):
        return filesync.sync_with(shell, project, stream)


@contextlib.contextmanager
def remote_dir_at(pod_dir):
    """The project's copy in a local directory instead of the pod's /var/lib/preevy/projects/<name>."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compose, "REMOTE_PROJECTS_DIR", str(pod_dir.parent))
        assert pod_dir.name == "pod"  # the project's name (sync_project)
        yield


@pytest.mark.parametrize(
    "stream",
    [PYTHON_TAR, SYSTEM_TAR, filesync.Stream(compress=True, system_tar=True), SPLIT],
    ids=["python-writer-gzip", "system-tar-plain", "system-tar-gzip", "system-tar-split"],
)
def test_three_syncs_keep_what_containers_wrote_and_bring_local_edits(tmp_path, shell, stream):
    work = tmp_path / "project"
    (work / "site").mkdir(parents=True)
    (work / "site" / "index.html").write_text("v1")
    (work / "site" / "old.html").write_text("old")
    (work / "app.ini").write_text("a=1\n")
    (work / "secret.txt").write_text("s3cret")
    project = sync_project(
        tmp_path,
        {
            "web": {
                "volumes": [
                    {"type": "bind", "source": str(work / "site"), "target": "/site"},
                    {"type": "bind", "source": str(work / "app.ini"), "target": "/etc/app.ini"},
                    {"type": "bind", "source": str(work / "missing"), "target": "/m"},
                ],
                "secrets": [{"source": "s"}],
            }
        },
        secrets={"s": {"file": str(work / "secret.txt")}, "unused": {"file": str(work / "nope")}},
    )
    pod = tmp_path / "pod"
    copy = pod / "relative"

    stats = run_sync(shell, project, pod, stream)
    assert (stats.files, stats.deleted) == (4, 0)
    assert (copy / "site" / "index.html").read_text() == "v1"
    assert (copy / "secret.txt").read_text() == "s3cret"
    assert (copy / "missing").is_dir()
    assert (pod / ".preevy-sync" / "record").is_file()
    assert not (pod / ".preevy-sync" / "pending").exists()
    # what containers do meanwhile
    (copy / "site" / "data").mkdir()
    (copy / "site" / "data" / "rows").write_text("written by the app")
    (copy / "site" / "index.html").write_text("changed by a container")
    (copy / "missing" / "db").write_text("db")
    inode = (copy / "app.ini").stat().st_ino

    (work / "site" / "old.html").unlink()
    (work / "app.ini").write_text("a=2\n")
    stats = run_sync(shell, project, pod, stream)
    assert (stats.files, stats.deleted, stats.unchanged) == (1, 1, 2)
    assert not (copy / "site" / "old.html").exists()
    assert (copy / "site" / "index.html").read_text() == "changed by a container"
    assert (copy / "site" / "data" / "rows").read_text() == "written by the app"
    assert (copy / "missing" / "db").read_text() == "db"
    assert (copy / "app.ini").read_text() == "a=2\n"
    assert (copy / "app.ini").stat().st_ino == inode  # a running container's single-file mount sees it
    assert (copy / "app.ini").stat().st_mtime == (work / "app.ini").stat().st_mtime // 1

    (work / "site" / "index.html").write_text("v3 from the user")
    os.utime(work / "site" / "index.html", (1_800_000_000, 1_800_000_000))
    stats = run_sync(shell, project, pod, stream)
    assert (copy / "site" / "index.html").read_text() == "v3 from the user"  # local edits win
    assert (copy / "site" / "data" / "rows").read_text() == "written by the app"
    shutil.rmtree(work / "site")
    stats = run_sync(shell, project, pod, stream)
    assert stats.deleted == 1
    assert (copy / "site" / "data" / "rows").read_text() == "written by the app"
    assert not (copy / "site" / "index.html").exists()

    calls = shell.calls
    run_sync(shell, project, pod, stream)
    assert shell.calls == calls + 1  # nothing to do: the listing, in the one exec


def one_directory_project(tmp_path, directory, files):
    """A project whose one service bind-mounts ./<directory>, holding files (name -> bytes)."""
    source = tmp_path / "project" / directory
    source.mkdir(parents=True)
    for name, content in files.items():
        (source / name).write_bytes(content)
    return sync_project(
        tmp_path, {"app": {"volumes": [{"type": "bind", "source": str(source), "target": "/d"}]}}
    )


@pytest.mark.parametrize("cached", [False, True], ids=["listing", "no-listing-first"])
@pytest.mark.parametrize(
    "stream", [PYTHON_TAR, SYSTEM_TAR, SPLIT], ids=["python-writer", "system-tar", "system-tar-split"]
)
def test_an_older_version_copy_loses_nothing(tmp_path, shell, stream, cached):
    if cached:  # the write that skips the listing finds the directory taken: nothing written, then listed
        shell.cache = SyncCache(tmp_path / "cache", "here")
    work = tmp_path / "project"
    project = one_directory_project(tmp_path, "data", {"seed.sql": b"seed"})
    pod = tmp_path / "pod"
    (pod / "relative" / "data" / "pg").mkdir(parents=True)
    (pod / "relative" / "data" / "pg" / "base").write_text("database")
    (pod / "relative" / "data" / "seed.sql").write_text("seed, as the app changed it")
    run_sync(shell, project, pod, stream)
    assert (pod / "relative" / "data" / "pg" / "base").read_text() == "database"
    assert (pod / "relative" / "data" / "seed.sql").read_text() == "seed, as the app changed it"
    (work / "data" / "seed.sql").unlink()
    run_sync(shell, project, pod, stream)
    assert (pod / "relative" / "data" / "seed.sql").read_text() == "seed, as the app changed it"


@pytest.mark.parametrize(
    "stream",
    [SYSTEM_TAR, filesync.Stream(compress=False), filesync.Stream(compress=True), SPLIT],
    ids=["gnu-tar", "python-writer-plain", "python-writer-gzip", "gnu-tar-split"],
)
def test_copies_made_from_here_skip_the_listing_until_the_pod_is_not_as_recorded(tmp_path, shell, stream):
    work = tmp_path / "project" / "site"
    project = one_directory_project(tmp_path, "site", {"a.txt": b"a1", "b.txt": b"b1"})
    pod = tmp_path / "pod"
    copy = pod / "relative" / "site"
    shell.cache = SyncCache(tmp_path / "cache", "here")

    def sync_counting() -> int:
        calls = shell.calls
        run_sync(shell, project, pod, stream)
        return shell.calls - calls

    split = 1 if stream.split else 0  # a send of two members or more: a second exec
    assert sync_counting() == 1 + split  # a first copy into an empty directory: no listing
    assert (copy / "a.txt").read_bytes() == b"a1"
    (work / "a.txt").write_bytes(b"a2, longer")
    (work / "c.txt").write_bytes(b"c1")
    assert sync_counting() == 1 + split  # against the record we wrote: one exec (and the split's)
    assert [(copy / n).read_bytes() for n in ("a.txt", "c.txt")] == [b"a2, longer", b"c1"]

    (copy / "b.txt").write_bytes(b"a container's")  # in the pod, then a local edit of the same file
    (work / "b.txt").write_bytes(b"b2 from the user")
    assert (
        sync_counting() == 1
    )  # refused (b.txt is not as recorded), then the listing and the copy, same exec
    assert (copy / "b.txt").read_bytes() == b"b2 from the user"  # local edits win, as with a listing

    (copy / "d.txt").write_bytes(b"a container's own")  # where a new local file appears next
    (work / "d.txt").write_bytes(b"mine")
    assert sync_counting() == 1  # refused (d.txt is not ours), the listing: nothing to send
    assert (copy / "d.txt").read_bytes() == b"a container's own"  # never overwritten

    record = pod / ".preevy-sync" / "record"
    record.write_bytes(record.read_bytes() + b" ")  # another machine copied since: a stale cache
    (work / "a.txt").write_bytes(b"a3")
    assert sync_counting() == 1
    assert (copy / "a.txt").read_bytes() == b"a3"
    (work / "c.txt").unlink()
    (work / "d.txt").unlink()  # while it stays, each copy is refused once: the pod's d.txt is not ours
    assert sync_counting() == 1  # the cache is current again
    assert not (copy / "c.txt").exists()


def test_the_pods_record_is_checked_while_the_files_are_scanned(tmp_path, shell, monkeypatch):
    work = tmp_path / "project" / "site"
    project = one_directory_project(tmp_path, "site", {"a.txt": b"a1"})
    pod = tmp_path / "pod"
    shell.cache = SyncCache(tmp_path / "cache", "here")
    answers: list[bool | None] = []
    check = filesync.Session.check

    def recorded_check(*args):
        answers.append(check(*args))
        return answers[-1]

    monkeypatch.setattr(filesync.Session, "check", recorded_check)
    run_sync(shell, project, pod, SYSTEM_TAR)
    assert answers == []  # a first copy from here: nothing cached to check
    (work / "a.txt").write_bytes(b"a2")
    run_sync(shell, project, pod, SYSTEM_TAR)
    assert answers == [True] and (pod / "relative" / "site" / "a.txt").read_bytes() == b"a2"
    (pod / ".preevy-sync" / "pending").write_text("[]")  # a copy left half done (from anywhere)
    (work / "a.txt").write_bytes(b"a3")
    run_sync(shell, project, pod, SYSTEM_TAR)
    assert answers == [True, False]  # so the listing, in the same exec
    assert (pod / "relative" / "site" / "a.txt").read_bytes() == b"a3"
    assert not (pod / ".preevy-sync" / "pending").exists()


def counted(calls: list[tuple], function):
    """function, each call's arguments appended to calls."""

    def call(*args):
        calls.append(args)
        return function(*args)

    return call


@pytest.mark.parametrize("taken", [False, True], ids=["empty-directory", "copy-made-elsewhere"])
def test_a_first_copy_measures_the_link_while_the_files_are_scanned(tmp_path, shell, monkeypatch, taken):
    monkeypatch.setattr(filesync, "EARLY_PROBE_AFTER", 0)  # a scan as long as a big tree's
    monkeypatch.setattr(filesync, "PROBE_MIN_SEND", 0)  # and a copy as big
    project = one_directory_project(tmp_path, "site", {"a.txt": b"a", "b.txt": b"b"})
    pod = tmp_path / "pod"
    if taken:  # another machine's copy: the write that skips the listing is refused, then the listing
        run_sync(shell, project, pod, SYSTEM_TAR)
        (tmp_path / "project" / "site" / "b.txt").write_bytes(b"b2")
    shell.cache = SyncCache(tmp_path / "cache", "here")
    probes: list[tuple] = []
    monkeypatch.setattr(filesync, "_probed", counted(probes, filesync._probed))
    stats = run_sync(shell, project, pod, filesync.Stream(compress=False, measure=True))
    assert stats.measured is not None and stats.measured > 0
    assert probes == []  # measured once, while scanning: not again in the exec that unpacks
    assert (pod / "relative" / "site" / "b.txt").read_bytes() == (b"b2" if taken else b"b")
    assert stats.files == (1 if taken else 2)


def test_a_send_of_a_few_files_is_written_in_process_and_a_big_one_by_gnu_tar(tmp_path, shell, monkeypatch):
    project = one_directory_project(tmp_path, "site", {"a": b"1", "b": b"2"})
    relayed: list[tuple] = []
    monkeypatch.setattr(tarstream, "archive", counted(relayed, tarstream.archive))
    run_sync(shell, project, tmp_path / "pod", filesync.Stream(compress=False))
    assert relayed == []  # two files: no tar process
    monkeypatch.setattr(filesync, "SYSTEM_TAR_MEMBERS", 2)
    (tmp_path / "project" / "site" / "c").write_text("3")
    (tmp_path / "project" / "site" / "d").write_text("4")
    run_sync(shell, project, tmp_path / "pod", filesync.Stream(compress=False))
    assert len(relayed) == 1
    assert (tmp_path / "pod" / "relative" / "site" / "d").read_text() == "4"


def test_a_first_copy_from_here_into_a_copy_made_elsewhere_lists_it(tmp_path, shell):
    project = one_directory_project(tmp_path, "site", {"a.txt": b"a1"})
    pod = tmp_path / "pod"
    run_sync(shell, project, pod, SYSTEM_TAR)  # without a cache: another machine
    (pod / "relative" / "site" / "a.txt").write_bytes(b"a container's")
    shell.cache = SyncCache(tmp_path / "cache", "here")
    calls = shell.calls
    run_sync(shell, project, pod, SYSTEM_TAR)
    assert shell.calls == calls + 1  # refused (taken), then the listing (same exec): nothing to send
    assert (pod / "relative" / "site" / "a.txt").read_bytes() == b"a container's"


@pytest.mark.parametrize(
    "early", ["", "probe", "check"], ids=["no-probe", "probe-while-scanning", "check-while-scanning"]
)
def test_an_exec_that_fails_before_any_script_answered_for_a_transient_reason_is_started_again(
    tmp_path, shell, capsys, monkeypatch, early
):
    busy = "Error from server (ServiceUnavailable): the server is currently unable to handle the request"
    opened = shell.open
    starts: list[str] = []

    def open_flaky(command):
        starts.append(command)
        if len(starts) > 1:
            return opened(command)
        proc = subprocess.Popen(
            ["sh", "-c", f"echo '{busy}' >&2; exit 1"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

        def transient():
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            proc.wait()
            return retry.transient_line(proc.stderr.read().decode())

        return filesync.Opened(proc, lambda: None, proc.kill, transient)

    shell.open = open_flaky
    project = one_directory_project(tmp_path, "site", {"a.txt": b"a"})
    stream = SYSTEM_TAR
    if early == "check":  # a copy made from here before: the pod's record checked in the exec that fails
        shell.cache = SyncCache(tmp_path / "cache", "here")
        opened_flaky, shell.open = shell.open, opened
        (tmp_path / "project" / "site" / "a.txt").write_bytes(b"before")
        run_sync(shell, project, tmp_path / "pod", SYSTEM_TAR)
        shell.open = opened_flaky
        (tmp_path / "project" / "site" / "a.txt").write_bytes(b"a")
    if early == "probe":  # the link measured while the files are scanned, in the exec that fails
        monkeypatch.setattr(filesync, "EARLY_PROBE_AFTER", 0)
        shell.cache = SyncCache(tmp_path / "cache", "here")
        stream = filesync.Stream(compress=False, measure=True, system_tar=True)
    stats = run_sync(shell, project, tmp_path / "pod", stream)
    assert stats.files == 1 and (tmp_path / "pod" / "relative" / "site" / "a.txt").read_bytes() == b"a"
    assert len(starts) == 2
    assert "`kubectl exec` failed (" in capsys.readouterr().err


def test_a_file_shrinking_while_sent_is_sent_again(tmp_path, shell, monkeypatch, capsys):
    project = one_directory_project(tmp_path, "logs", {"big.log": b"x" * 100_000})
    big = tmp_path / "project" / "logs" / "big.log"
    original = filesync._ExactReader.read
    shrunk: list[bool] = []

    def read_and_shrink(self, size=-1):
        if not shrunk:
            shrunk.append(True)
            big.write_bytes(b"short")
        return original(self, size)

    monkeypatch.setattr(filesync._ExactReader, "read", read_and_shrink)
    stats = run_sync(shell, project, tmp_path / "pod")
    assert (tmp_path / "pod" / "relative" / "logs" / "big.log").read_bytes() == b"short"
    said = [line for line in capsys.readouterr().err.splitlines() if "changed while being copied" in line]
    assert said == ["changed while being copied, copying again: relative/logs/big.log"]
    assert stats.files == 2  # sent twice


def test_a_file_changing_before_gnu_tar_reads_it_is_sent_again(tmp_path, shell, monkeypatch, capsys):
    project = one_directory_project(tmp_path, "logs", {"app.log": b"x" * 100_000, "other": b"o"})
    log = tmp_path / "project" / "logs" / "app.log"
    archive = tarstream.archive
    changed: list[bool] = []

    def archive_after_a_write(*args):
        if not changed:
            changed.append(True)
            log.write_bytes(b"rotated")  # after the scan, before tar reads it
        return archive(*args)

    monkeypatch.setattr(tarstream, "archive", archive_after_a_write)
    stats = run_sync(shell, project, tmp_path / "pod", SYSTEM_TAR)
    assert (tmp_path / "pod" / "relative" / "logs" / "app.log").read_bytes() == b"rotated"
    said = [line for line in capsys.readouterr().err.splitlines() if "changed while being copied" in line]
    assert said == ["changed while being copied, copying again: relative/logs/app.log"]
    assert stats.files == 3  # both files, then the changed one again
    record = syncplan.parse_record((tmp_path / "pod" / ".preevy-sync" / "record").read_text())
    assert record["relative/logs/app.log"].size == len(b"rotated")  # recorded as it now is


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_a_file_gone_before_gnu_tar_reads_it_is_left_out_of_the_record(
    tmp_path, shell, monkeypatch, compress
):
    project = one_directory_project(tmp_path, "site", {"a": b"1", "gone": b"2", "z": b"3"})
    archive = tarstream.archive

    def archive_after_a_removal(*args):
        (tmp_path / "project" / "site" / "gone").unlink()  # after the scan, before tar reads it
        return archive(*args)

    monkeypatch.setattr(tarstream, "archive", archive_after_a_removal)
    stats = run_sync(shell, project, tmp_path / "pod", filesync.Stream(compress=compress, system_tar=True))
    site = tmp_path / "pod" / "relative" / "site"
    assert sorted(p.name for p in site.iterdir()) == ["a", "z"] and (site / "z").read_bytes() == b"3"
    assert stats.files == 2
    record = syncplan.parse_record((tmp_path / "pod" / ".preevy-sync" / "record").read_text())
    assert sorted(record) == ["relative/site", "relative/site/a", "relative/site/z"]
    assert not (tmp_path / "pod" / ".preevy-sync" / "pending").exists()


def test_a_split_copy_records_what_went_in_either_stream(tmp_path, shell, monkeypatch):
    files = {f"{d}/{n}": f"{d}{n}".encode() for d in ("a", "b") for n in (1, 2, 3)}
    source = tmp_path / "project" / "site"
    for name, content in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(content)
    project = sync_project(
        tmp_path, {"app": {"volumes": [{"type": "bind", "source": str(source), "target": "/d"}]}}
    )
    archive = tarstream.archive
    streams: list[bool] = []

    def archive_after_a_removal(tar, names, *args):
        in_second = b"relative/site/b/2\0" in pathlib.Path(names).read_bytes()
        streams.append(in_second)
        if in_second:
            (source / "b" / "2").unlink()  # after the scan, before the second stream's tar reads it
        return archive(tar, names, *args)

    monkeypatch.setattr(tarstream, "archive", archive_after_a_removal)
    stats = run_sync(shell, project, tmp_path / "pod", SPLIT)
    assert sorted(streams) == [False, True]  # two tars, b/ in the second
    site = tmp_path / "pod" / "relative" / "site"
    assert sorted(str(p.relative_to(site)) for p in site.rglob("*") if p.is_file()) == [
        "a/1", "a/2", "a/3", "b/1", "b/3",
    ]  # fmt: skip
    assert (site / "b" / "3").read_bytes() == b"b3"
    assert (stats.files, stats.streams) == (5, 2)
    state = tmp_path / "pod" / ".preevy-sync"
    assert sorted(p.name for p in state.iterdir()) == ["record"]  # no FIFO nor pending list left
    record = syncplan.parse_record((state / "record").read_text())
    assert "relative/site/b/2" not in record and "relative/site/b/3" in record


def test_halves_keep_each_directory_in_one_stream():
    members = ["r", "r/a", "r/a/1", "r/a/2", "r/b", "r/b/1", "r/c/1", "r/c/2", "r/c/3"]
    first, second = filesync._halves(members)
    assert sorted(first + second) == sorted(members)
    for directory in ("r", "r/a", "r/b", "r/c"):
        inside = {m for m in members if os.path.dirname(m) == directory}
        assert inside <= set(first) or inside <= set(second)
    assert abs(len(first) - len(second)) <= 3


def test_dry_run_preview_writes_nothing(tmp_path, shell):
    project = one_directory_project(tmp_path, "site", {"a": b"aaa"})
    pod = tmp_path / "pod"
    with remote_dir_at(pod):
        plan, local = filesync.preview(shell, project)
    assert plan.send == ["relative/site", "relative/site/a"] and local["relative/site/a"].size == 3
    assert not pod.exists()


def test_tar_stream_holds_the_members_with_their_metadata(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"content")
    os.utime(tmp_path / "d" / "f", (1_700_000_000, 1_700_000_000))
    buffer = io.BytesIO()
    plan = syncplan.plan({}, Remote({}, None, set()), [])
    filesync.write_tar(
        buffer,
        [
            ("relative/d", "relative/d", tmp_path / "d"),
            ("relative/d/f", "relative/d/f", tmp_path / "d" / "f"),
        ],
        plan,
        True,
    )
    with tarfile.open(fileobj=io.BytesIO(buffer.getvalue()), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        names = [m.name for m in tar.getmembers()]
        assert (names[0], names[-1]) == (".preevy-sync/pending", ".preevy-sync/record.new")
        assert members["relative/d"].isdir()
        assert members["relative/d/f"].mtime == 1_700_000_000
        assert tar.extractfile("relative/d/f").read() == b"content"


def test_the_record_made_ahead_is_sent_when_every_member_went_as_planned(tmp_path):
    (tmp_path / "f").write_bytes(b"content")
    local = localscan.entry_of(os.lstat(tmp_path / "f"))
    plan = syncplan.plan({"relative/f": local}, Remote({}, None, set()), ["relative/f"])
    planned = syncplan.record_json(plan.record)
    buffer = io.BytesIO()
    sent = filesync.write_tar(buffer, [("relative/f", "relative/f", tmp_path / "f")], plan, False, planned)
    assert sent.record is planned and not sent.changed
    (tmp_path / "f").write_bytes(b"changed since the scan")
    sent = filesync.write_tar(
        io.BytesIO(), [("relative/f", "relative/f", tmp_path / "f")], plan, False, planned
    )
    assert sent.record != planned
    assert syncplan.parse_record(sent.record)["relative/f"].size == len(b"changed since the scan")


def test_a_file_gone_before_it_is_sent_is_left_out_of_the_stream_and_the_record(tmp_path):
    buffer = io.BytesIO()
    gone = tmp_path / "gone.txt"
    plan = syncplan.plan(
        {"relative/gone.txt": Entry("file", 10, 1000, 0o644)}, Remote({}, None, set()), ["relative/gone.txt"]
    )
    planned = syncplan.record_json(plan.record)  # made ahead, while the pod answered: not as it went
    sent = filesync.write_tar(
        buffer, [("relative/gone.txt", "relative/gone.txt", gone)], plan, False, planned
    )
    assert sent.vanished == ["relative/gone.txt"]
    with tarfile.open(fileobj=io.BytesIO(buffer.getvalue())) as tar:
        assert "relative/gone.txt" not in tar.getnames()
        record = syncplan.parse_record(tar.extractfile(".preevy-sync/record.new").read().decode())
    assert record == {}
