"""``dicomite keys``: token-signing keys."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select

from dicomite.bootstrap import prepare
from dicomite.cli.console import console, reported_errors
from dicomite.cli.options import DatabaseUrl, DataDir, build_settings
from dicomite.clock import utcnow
from dicomite.identity import keys as signing_keys
from dicomite.store.tables import SigningKey

app = typer.Typer(help="Token-signing keys.", no_args_is_help=True)


@app.command()
def rotate(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    lead: Annotated[
        int,
        typer.Option(help="Seconds between publishing the new key and signing with it"),
    ] = int(signing_keys.DEFAULT_ROTATION_LEAD.total_seconds()),
) -> None:
    """Publish a new signing key; it signs after --lead seconds, the old one is retired once
    its tokens have expired."""
    settings = build_settings(data_dir=data_dir, database_url=database_url)
    with reported_errors():
        context = prepare(settings)
    now = utcnow()
    with context.store.write() as session:
        new = signing_keys.rotate(
            session,
            context.protection,
            now,
            lead=timedelta(seconds=max(lead, 0)),
            token_lifetime=timedelta(seconds=settings.access_token_lifetime_seconds),
        )
    console.print(f"New signing key {new.kid} published; signs from {new.activates_at:%c} UTC.")


@app.command("list")
def list_keys(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Show the signing keys and their state."""
    settings = build_settings(data_dir=data_dir, database_url=database_url)
    with reported_errors():
        context = prepare(settings)
    now = utcnow()
    with context.store.read() as session:
        rows = [
            {
                "kid": key.kid,
                "created": key.created_at.isoformat(),
                "activates": key.activates_at.isoformat(),
                "retires": key.retires_at.isoformat() if key.retires_at else None,
                "state": _state(key, now),
            }
            for key in session.scalars(select(SigningKey).order_by(SigningKey.created_at))
        ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("kid", "created", "signs from", "retires", "state")
    for row in rows:
        table.add_row(*(str(row[c] or "-")[:19] if c != "kid" else str(row[c]) for c in row))
    console.print(table)


def _state(key: SigningKey, now: datetime) -> str:
    if key.retires_at is not None:
        return "retired" if key.retires_at <= now else "retiring"
    return "published" if key.activates_at > now else "active"
