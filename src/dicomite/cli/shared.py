"""What the directory commands share: opening the deployment, finding an app, printing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape
from rich.table import Column
from sqlalchemy.orm import Session

from dicomite.bootstrap import Context, prepare
from dicomite.cli.console import console, errors, reported_errors
from dicomite.cli.options import DatabaseUrl, DataDir, build_settings
from dicomite.identity import directory, policy
from dicomite.store.tables import Application

__all__ = ["AppRef", "AsJson", "DataDir", "DatabaseUrl", "escape"]

AppRef = Annotated[str, typer.Argument(metavar="APP", help="appId, object id or display name")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]


@contextmanager
def deployment(data_dir: DataDir, database_url: DatabaseUrl) -> Iterator[Context]:
    """The prepared deployment (idempotent), with domain errors reported, not raised."""
    settings = build_settings(data_dir=data_dir, database_url=database_url)
    with reported_errors():
        context = prepare(settings)
        try:
            yield context
        finally:
            context.store.dispose()


def find_app(session: Session, context: Context, reference: str) -> Application:
    return directory.application_by_reference(session, context.tenant_id, reference)


def find_app_to_change(session: Session, context: Context, reference: str) -> Application:
    """An app whose credentials, permissions or consent a command changes. The console's
    operator passes ``policy.require_access_change`` for every app, privileged ones included."""
    application = find_app(session, context, reference)
    policy.require_access_change(session, policy.OPERATOR, application)
    return application


def fail(message: str) -> NoReturn:
    errors.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(1)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=_json_default))


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def iso(moment: datetime) -> str:
    """Graph's DateTimeOffset format: UTC with a ``Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def id_column(header: str) -> Column:
    """GUIDs are copied from tables: never cut one short, fold it on narrow terminals."""
    return Column(header, min_width=36, no_wrap=True, overflow="fold")


def say(text: str) -> None:
    console.print(text, highlight=False)


def show_rows(
    rows: list[dict[str, Any]],
    as_json: bool,
    render: Callable[[list[dict[str, Any]]], Any],
    empty: str,
) -> None:
    """A listing as JSON, as what ``render`` draws, or the empty-state sentence."""
    if as_json:
        print_json(rows)
    elif rows:
        console.print(render(rows))
    else:
        say(empty)
