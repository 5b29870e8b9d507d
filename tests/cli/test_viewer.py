"""``dicomite viewer install``: the pinned OHIF build into DATA_DIR/viewer or --viewer-dir
(DICOMITE_VIEWER_DIR); a no-op when it is there, a plain error when a tarball is not the pinned
one or the registry cannot be reached, nothing installed either way."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomite.cli.banner import banner_lines
from dicomite.settings import Settings
from dicomite.viewer.package import OHIF_APP
from tests.cli.conftest import Cli
from tests.fixtures.server import free_port
from tests.viewer.tarballs import lay_out, npm_tarball


def unreachable() -> list[str]:
    return ["--registry", f"http://127.0.0.1:{free_port()}"]


def test_an_installed_build_is_left_alone_without_network(cli: Cli) -> None:
    folder = lay_out(cli.data_dir / "viewer")  # DATA_DIR/viewer is the default place
    result = cli.ok("viewer", "install", *unreachable())
    assert f"@ohif/app 3.13.2 is installed already in {folder}" in result.stdout


def test_the_viewer_dir_comes_from_the_option_or_the_environment(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_option, by_environment = lay_out(tmp_path / "a"), lay_out(tmp_path / "b")
    result = cli.ok("viewer", "install", "--viewer-dir", str(tmp_path / "a"), *unreachable())
    assert str(by_option) in result.stdout
    monkeypatch.setenv("DICOMITE_VIEWER_DIR", str(tmp_path / "b"))
    assert str(by_environment) in cli.ok("viewer", "install", *unreachable()).stdout


def test_a_tarball_that_is_not_the_pinned_one_is_refused(cli: Cli, tmp_path: Path) -> None:
    npm_tarball(tmp_path / "app-3.13.2.tgz")
    target = tmp_path / "viewer"
    complaint = cli.fails(
        "viewer",
        "install",
        "--viewer-dir",
        str(target),
        "--from-file",
        str(tmp_path / "app-3.13.2.tgz"),
    )
    assert "app-3.13.2.tgz is not @ohif/app 3.13.2" in complaint
    assert OHIF_APP.integrity in complaint and "Nothing was installed" in complaint
    assert not target.exists() or list(target.iterdir()) == []


def test_an_unreachable_registry_is_a_plain_error(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "viewer"
    complaint = cli.fails("viewer", "install", "--viewer-dir", str(target), *unreachable())
    assert "Could not download http://127.0.0.1:" in complaint
    assert "/@ohif/app/-/app-3.13.2.tgz" in complaint
    assert list(target.iterdir()) == []


def test_the_banner_says_where_the_viewer_is_or_how_to_get_it(
    tmp_path: Path, clean_environment: None
) -> None:
    settings = Settings(data_dir=tmp_path, port=9443)
    assert _viewer_line(settings, None) == "Viewer: not installed (dicomite viewer install)"
    lay_out(tmp_path / "viewer")
    assert _viewer_line(settings, None) == "Viewer: https://localhost:9443/viewer/"
    refused = _viewer_line(settings, "The redirect URI … must use https.")
    assert (
        refused == "Viewer: sign-in cannot work at this address: The redirect URI … must use https."
    )


def _viewer_line(settings: Settings, refusal: str | None) -> str:
    lines = banner_lines(settings, "tenant", refusal)
    return next(" ".join(line.split()) for line in lines if line.strip().startswith("Viewer:"))
