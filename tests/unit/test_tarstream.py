import os
import tarfile

import pytest

from kubectl_preevy import tarstream


def _gnu_tar() -> str:
    tar = tarstream.gnu_tar()
    if tar is None:
        pytest.fail("these tests need GNU tar (the system tar of the development machine and CI)")
    return tar


def test_gnu_tar_writes_the_members_then_the_one_named_once_all_were_read(tmp_path):
    view = tmp_path / "view"
    long_name = "d/" + "very-long-" * 20 + "name.txt"
    odd = "d/odd \\ name\nwith a newline, \t a tab and \u00e9"
    (view / "d").mkdir(parents=True)
    (view / long_name).write_bytes(b"x" * 1000)
    (view / "d" / "empty").write_bytes(b"")
    (view / "d" / "link").symlink_to("empty")
    (view / odd).write_bytes(b"odd")
    (view / "mark").mkdir()
    members = ["d", long_name, "d/gone", "d/empty", "d/link", odd]
    names = tmp_path / "names"
    names.write_bytes(b"".join(n.encode() + b"\0" for n in [*members, "mark"]))
    read: list[str] = []

    def last(warnings):
        assert "d/gone: Cannot stat" in warnings
        (view / "record").write_text(repr(read))  # what went, known before the member is written
        return "record"

    with open(tmp_path / "out.tar", "wb") as out:
        out.write(tarstream.small_member("first", b"ours"))  # what we wrote before tar's
        out.flush()
        archived = tarstream.archive(
            _gnu_tar(), str(names), str(view), out.fileno(), "mark", read.append, last
        )
    went = ["d", long_name, "d/empty", "d/link", odd]
    assert read == went and archived.marked
    assert archived.names == [*went, "record"]
    assert archived.returncode == 2 and "d/gone: Cannot stat" in archived.stderr
    with tarfile.open(tmp_path / "out.tar") as tar:
        assert tar.getnames() == ["first", *went, "mark", "record"]
        assert tar.extractfile(long_name).read() == b"x" * 1000
        assert tar.extractfile(odd).read() == b"odd"
        assert tar.getmember("d/link").linkname == "empty"
        assert tar.extractfile("record").read().decode() == repr(went)


def test_names_are_read_back_from_gnu_tars_listing():
    assert tarstream.unescape(b"plain/name.txt") == "plain/name.txt"
    assert tarstream.unescape(b"a\\\\b\\n\\t\\303\\251\\177") == "a\\b\n\t\u00e9\x7f"


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
