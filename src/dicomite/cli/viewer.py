"""``dicomite viewer``: the OHIF viewer the server serves at ``{public_url}/viewer/``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dicomite.cli.options import DataDir, ViewerDir, build_settings
from dicomite.cli.shared import fail, say
from dicomite.viewer.install import InstallError, install, installed_folder
from dicomite.viewer.package import NPM_REGISTRY, OHIF_APP

app = typer.Typer(help="The OHIF viewer served at {public_url}/viewer/.", no_args_is_help=True)

PINNED = f"{OHIF_APP.name} {OHIF_APP.version}"


@app.command("install")
def install_viewer(
    data_dir: DataDir = None,
    viewer_dir: ViewerDir = None,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file",
            help=f"Install this npm tarball of {PINNED} instead of downloading it (no network "
            "needed); its integrity is checked all the same",
        ),
    ] = None,
    registry: Annotated[
        str, typer.Option("--registry", help="The npm registry (or a mirror) to download from")
    ] = NPM_REGISTRY,
) -> None:
    """Install the pinned OHIF viewer build (a no-op when it is installed already)."""
    settings = build_settings(data_dir=data_dir, viewer_dir=viewer_dir)
    folder = settings.effective_viewer_dir.resolve()
    installed = installed_folder(folder, OHIF_APP)
    if installed is None:
        if not from_file:
            say(f"Downloading {PINNED} from {OHIF_APP.tarball_url(registry)}")
        try:
            installed = install(OHIF_APP, folder, tarball=from_file, registry=registry)
        except InstallError as problem:
            fail(str(problem))
        say(f"Installed {PINNED} ({OHIF_APP.integrity}) in {installed}")
    else:
        say(f"{PINNED} is installed already in {installed}")
    say("dicomite serve offers it at {public_url}/viewer/ (a running server finds it by itself).")
