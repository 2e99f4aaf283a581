"""The local side of the copy: what the scan finds under the bind-mount sources, and what it leaves out."""

import os
import pathlib

import pytest

from kubectl_preevy import ignore, localscan
from kubectl_preevy.compose import SyncedPath


def test_scan_lists_files_dirs_and_links_under_remote_names(tmp_path):
    site = tmp_path / "site"
    (site / "css").mkdir(parents=True)
    (site / "index.html").write_text("hello")
    (site / "css" / "a.css").write_text("body{}")
    (site / "latest").symlink_to("index.html")
    os.mkfifo(site / "fifo")
    os.utime(site / "index.html", ns=(1_700_000_000_700_000_000, 1_700_000_000_700_000_000))
    found = localscan.scan([SyncedPath(site, "relative/site", True)])
    assert sorted(found) == [
        "relative/site",
        "relative/site/css",
        "relative/site/css/a.css",
        "relative/site/index.html",
        "relative/site/latest",
    ]
    entry, local = found["relative/site/index.html"]
    assert entry == localscan.Entry("file", 5, 1_700_000_000, 0o644 & ~_umask(), 1_700_000_000_700_000_000)
    assert pathlib.Path(local) == site / "index.html"
    assert found["relative/site/latest"][0] == localscan.Entry(
        "link", len("index.html"), os.lstat(site / "latest").st_mtime_ns // 10**9, 0o777
    )
    assert found["relative/site/css"][0].kind == "dir" and found["relative/site/css"][0].size == 0
    assert list(found).index("relative/site/css") < list(found).index("relative/site/css/a.css")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_scan_follows_a_root_that_is_a_symlink(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("x")
    (tmp_path / "alias").symlink_to("real")
    found = localscan.scan([SyncedPath(tmp_path / "alias", "relative/alias", True)])
    assert found["relative/alias"][0].kind == "dir"
    assert "relative/alias/f" in found


def test_a_root_that_is_a_file_is_one_entry(tmp_path):
    (tmp_path / "app.ini").write_text("x=1")
    found = localscan.scan([SyncedPath(tmp_path / "app.ini", "relative/app.ini", True)])
    assert list(found) == ["relative/app.ini"] and found["relative/app.ini"][0].kind == "file"


def tree(root: pathlib.Path, paths: list[str]) -> None:
    for path in paths:
        target = root / path
        if path.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(path)


def scanned(project: pathlib.Path, root: str, patterns: list[str]) -> list[str]:
    excluder = ignore.Excluder(project, ignore.compile_patterns(patterns))
    found = localscan.scan([SyncedPath(project / root, f"relative/{root}", True)], excluder)
    return sorted(p.removeprefix(f"relative/{root}").lstrip("/") for p in found)


ALL = ["", ".git", ".git/HEAD", "a.log", "keep.log", "node_modules", "node_modules/x.js", "src", "src/a.py"]


@pytest.mark.parametrize(
    "patterns, expected",
    [
        ([], ALL),
        (
            ["app/.git", "app/node_modules"],
            ["", "a.log", "keep.log", "src", "src/a.py"],
        ),  # directories pruned
        (["**/*.py"], [p for p in ALL if p != "src/a.py"]),
        (
            ["app/*.log", "!app/keep.log", "app/.git"],
            ["", "keep.log", "node_modules", "node_modules/x.js", "src", "src/a.py"],
        ),
        # an excluded directory is walked when a `!` may re-include what it holds, and kept only then
        (
            ["app/node_modules", "!app/node_modules/x.js", "app/src"],
            [p for p in ALL if not p.startswith("src")],
        ),
        (["app/src", "!app/node_modules/x.js"], [p for p in ALL if not p.startswith("src")]),
        (["*.log"], ALL),  # anchored at the project directory: app/a.log is not a.log
    ],
)
def test_exclusions_are_matched_from_the_project_directory(tmp_path, patterns, expected):
    tree(tmp_path / "app", [".git/HEAD", "a.log", "keep.log", "node_modules/x.js", "src/a.py"])
    assert scanned(tmp_path, "app", patterns) == expected


def test_a_mount_root_a_pattern_names_is_copied_without_what_it_holds(tmp_path):
    tree(tmp_path / "sub" / "data", ["f", "keep"])
    assert scanned(tmp_path, "sub/data", ["sub/data"]) == [""]
    assert scanned(tmp_path, "sub/data", ["sub"]) == [""]  # a parent named: the same
    assert scanned(tmp_path, "sub/data", ["sub", "!sub/data/keep"]) == ["", "keep"]


def test_nothing_outside_the_project_directory_is_excluded(tmp_path):
    project, outside = tmp_path / "project", tmp_path / "outside"
    tree(outside, ["a.log"])
    project.mkdir()
    excluder = ignore.Excluder(project, ignore.compile_patterns(["*.log", "**/*.log"]))
    found = localscan.scan([SyncedPath(outside, "absolute/outside", True)], excluder)
    assert "absolute/outside/a.log" in found
