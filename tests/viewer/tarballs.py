"""Small npm package tarballs, built as npm packs them (``package/…`` members, gzipped), and
the ``Package`` pin that names each one by its own integrity."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable
from pathlib import Path

from dicomite.viewer.install import DIST, RECORD, record
from dicomite.viewer.package import OHIF_APP, IntegrityCheck, Package

INDEX = b'<!doctype html><script src="/app.bundle.0123456789abcdef.js"></script>'
BUILD = {
    "package/package.json": b'{"name": "@test/app", "version": "1.0.0"}',
    "package/LICENSE": b"MIT",
    "package/README.md": b"not installed",
    "package/dist/index.html": INDEX,
    "package/dist/app-config.js": b"window.config = {demo: true};",
    "package/dist/app.bundle.0123456789abcdef.js": b"console.log('app');",
    "package/dist/0123456789abcdef.wasm": b"\0asm",
    "package/dist/assets/favicon.ico": b"icon",
    "package/dist/assets/images/a b.png": b"png",
    "package/dist/_redirects": b"/* /index.html 200",
}


Member = tuple[tarfile.TarInfo, bytes]


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        info.linkname = "index.html"
    return info, data


def npm_tarball(
    path: Path,
    files: dict[str, bytes] | None = None,
    extra: Iterable[Member] = (),
    version: str = "1.0.0",
) -> Package:
    """Writes the tarball to ``path``; returns a pin of it (name ``@test/app``)."""
    with tarfile.open(path, "w:gz") as tar:
        members = [member(name, data) for name, data in (BUILD if files is None else files).items()]
        for info, data in [*members, *extra]:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return pin(path, version)


def pin(path: Path, version: str = "1.0.0") -> Package:
    """``@test/app`` at ``version``, pinned to the integrity of the file at ``path``."""
    check = IntegrityCheck()
    check.update(path.read_bytes())
    return Package("@test/app", version, check.value)


def lay_out(viewer_dir: Path, package: Package = OHIF_APP) -> Path:
    """The small build laid out as ``install`` leaves one, recorded as ``package`` (OHIF's pin,
    whose real tarball the in-process tests do without)."""
    folder = viewer_dir / package.folder_name
    for name, data in BUILD.items():
        if name.startswith("package/dist/"):
            path = folder.joinpath(DIST, *name.removeprefix("package/dist/").split("/"))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    (folder / RECORD).write_text(json.dumps(record(package)))
    return folder
