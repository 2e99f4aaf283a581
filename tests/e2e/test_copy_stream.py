"""The copy (filesync.sync, in-process) with the real kubectl into a pod of the emulator that has docker:dind's
BusyBox userland: the stream it chooses, and the files arriving byte for byte, whichever writer made the tar."""

import hashlib
import io
import os
import pathlib
import tarfile

import pytest

from kubectl_preevy import filesync
from kubectl_preevy.compose import ComposeProject
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.kubectl import Kubectl
from tests.e2e import sleeping_docker_pod, user_env

POD = "copy-target"


@pytest.fixture
def pod(kubesim, namespace) -> str:
    """A pod of the docker image (BusyBox sh, tar, stat...) that only sleeps, its /var/lib/preevy a volume."""
    return sleeping_docker_pod(kubesim, namespace, POD, state_volume=True)


def project_with(tmp_path: pathlib.Path, files: dict[str, bytes]) -> ComposeProject:
    work = tmp_path / "project"
    for name, content in files.items():
        (work / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        (work / "data" / name).write_bytes(content)
    (work / "data" / "link").symlink_to("a.txt")
    model = {
        "name": "copytest",
        "services": {"app": {"volumes": [{"type": "bind", "source": str(work / "data"), "target": "/d"}]}},
    }
    return ComposeProject(
        name="copytest", files=[work / "compose.yaml"], working_dir=work, model=model, x_preevy=None
    )


def tree_in_pod(kubesim, namespace: str) -> dict[str, object]:
    archive = kubesim.kubectl(
        "exec", "-n", namespace, POD, "-c", "docker", "--",
        "tar", "cf", "-", "-C", "/var/lib/preevy/projects/copytest/relative/data", ".",
        input=b"",
    ).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {
            m.name.removeprefix("./"): _what(tar, m) for m in tar.getmembers() if m.name not in (".", "./")
        }


def _what(tar: tarfile.TarFile, member: tarfile.TarInfo) -> object:
    if member.issym():
        return ("link", member.linkname)
    if member.isdir():
        return ("dir",)
    content = tar.extractfile(member)
    assert content is not None
    return ("file", hashlib.sha256(content.read()).hexdigest(), member.mode & 0o777)


def local_tree(root: pathlib.Path) -> dict[str, object]:
    tree: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if path.is_symlink():
            tree[name] = ("link", os.readlink(path))
        elif path.is_dir():
            tree[name] = ("dir",)
        else:
            tree[name] = ("file", hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mode & 0o777)
    return tree


FILES = {
    "a.txt": b"line of text\n" * 5000,
    "bin/random.bin": os.urandom(300_000),
    "deep/er/name with spaces.txt": b"x",
    "deep/" + "long-" * 30 + "name.txt": b"a name longer than a tar header holds",
}


@pytest.mark.parametrize("system_tar", [True, False], ids=["system-tar", "python-writer"])
def test_files_arrive_byte_for_byte_and_a_one_file_change_sends_one_file(
    kubesim, namespace, pod, tmp_path, system_tar
):
    env = user_env(kubesim, tmp_path / "config")
    kubectl = Kubectl(None, None, namespace, env)
    project = project_with(tmp_path, FILES)
    stats = filesync.sync(kubectl, pod, "docker", project, system_tar=system_tar)
    assert stats.files == len(FILES)
    assert (
        stats.stream == filesync.STREAM_PLAIN
    )  # the emulator is on this machine; a small copy is not probed
    assert tree_in_pod(kubesim, namespace) == local_tree(tmp_path / "project" / "data")

    (tmp_path / "project" / "data" / "a.txt").write_bytes(b"changed\n")
    stats = filesync.sync(kubectl, pod, "docker", project, system_tar=system_tar)
    assert (stats.files, stats.unchanged) == (1, len(FILES) - 1)
    assert tree_in_pod(kubesim, namespace) == local_tree(tmp_path / "project" / "data")


def test_a_slow_link_is_measured_and_the_copy_goes_gzipped(kubesim, namespace, pod, tmp_path, monkeypatch):
    env = user_env(kubesim, tmp_path / "config")
    kubectl = Kubectl(None, None, namespace, env)
    project = project_with(tmp_path, FILES)
    monkeypatch.setattr(filesync, "PROBE_MIN_SEND", 0)  # a small tree, probed as a big one would be
    kubesim.shape_link(2_000_000)  # 16 Mbit/s, far below where gzip -1 pays
    stats = filesync.sync(kubectl, pod, "docker", project)
    kubesim.shape_link(None)
    assert stats.stream.startswith("tar.gz, level 6 (the link measured ")  # gzip -6: the link is the limit
    assert tree_in_pod(kubesim, namespace) == local_tree(tmp_path / "project" / "data")


def test_a_first_copy_measures_a_slow_link_while_its_files_are_scanned(
    kubesim, namespace, pod, tmp_path, monkeypatch
):
    env = user_env(kubesim, tmp_path / "config")
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # nothing copied from here yet
    kubectl = Kubectl(None, None, namespace, env)
    project = project_with(tmp_path, FILES)
    monkeypatch.setattr(filesync, "EARLY_PROBE_AFTER", 0)  # as a big tree's scan would take
    monkeypatch.setattr(filesync, "PROBE_MIN_SEND", 0)
    probes: list[tuple] = []
    probed = filesync._probed

    def probing(*args):
        probes.append(args)
        return probed(*args)

    monkeypatch.setattr(filesync, "_probed", probing)
    kubesim.shape_link(2_000_000)
    try:
        stats = filesync.sync(kubectl, pod, "docker", project)
    finally:
        kubesim.shape_link(None)
    assert stats.stream.startswith("tar.gz, level 6 (the link measured ")
    assert probes == []  # measured while scanning, not in the exec that unpacks
    assert tree_in_pod(kubesim, namespace) == local_tree(tmp_path / "project" / "data")


def many_files_project(tmp_path: pathlib.Path, directories: int, per_directory: int) -> ComposeProject:
    files = {
        f"d{d:02d}/f{n:03d}.txt": b"file %d of directory %d\n" % (n, d) * (1 + n % 7)
        for d in range(directories)
        for n in range(per_directory)
    }
    return project_with(tmp_path, files)


def state_dir_in_pod(kubesim, namespace: str) -> list[str]:
    listing = kubesim.kubectl(
        "exec", "-n", namespace, POD, "-c", "docker", "--",
        "ls", "-A", "/var/lib/preevy/projects/copytest/.preevy-sync",
    ).stdout  # fmt: skip
    return sorted(listing.split())


def test_a_big_first_copy_is_unpacked_by_two_tars_at_once(kubesim, namespace, pod, tmp_path):
    env = user_env(kubesim, tmp_path / "config")
    kubectl = Kubectl(None, None, namespace, env)
    project = many_files_project(tmp_path, directories=25, per_directory=90)  # 2,250 files: past SPLIT_MIN
    stats = filesync.sync(kubectl, pod, "docker", project)
    assert stats.files == 25 * 90
    assert stats.stream == "plain tar in 2 streams (the cluster is on this machine)"
    assert tree_in_pod(kubesim, namespace) == local_tree(tmp_path / "project" / "data")
    assert state_dir_in_pod(kubesim, namespace) == ["record"]  # no FIFO, no pending list left

    stats = filesync.sync(kubectl, pod, "docker", project)
    assert stats.files == 0  # the record says what both halves wrote


def test_a_split_copy_whose_second_exec_fails_records_nothing_and_the_next_copy_completes(
    kubesim, namespace, pod, tmp_path, monkeypatch
):
    env = user_env(kubesim, tmp_path / "config")
    kubectl = Kubectl(None, None, namespace, env)
    # 120 files: GNU tar writes them (past SYSTEM_TAR_MEMBERS)
    project = many_files_project(tmp_path, directories=4, per_directory=30)
    monkeypatch.setattr(filesync, "SPLIT_MIN_MEMBERS", 10)
    monkeypatch.setattr(filesync, "split_writer", lambda remote_dir, fifo: "echo refused >&2; exit 3")
    with pytest.raises(PreevyError) as failed:
        filesync.sync(kubectl, pod, "docker", project)
    assert failed.value.exit_code == ExitCode.FAILURE
    assert str(failed.value).startswith(
        "copying files into the pod failed: command terminated with exit code 3"
    )
    assert "\n" not in str(failed.value)
    listing = state_dir_in_pod(kubesim, namespace)
    assert "record" not in listing and "pending" in listing  # the next copy knows what may be ours

    monkeypatch.undo()
    stats = filesync.sync(kubectl, pod, "docker", project)
    assert stats.files > 0 and stats.files + stats.unchanged == 4 * 30  # what the first half wrote is adopted
    assert tree_in_pod(kubesim, namespace) == local_tree(tmp_path / "project" / "data")
    assert state_dir_in_pod(kubesim, namespace) == ["record"]
