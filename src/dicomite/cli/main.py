"""The ``dicomite`` command."""

from __future__ import annotations

import typer

from dicomite.cli import apps, dicom, keys, serve, signins, tenant, token, users, viewer

app = typer.Typer(
    name="dicomite",
    help="Self-hosted DICOMweb service with its own identity platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(serve.serve)
app.command()(serve.info)
app.add_typer(keys.app, name="keys")
app.add_typer(apps.app, name="app")
app.add_typer(token.app, name="token")
app.add_typer(dicom.app, name="dicom")
app.add_typer(users.app, name="users")
app.add_typer(tenant.app, name="tenant")
app.add_typer(viewer.app, name="viewer")
app.command()(signins.signins)


def main() -> None:
    app()
