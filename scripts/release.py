#!/usr/bin/env python3
"""Packs the zipapp and LICENSE into dist/kubectl-preevy_<version>.tar.gz (deterministic), says
where to publish it and, with --manifest, writes the archive's version, homepage, uri and sha256 into
the krew manifest.

    python3 scripts/release.py [--binary dist/kubectl-preevy] [--output-dir dist]
                               [--manifest krew-manifest.yaml] [--base-url URL]

The version is read from the zipapp itself (kubectl_preevy/__init__.py inside it), so the
archive and the manifest always name the version of the binary they carry. The project's home is
setup.cfg's `url` (the one place it is written); the archive goes to
<base-url>/v<version>/<archive>, base-url defaulting to <home>/releases/download.
"""

import argparse
import ast
import configparser
import gzip
import hashlib
import io
import re
import sys
import tarfile
import zipfile
from pathlib import Path

from build_zipapp import ROOT, source_date_epoch

NAME = "kubectl-preevy"


def home_url(setup_cfg: Path = ROOT / "setup.cfg") -> str:
    """The project's home: setup.cfg's [metadata] url."""
    config = configparser.ConfigParser()
    config.read(setup_cfg, encoding="utf-8")
    return config["metadata"]["url"].strip().rstrip("/")


def download_uri(base_url: str, version: str, archive: str) -> str:
    return f"{base_url.rstrip('/')}/v{version}/{archive}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", type=Path, default=ROOT / "dist" / NAME)
    parser.add_argument("--output-dir", type=Path, default=ROOT / "dist")
    parser.add_argument("--manifest", type=Path, help="krew manifest to update (default: none)")
    parser.add_argument(
        "--base-url",
        help="where release archives are published (default: setup.cfg's url + /releases/download)",
    )
    args = parser.parse_args(argv)
    home = home_url()
    base_url = args.base_url or f"{home}/releases/download"

    version = zipapp_version(args.binary)
    archive = args.output_dir / f"{NAME}_{version}.tar.gz"
    write_archive(archive, {NAME: args.binary, "LICENSE": ROOT / "LICENSE"}, source_date_epoch())
    sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
    uri = download_uri(base_url, version, archive.name)
    print(f"{archive} sha256={sha256}")
    print(f"publish it at: {uri}")
    if args.manifest:
        update_manifest(
            args.manifest, {"version": f"v{version}", "homepage": home, "uri": uri, "sha256": sha256}
        )
        print(f"{args.manifest}: version v{version}")
    return 0


def zipapp_version(binary: Path) -> str:
    with zipfile.ZipFile(binary) as app:
        source = app.read("site-packages/kubectl_preevy/__init__.py").decode()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) == "__version__" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise SystemExit(f"no __version__ in {binary}")


def write_archive(archive: Path, members: dict[str, Path], mtime: int) -> None:
    """A tar.gz whose bytes depend only on the members' contents: sorted names, fixed
    owner, mode and time, no gzip name or time. Only regular files (what krew extracts)."""
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(members):
            data = members[name].read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), mtime, 0o755 if name == NAME else 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    archive.parent.mkdir(parents=True, exist_ok=True)
    with open(archive, "wb") as out, gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
        gz.write(tar_bytes.getvalue())


def update_manifest(manifest: Path, values: dict[str, str]) -> None:
    """Edits these keys' lines in place (each must occur once), keeping the file's comments and layout."""
    text = manifest.read_text()
    for key, value in values.items():
        text, count = re.subn(rf"^(\s*{key}:)\s*\S.*$", rf"\g<1> {value}", text, flags=re.MULTILINE)
        if count != 1:
            raise SystemExit(f"{manifest}: expected exactly one `{key}:` line, found {count}")
    manifest.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
