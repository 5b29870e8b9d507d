"""The installed build as served: every regular file of ``dist/`` by its name and nothing else
(not the build's own app-config.js, not what lies beside ``dist/``, not symbolic links), with
media types browsers act on and caching by content hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomite.viewer.build import IMMUTABLE, REVALIDATE, cache_control, load_build, media_type
from dicomite.viewer.install import install
from dicomite.viewer.package import Package
from tests.viewer.tarballs import npm_tarball


@pytest.fixture
def installed(tmp_path: Path) -> tuple[Path, Package]:
    package = npm_tarball(tmp_path / "app.tgz")
    install(package, tmp_path / "viewer", tarball=tmp_path / "app.tgz")
    return tmp_path / "viewer", package


def test_the_served_names_are_the_build_files(installed: tuple[Path, Package]) -> None:
    build = load_build(*installed)
    assert build is not None
    assert sorted(build.files) == [
        "0123456789abcdef.wasm",
        "_redirects",
        "app.bundle.0123456789abcdef.js",
        "assets/favicon.ico",
        "assets/images/a b.png",
        "index.html",
    ]
    assert build.index.path.read_bytes().startswith(b"<!doctype html>")
    assert build.index.stat.st_size == build.index.path.stat().st_size


def test_links_placed_in_the_build_are_not_served(installed: tuple[Path, Package]) -> None:
    viewer_dir, package = installed
    dist = viewer_dir / package.folder_name / "dist"
    (dist / "secret.txt").symlink_to(viewer_dir.parent / "app.tgz")
    (dist / "linked").symlink_to(viewer_dir.parent, target_is_directory=True)
    build = load_build(viewer_dir, package)
    assert build is not None
    assert not any(name.startswith(("secret", "linked")) for name in build.files)


def test_nothing_is_served_without_a_complete_install(tmp_path: Path) -> None:
    package = npm_tarball(tmp_path / "app.tgz", {"package/dist/main.js": b""})
    assert load_build(tmp_path / "viewer", package) is None  # not installed
    install(package, tmp_path / "viewer", tarball=tmp_path / "app.tgz")
    assert load_build(tmp_path / "viewer", package) is None  # no index.html


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("index.html", "text/html; charset=utf-8"),
        ("app.bundle.0f6159c501addfe9.js", "text/javascript; charset=utf-8"),
        ("0ddf166f7a343eda.wasm", "application/wasm"),
        ("ort/ort-wasm.WASM", "application/wasm"),
        ("customizations/tools/ctPresets.jsonc", "application/json"),
        ("assets/favicon.ico", "image/vnd.microsoft.icon"),
        ("a34f9d1faa5f3315.woff2", "font/woff2"),
        ("_redirects", "application/octet-stream"),
    ],
)
def test_media_types(name: str, expected: str) -> None:
    assert media_type(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("app.bundle.0f6159c501addfe9.js", IMMUTABLE),
        ("0ddf166f7a343eda.wasm", IMMUTABLE),
        ("ort/ort.all.min.js", REVALIDATE),
        ("index.html", REVALIDATE),
        ("app.bundle.css", REVALIDATE),
        ("0f6159c501addfe9x.js", REVALIDATE),
    ],
)
def test_only_content_hashed_names_are_kept_for_good(name: str, expected: str) -> None:
    assert cache_control(name) == expected
