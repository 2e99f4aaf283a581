import io
import os
import tarfile

import pytest

from kubectl_preevy import tarstream


def _gnu_tar() -> str:
    tar = tarstream.gnu_tar()
    if tar is None:
        pytest.fail("these tests need GNU tar (the system tar of the development machine and CI)")
    return tar


def test_the_relay_passes_members_whole_and_leaves_out_the_end_of_archive(tmp_path):
    long_name = "d/" + "very-long-" * 20 + "name.txt"
    (tmp_path / "d").mkdir()
    (tmp_path / long_name).write_bytes(b"x" * 1000)
    (tmp_path / "d" / "empty").write_bytes(b"")
    (tmp_path / "d" / "link").symlink_to("empty")
    names = tmp_path / "names"
    names.write_bytes(b"".join(n.encode() + b"\0" for n in ["d", long_name, "d/empty", "d/link"]))
    out = io.BytesIO()
    relayed = tarstream.relay(
        [_gnu_tar(), *tarstream.GNU_TAR_FLAGS, f"--files-from={names}"], str(tmp_path), out
    )
    assert relayed.returncode == 0
    assert relayed.names == ["d", long_name, "d/empty", "d/link"]
    data = out.getvalue()
    assert len(data) == relayed.bytes and len(data) % 512 == 0
    assert data[-512:] != bytes(512)  # no end-of-archive blocks: ours follow
    ours = tarstream.small_member(".preevy-sync/record.new", b"{}")
    with tarfile.open(fileobj=io.BytesIO(data + ours + tarstream.END_OF_ARCHIVE)) as tar:
        assert tar.getnames() == ["d", long_name, "d/empty", "d/link", ".preevy-sync/record.new"]
        assert tar.extractfile(long_name).read() == b"x" * 1000
        assert tar.getmember("d/link").linkname == "empty"


def test_a_member_split_across_reads_is_passed_on_exactly():
    source = io.BytesIO()
    with tarfile.open(fileobj=source, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for n, size in enumerate((0, 1, 511, 512, 513, 70_000)):
            info = tarfile.TarInfo(f"f{n}" + "x" * (120 if n == 3 else 0))
            info.size = size
            tar.addfile(info, io.BytesIO(os.urandom(size)))
    stream = source.getvalue()
    for step in (1, 7, 512, 4096):
        out = io.BytesIO()
        members = tarstream._Members(out)
        for i in range(0, len(stream), step):
            if not members.done:
                members.feed(stream[i : i + step])
        assert members.done
        assert members.names == ["f0", "f1", "f2", "f3" + "x" * 120, "f4", "f5"]
        with tarfile.open(fileobj=io.BytesIO(out.getvalue() + tarstream.END_OF_ARCHIVE)) as tar:
            assert [m.size for m in tar.getmembers()] == [0, 1, 511, 512, 513, 70_000]


def test_a_tar_that_is_not_gnu_is_not_used(tmp_path, monkeypatch):
    fake = tmp_path / "tar"
    fake.write_text("#!/bin/sh\necho 'bsdtar 3.7.2 - libarchive 3.7.2'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    tarstream.gnu_tar.cache_clear()
    try:
        assert tarstream.gnu_tar() is None
    finally:
        tarstream.gnu_tar.cache_clear()
