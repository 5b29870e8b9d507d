"""``install``: a tarball (downloaded or given) is checked against its pinned integrity before
anything is unpacked; only ``package/dist/`` (plus the licence and package.json beside it)
is installed, under names that cannot leave the folder; an install is whole or absent, and a
second one is a no-op."""

from __future__ import annotations

import http.server
import json
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dicomite.viewer import install as install_module
from dicomite.viewer.install import (
    RECORD,
    BadArchive,
    DownloadFailed,
    IntegrityMismatch,
    install,
    installed_folder,
)
from dicomite.viewer.package import Package
from tests.fixtures.server import free_port
from tests.viewer.tarballs import BUILD, Member, member, npm_tarball, pin


def leftovers(viewer_dir: Path) -> list[str]:
    return sorted(p.name for p in viewer_dir.iterdir()) if viewer_dir.exists() else []


def test_the_build_is_unpacked_with_its_licence_and_a_record(tmp_path: Path) -> None:
    package = npm_tarball(tmp_path / "app.tgz")
    folder = install(package, tmp_path / "viewer", tarball=tmp_path / "app.tgz")
    assert folder == tmp_path / "viewer" / "test-app-1.0.0"
    served = sorted(
        p.relative_to(folder / "dist").as_posix()
        for p in folder.rglob("*")
        if p.is_file() and "dist" in p.parts
    )
    expected = sorted(
        n.removeprefix("package/dist/") for n in BUILD if n.startswith("package/dist/")
    )
    assert served == expected
    assert (folder / "dist" / "assets" / "images" / "a b.png").read_bytes() == b"png"
    assert (folder / "LICENSE").read_bytes() == b"MIT"
    assert not (folder / "README.md").exists()
    record = json.loads((folder / RECORD).read_text())
    assert record == {"name": "@test/app", "version": "1.0.0", "integrity": package.integrity}
    assert leftovers(tmp_path / "viewer") == ["test-app-1.0.0"]  # no temporary folder left


def test_installing_again_is_a_no_op(tmp_path: Path) -> None:
    package = npm_tarball(tmp_path / "app.tgz")
    first = install(package, tmp_path / "viewer", tarball=tmp_path / "app.tgz")
    (tmp_path / "app.tgz").unlink()  # a second install would need it
    assert install(package, tmp_path / "viewer", tarball=tmp_path / "app.tgz") == first
    assert installed_folder(tmp_path / "viewer", package) == first


def test_a_tarball_with_another_integrity_installs_nothing(tmp_path: Path) -> None:
    package = npm_tarball(tmp_path / "app.tgz")
    npm_tarball(tmp_path / "other.tgz", {"package/dist/index.html": b"evil"})
    with pytest.raises(IntegrityMismatch, match="Nothing was installed") as refused:
        install(package, tmp_path / "viewer", tarball=tmp_path / "other.tgz")
    assert package.integrity in str(refused.value)
    assert leftovers(tmp_path / "viewer") == []


def test_an_unreadable_file_is_an_install_error(tmp_path: Path) -> None:
    package = npm_tarball(tmp_path / "app.tgz")
    with pytest.raises(install_module.InstallError, match="Cannot read"):
        install(package, tmp_path / "viewer", tarball=tmp_path / "missing.tgz")


@pytest.mark.parametrize(
    "bad",
    [
        member("package/dist/../../escaped.js", b"x"),
        member("package/dist/assets/../../escaped.js", b"x"),
        member("package/dist/./index2.html", b"x"),
        member("package/dist/a//b.js", b"x"),
        member("package/dist/a\\..\\b.js", b"x"),
        member("package/dist/link.html", kind=tarfile.SYMTYPE),
        member("package/dist/hard.html", kind=tarfile.LNKTYPE),
        member("package/dist/fifo", kind=tarfile.FIFOTYPE),
        member("package/dist/index.html", b"again"),
    ],
    ids=lambda bad: bad[0].name,
)
def test_members_that_could_leave_the_build_or_are_not_files_refuse_the_tarball(
    tmp_path: Path, bad: Member
) -> None:
    package = npm_tarball(tmp_path / "app.tgz", extra=[bad])
    with pytest.raises(BadArchive):
        install(package, tmp_path / "viewer", tarball=tmp_path / "app.tgz")
    assert leftovers(tmp_path / "viewer") == []
    assert not (tmp_path / "escaped.js").exists()


def test_a_file_that_is_not_a_tarball_is_refused_even_with_a_matching_pin(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tgz"
    junk.write_bytes(b"not gzip at all")
    with pytest.raises(BadArchive, match="not a readable npm tarball"):
        install(pin(junk), tmp_path / "viewer", tarball=junk)
    assert leftovers(tmp_path / "viewer") == []


def test_an_incomplete_folder_is_replaced_and_other_versions_go(tmp_path: Path) -> None:
    viewer = tmp_path / "viewer"
    old = npm_tarball(tmp_path / "old.tgz", version="0.9.0")
    install(old, viewer, tarball=tmp_path / "old.tgz")
    package = npm_tarball(tmp_path / "app.tgz")
    (viewer / package.folder_name / "dist").mkdir(parents=True)  # an interrupted copy by hand
    (viewer / "unrelated").mkdir()
    folder = install(package, viewer, tarball=tmp_path / "app.tgz")
    assert (folder / "dist" / "index.html").exists()
    assert leftovers(viewer) == ["test-app-1.0.0", "unrelated"]


# ------------------------------------------------------------------- downloads


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local static 'registry': files under ``root`` served at ``url``."""
    root = tmp_path / "registry"
    root.mkdir()

    class Files(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def publish(root: Path, name: str = "app.tgz") -> Package:
    folder = root / "@test" / "app" / "-"
    folder.mkdir(parents=True, exist_ok=True)
    return npm_tarball(folder / name)


def test_the_tarball_is_downloaded_from_the_registry(
    tmp_path: Path, registry: tuple[str, Path]
) -> None:
    url, root = registry
    package = publish(root, "app-1.0.0.tgz")
    folder = install(package, tmp_path / "viewer", registry=url)
    assert (folder / "dist" / "index.html").exists()
    assert leftovers(tmp_path / "viewer") == ["test-app-1.0.0"]


def test_a_missing_tarball_or_an_unreachable_registry_says_so(
    tmp_path: Path, registry: tuple[str, Path]
) -> None:
    url, root = registry
    package = publish(root, "elsewhere.tgz")
    with pytest.raises(DownloadFailed, match="answered HTTP 404"):
        install(package, tmp_path / "viewer", registry=url)
    with pytest.raises(DownloadFailed, match="Could not download"):
        install(package, tmp_path / "viewer", registry=f"http://127.0.0.1:{free_port()}")
    assert leftovers(tmp_path / "viewer") == []


def test_a_download_larger_than_the_limit_is_cut_off(
    tmp_path: Path, registry: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, root = registry
    package = publish(root, "app-1.0.0.tgz")
    monkeypatch.setattr(install_module, "MAX_TARBALL_BYTES", 100)
    with pytest.raises(DownloadFailed, match="larger than 100 bytes"):
        install(package, tmp_path / "viewer", registry=url)
    assert leftovers(tmp_path / "viewer") == []
