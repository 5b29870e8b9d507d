"""``dicomite viewer install``: the pinned package's tarball, downloaded from the npm registry
(or read from a file), checked against its integrity, and its built ``dist/`` unpacked into the
viewer dir. Installing again is a no-op while the folder holds that version and integrity.

    VIEWER_DIR/ohif-app-3.13.2/dist/…          the build, served as it is, never edited
    VIEWER_DIR/ohif-app-3.13.2/LICENSE         the package's licence and package.json, kept beside
    VIEWER_DIR/ohif-app-3.13.2/installed.json  name, version and integrity, written last

A folder is installed whole or not at all: unpacked under a temporary name and renamed into
place, so a server never sees half a build and concurrent installs end with one copy.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path

import httpx

from dicomite.viewer.package import NPM_REGISTRY, IntegrityCheck, Package

MAX_TARBALL_BYTES = 256 * 1024**2
DOWNLOAD_TIMEOUT_SECONDS = 60.0
RECORD = "installed.json"
DIST = "dist"
_DIST_PREFIX = "package/dist/"
# Beside the build, never served: what the package says about itself and its licence.
_KEPT = {"package/LICENSE": "LICENSE", "package/package.json": "package.json"}
_CHUNK = 1024 * 1024


class InstallError(Exception):
    """The install failed; the message says why, for the person who ran it."""


class DownloadFailed(InstallError):
    pass


class IntegrityMismatch(InstallError):
    pass


class BadArchive(InstallError):
    pass


def installed_folder(viewer_dir: Path, package: Package) -> Path | None:
    """The package's folder when it holds a complete install of exactly this version."""
    folder = viewer_dir / package.folder_name
    try:
        found = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return folder if found == record(package) else None


def install(
    package: Package,
    viewer_dir: Path,
    *,
    tarball: Path | None = None,
    registry: str = NPM_REGISTRY,
) -> Path:
    """The package's folder, installed now unless it was already."""
    existing = installed_folder(viewer_dir, package)
    if existing is not None:
        return existing
    viewer_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=viewer_dir, prefix=".install-") as work:
        archive = tarball or _download(package.tarball_url(registry), Path(work) / "package.tgz")
        _check_integrity(archive, package)
        staging = Path(work) / package.folder_name
        _unpack(archive, staging)
        (staging / RECORD).write_text(json.dumps(record(package), indent=2) + "\n")
        folder = _put_in_place(staging, viewer_dir, package, Path(work))
    _remove_other_versions(viewer_dir, package)
    return folder


def record(package: Package) -> dict[str, str]:
    """What ``installed.json`` says about a complete install."""
    return {"name": package.name, "version": package.version, "integrity": package.integrity}


def _download(url: str, target: Path) -> Path:
    try:
        with httpx.stream(
            "GET", url, follow_redirects=True, timeout=DOWNLOAD_TIMEOUT_SECONDS
        ) as response:
            if response.status_code != 200:
                raise DownloadFailed(f"{url} answered HTTP {response.status_code}.")
            _save(response, target, url)
    except httpx.HTTPError as error:
        raise DownloadFailed(f"Could not download {url}: {error}") from None
    return target


def _save(response: httpx.Response, target: Path, url: str) -> None:
    size = 0
    with target.open("wb") as out:
        for chunk in response.iter_bytes(_CHUNK):
            size += len(chunk)
            if size > MAX_TARBALL_BYTES:
                raise DownloadFailed(f"{url} is larger than {MAX_TARBALL_BYTES} bytes.")
            out.write(chunk)


def _check_integrity(archive: Path, package: Package) -> None:
    check = IntegrityCheck()
    try:
        with archive.open("rb") as source:
            while chunk := source.read(_CHUNK):
                check.update(chunk)
    except OSError as error:
        raise InstallError(f"Cannot read {archive}: {error.strerror}.") from None
    if not check.matches(package):
        raise IntegrityMismatch(
            f"{archive.name} is not {package.name} {package.version}: its integrity is "
            f"{check.value}, the pinned one {package.integrity}. Nothing was installed."
        )


def _unpack(archive: Path, staging: Path) -> None:
    """The tarball's ``package/dist/`` tree (and the kept files) into ``staging``."""
    (staging / DIST).mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                _extract(tar, member, staging)
    except (tarfile.TarError, EOFError, zlib.error) as error:
        raise BadArchive(f"{archive.name} is not a readable npm tarball: {error}") from None


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, staging: Path) -> None:
    target = _destination(member.name, staging)
    if target is None:
        return
    if member.isdir():
        target.mkdir(parents=True, exist_ok=True)
        return
    source = tar.extractfile(member) if member.isfile() else None
    if source is None:  # links and devices have no place in a web build
        raise BadArchive(f"{member.name} is not a regular file.")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with source, target.open("xb") as out:
            shutil.copyfileobj(source, out, _CHUNK)
    except FileExistsError:
        raise BadArchive(f"{member.name} is in the tarball twice.") from None


def _destination(name: str, staging: Path) -> Path | None:
    """Where a member goes, None for members left out; refuses names that would leave the
    folder (``..``, empty or ``.`` segments, backslashes)."""
    if name in _KEPT:
        return staging / _KEPT[name]
    if not name.startswith(_DIST_PREFIX):
        return None
    relative = name[len(_DIST_PREFIX) :].rstrip("/")
    if not relative:
        return None
    parts = relative.split("/")
    if any(part in ("", ".", "..") or "\\" in part or "\0" in part for part in parts):
        raise BadArchive(f"{name!r} is not a safe file name.")
    return staging.joinpath(DIST, *parts)


def _put_in_place(staging: Path, viewer_dir: Path, package: Package, work: Path) -> Path:
    """Renames the staged install into place. Another install that finished first is kept;
    an incomplete folder is moved into ``work``, to be deleted with it."""
    folder = viewer_dir / package.folder_name
    if installed_folder(viewer_dir, package) is not None:
        return folder
    if folder.exists():
        folder.rename(work / "replaced")
    staging.rename(folder)
    return folder


def _remove_other_versions(viewer_dir: Path, package: Package) -> None:
    """Installs of other versions of the package (left by an earlier Dicomite) go."""
    prefix = package.folder_name.removesuffix(package.version)
    for other in viewer_dir.glob(f"{prefix}*"):
        if other.name != package.folder_name and (other / RECORD).is_file():
            shutil.rmtree(other, ignore_errors=True)
