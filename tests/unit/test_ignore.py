"""The copy's exclusions (.preevyignore, x-preevy sync.exclude): Docker's .dockerignore matching."""

import pathlib
import typing

import pytest

from kubectl_preevy import filesync, ignore
from kubectl_preevy.errors import PreevyError


def excluded(patterns: str, path: str) -> bool:
    return ignore.excluded(path, ignore.compile_patterns(patterns.splitlines()))


@pytest.mark.parametrize(
    "patterns, path, expected",
    [
        (".git", ".git/HEAD", True),  # a directory's pattern covers what is under it
        (".git", "sub/.git/HEAD", False),  # anchored at the project directory, as Docker does
        ("**/node_modules", "a/b/node_modules/x/y.js", True),
        ("**/node_modules", "node_modules/x.js", True),
        ("*.log", "a.log", True),
        ("*.log", "logs/a.log", False),  # `*` stays within one segment
        ("logs/*.log\n!logs/keep.log", "logs/keep.log", False),
        ("logs/*.log\n!logs/keep.log", "logs/other.log", True),
        ("/build", "build/out.bin", True),  # a leading slash is ignored
        ("# comment\n\n", "anything", False),
        ("file?.txt", "file1.txt", True),
        ("file[0-9].txt", "filea.txt", False),
        ("file[!0-9].txt", "filea.txt", True),
        ("a/**/z", "a/z", True),
        ("a/**/z", "a/b/c/z", True),
    ],
)
def test_dockerignore_matching(patterns, path, expected):
    assert excluded(patterns, path) is expected


def test_sync_exclude_follows_preevyignore_and_is_checked(tmp_path: pathlib.Path):
    (tmp_path / ".preevyignore").write_text("*.tmp\n")
    excluder = ignore.load(tmp_path, {"sync": {"exclude": ["!keep.tmp"]}}, "compose.yaml")
    assert excluder.excluded(tmp_path / "x.tmp")
    assert not excluder.excluded(tmp_path / "keep.tmp")
    assert not excluder.excluded(pathlib.Path("/elsewhere/x.tmp"))  # outside the project: never
    bad: typing.Any
    for bad in (
        {"sync": {"exclude": "x"}},
        {"sync": ["x"]},
        {"sync": {"exclude": [1]}},
        {"sync": {"ex": []}},
    ):
        with pytest.raises(PreevyError):
            ignore.load(tmp_path, bad, "compose.yaml")


@pytest.mark.parametrize(
    "server, environ, compressed",
    [
        ("https://127.0.0.1:6443", {}, False),
        ("https://localhost:6443", {}, False),
        ("https://[::1]:6443", {}, False),
        ("https://10.0.0.1:6443", {}, True),
        ("https://k8s.example.com", {}, True),
        ("", {}, True),  # in a cluster's pod: the link is not known
        ("https://k8s.example.com", {"PREEVY_COPY_STREAM": "tar"}, False),
        ("https://127.0.0.1:6443", {"PREEVY_COPY_STREAM": "gzip"}, True),
    ],
)
def test_the_copy_stream_is_chosen_by_the_link(server, environ, compressed):
    assert filesync.choose_compress(filesync._local(server), environ) is compressed
