"""Fixtures of the packaging tests: the zipapp and the release archive, each built once per
session with the real build scripts (a few seconds each)."""

import shutil
from pathlib import Path

import pytest

from tests.packaging.support import NAME, ROOT, build_zipapp, run_script


@pytest.fixture(scope="session")
def zipapp(tmp_path_factory) -> Path:
    """dist/kubectl-preevy as `make dist` builds it, in a temporary directory."""
    build = tmp_path_factory.mktemp("zipapp")
    return build_zipapp(build / "dist" / NAME, build / "work")


@pytest.fixture(scope="session")
def release(zipapp, tmp_path_factory) -> tuple[Path, Path]:
    """(archive, manifest): `make release` into a temporary directory, on a copy of the manifest."""
    out = tmp_path_factory.mktemp("release")
    manifest = out / "krew-manifest.yaml"
    shutil.copy(ROOT / "krew-manifest.yaml", manifest)
    run_script("release.py", "--binary", str(zipapp), "--output-dir", str(out), "--manifest", str(manifest))
    (archive,) = out.glob(f"{NAME}_*.tar.gz")
    return archive, manifest
