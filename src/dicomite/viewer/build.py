"""The installed OHIF build as the server sees it: the files its ``dist/`` holds, by the names
browsers ask for, with their media types and how long browsers may keep them.

The build loads everything from the site root (webpack public path ``/``), so its files are
served there by exactly these names and nothing else: a name is found in this table or not at
all, so no request path can reach a file outside the build.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dicomite.viewer.install import DIST, installed_folder
from dicomite.viewer.package import Package

INDEX = "index.html"
# The build's own app-config.js points at OHIF's demo server; Dicomite generates this one.
CONFIG = "app-config.js"

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".jsonc": "application/json",
    ".map": "application/json",
    ".webapp": "application/x-web-app-manifest+json",
    ".wasm": "application/wasm",  # browsers compile it while streaming only with this type
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/vnd.microsoft.icon",
    ".woff2": "font/woff2",
    ".xml": "application/xml",
}
# Bundles named by their content hash (``app.bundle.0f6159c501addfe9.js``,
# ``0ddf166f7a343eda.wasm``) never change under their name.
_CONTENT_HASHED = re.compile(r"(?:^|\.)[0-9a-f]{16}\.[a-z0-9]+$")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


@dataclass(frozen=True)
class BuildFile:
    path: Path
    # Taken when the build is loaded (in the blocking pool), so that sending the file costs the
    # event loop no stat of its own; the build never changes once installed.
    stat: os.stat_result


@dataclass(frozen=True)
class ViewerBuild:
    files: Mapping[str, BuildFile]  # "app.bundle.….js", "assets/favicon.ico" -> its file

    @property
    def index(self) -> BuildFile:
        return self.files[INDEX]


def load_build(viewer_dir: Path, package: Package) -> ViewerBuild | None:
    """The installed build, or None when the package is not (completely) installed."""
    folder = installed_folder(viewer_dir, package)
    if folder is None:
        return None
    files = _regular_files(folder / DIST)
    files.pop(CONFIG, None)
    return ViewerBuild(files) if INDEX in files else None


def _regular_files(root: Path) -> dict[str, BuildFile]:
    """Every regular file under ``root`` by its relative name; symbolic links are left out
    (``os.walk`` does not enter linked folders)."""
    found = {}
    for folder, _subfolders, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            status = path.lstat()
            if stat.S_ISREG(status.st_mode):
                found[path.relative_to(root).as_posix()] = BuildFile(path, status)
    return found


def media_type(name: str) -> str:
    return _MEDIA_TYPES.get(PurePosixPath(name).suffix.lower(), "application/octet-stream")


def cache_control(name: str) -> str:
    return IMMUTABLE if _CONTENT_HASHED.search(PurePosixPath(name).name) else REVALIDATE
