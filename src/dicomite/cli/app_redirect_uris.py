"""``dicomite app redirect-uri …``: the redirect URIs of an application's platforms, as on the
portal's Authentication page (Entra's redirect-URI rules apply, through the directory)."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from dicomite.cli.shared import (
    AppRef,
    DatabaseUrl,
    DataDir,
    deployment,
    escape,
    find_app,
    say,
)
from dicomite.identity import directory
from dicomite.store.tables import Application

redirect_uri_app = typer.Typer(help="Redirect URIs of an application.", no_args_is_help=True)


class Platform(StrEnum):
    """Graph's names of the platforms: web, spa (single-page), publicClient (mobile and desktop)."""

    web = "web"
    spa = "spa"
    publicClient = "publicClient"


Uri = Annotated[str, typer.Argument(metavar="URI", help="The redirect URI")]
PlatformOption = Annotated[Platform, typer.Option("--platform", help="web, spa or publicClient")]


@redirect_uri_app.command("add")
def add(
    app: AppRef,
    uri: Uri,
    platform: PlatformOption = Platform.web,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add a redirect URI to a platform (configuring the platform if it has none yet)."""
    name = _change(directory.add_redirect_uri, app, uri, platform, data_dir, database_url)
    say(f"Added {escape(uri)} ({platform.value}) to '{escape(name)}'.")


@redirect_uri_app.command("remove")
def remove(
    app: AppRef,
    uri: Uri,
    platform: PlatformOption = Platform.web,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Remove a redirect URI from a platform."""
    name = _change(directory.remove_redirect_uri, app, uri, platform, data_dir, database_url)
    say(f"Removed {escape(uri)} ({platform.value}) from '{escape(name)}'.")


def _change(
    change: Callable[[Session, Application, str, str], Application],
    app: str,
    uri: str,
    platform: Platform,
    data_dir: Path | None,
    database_url: str | None,
) -> str:
    """``change`` (the directory's add or remove) on the app; its display name."""
    with deployment(data_dir, database_url) as context, context.store.write() as session:
        application = find_app(session, context, app)
        change(session, application, platform.value, uri)
        return application.display_name
