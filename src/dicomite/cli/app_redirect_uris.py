"""``dicomite app redirect-uri …``: the redirect URIs of an application's platforms, as on the
portal's Authentication page (Entra's redirect-URI rules apply, through the directory)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

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
    with deployment(data_dir, database_url) as context, context.store.write() as session:
        application = find_app(session, context, app)
        directory.add_redirect_uri(session, application, platform.value, uri)
    say(f"Added {escape(uri)} ({platform.value}) to '{escape(application.display_name)}'.")


@redirect_uri_app.command("remove")
def remove(
    app: AppRef,
    uri: Uri,
    platform: PlatformOption = Platform.web,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Remove a redirect URI from a platform."""
    with deployment(data_dir, database_url) as context, context.store.write() as session:
        application = find_app(session, context, app)
        directory.remove_redirect_uri(session, application, platform.value, uri)
    say(f"Removed {escape(uri)} ({platform.value}) from '{escape(application.display_name)}'.")
