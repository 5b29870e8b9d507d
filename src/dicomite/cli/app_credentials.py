"""``dicomite app secret …`` and ``dicomite app cert …``: Certificates & secrets."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from dicomite.cli.shared import (
    AppRef,
    AsJson,
    DatabaseUrl,
    DataDir,
    deployment,
    escape,
    fail,
    find_app,
    find_app_to_change,
    id_column,
    iso,
    print_json,
    say,
    show_rows,
)
from dicomite.clock import utcnow
from dicomite.identity import credentials
from dicomite.store.tables import KeyCredential, PasswordCredential

secret_app = typer.Typer(help="Client secrets of an application.", no_args_is_help=True)
cert_app = typer.Typer(help="Certificates (public keys) of an application.", no_args_is_help=True)

DEFAULT_EXPIRY = "180d"  # the portal's recommended value
_RELATIVE = re.compile(r"^(\d{1,4})([dm])$")  # 9999 months still fits a datetime

KeyId = Annotated[str, typer.Argument(metavar="KEY_ID", help="The credential's keyId")]
Description = Annotated[str | None, typer.Option("--description", help="What it is for")]


def expiry(text: str, now: datetime) -> datetime:
    """``180d``, ``6m`` … (days or calendar months from now) or a date ``YYYY-MM-DD`` (UTC);
    the domain refuses anything over 24 months."""
    match = _RELATIVE.match(text.strip().lower())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return now + timedelta(days=amount) if unit == "d" else credentials.add_months(now, amount)
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise typer.BadParameter(
            f"'{text}' is not a duration (180d, 6m, 12m, 18m, 24m) or a date (YYYY-MM-DD)."
        ) from None


def secret_row(secret: PasswordCredential, now: datetime) -> dict[str, Any]:
    """A secret as Graph shows it after creation: hint, never the value."""
    return {
        "keyId": secret.key_id,
        "displayName": secret.display_name,
        "hint": secret.hint,
        "startDateTime": iso(secret.start_at),
        "endDateTime": iso(secret.end_at),
        "expired": secret.end_at <= now,
    }


def cert_row(cert: KeyCredential, now: datetime) -> dict[str, Any]:
    return {
        "keyId": cert.key_id,
        "displayName": cert.display_name,
        "thumbprint": cert.thumbprint_sha1,
        "startDateTime": iso(cert.start_at),
        "endDateTime": iso(cert.end_at),
        "expired": cert.end_at <= now,
    }


def secrets_table(rows: list[dict[str, Any]]) -> Table:
    """The portal's columns: Description, Expires, Value (hint only), Secret ID."""
    table = Table(
        "description", _date_column("expires"), "value", id_column("secret ID"), title="Secrets"
    )
    for row in rows:
        hint = f"{escape(row['hint'])}***"
        table.add_row(escape(row["displayName"] or ""), _expires(row), hint, row["keyId"])
    return table


def certs_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(
        "description",
        _date_column("expires"),
        Column("thumbprint", overflow="fold"),
        id_column("certificate ID"),
        title="Certificates",
    )
    for row in rows:
        description = escape(row["displayName"] or "")
        table.add_row(description, _expires(row), row["thumbprint"], row["keyId"])
    return table


def _date_column(header: str) -> Column:
    return Column(header, min_width=10, no_wrap=True)


def _expires(row: dict[str, Any]) -> str:
    day = str(row["endDateTime"])[:10]
    return f"[red]{day} (expired)[/red]" if row["expired"] else day


# --- secrets ---------------------------------------------------------------------------------


@secret_app.command("add")
def add_secret(
    app: AppRef,
    description: Description = None,
    expires: Annotated[
        str, typer.Option("--expires", help="180d, 6m, 12m, 18m, 24m, or YYYY-MM-DD (≤ 24 months)")
    ] = DEFAULT_EXPIRY,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """New client secret; its value is shown once, now, and never again."""
    now = utcnow()
    end = expiry(expires, now)
    with deployment(data_dir, database_url) as context, context.store.write() as session:
        application = find_app_to_change(session, context, app)
        new = credentials.add_password(
            session, application, context.protection, now, display_name=description, end=end
        )
    secret = new.credential
    if as_json:
        print_json(
            {
                "keyId": secret.key_id,
                "secretText": new.secret_text,
                "hint": secret.hint,
                "endDateTime": iso(secret.end_at),
            }
        )
        return
    say(f"Client secret added to '{escape(application.display_name)}'.")
    say(f"  Value:     {escape(new.secret_text)}")
    say(f"  Secret ID: {secret.key_id}")
    say(f"  Expires:   {iso(secret.end_at)}")
    say("[yellow]Copy the value now: it will not be shown again.[/yellow]")


@secret_app.command("list")
def list_secrets(
    app: AppRef, as_json: AsJson = False, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """The application's secrets (hint only, never the value)."""
    now = utcnow()
    with deployment(data_dir, database_url) as context, context.store.read() as session:
        application = find_app(session, context, app)
        rows = [secret_row(s, now) for s in credentials.list_passwords(session, application)]
    show_rows(rows, as_json, secrets_table, "No client secrets.")


@secret_app.command("remove")
def remove_secret(
    app: AppRef, key_id: KeyId, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Delete a client secret; tokens can no longer be requested with it."""
    with deployment(data_dir, database_url) as context, context.store.write() as session:
        credentials.remove_password(session, find_app_to_change(session, context, app), key_id)
    say(f"Client secret {escape(key_id)} removed.")


# --- certificates ----------------------------------------------------------------------------


@cert_app.command("add")
def add_cert(
    app: AppRef,
    file: Annotated[
        Path, typer.Argument(help="Certificate: PEM or DER (.cer, .pem, .crt)", dir_okay=False)
    ],
    description: Description = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Upload a certificate's public key; the client signs its assertions with the private key."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        fail(f"Cannot read {file}: {exc.strerror or exc}")
    with deployment(data_dir, database_url) as context, context.store.write() as session:
        cert = credentials.add_certificate(
            session, find_app_to_change(session, context, app), data, display_name=description
        )
    row = cert_row(cert, utcnow())
    if as_json:
        print_json(row)
        return
    say("Certificate added.")
    say(f"  Certificate ID: {cert.key_id}")
    say(f"  Thumbprint:     {cert.thumbprint_sha1}")
    say(f"  Expires:        {row['endDateTime']}")


@cert_app.command("list")
def list_certs(
    app: AppRef, as_json: AsJson = False, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """The application's certificates."""
    now = utcnow()
    with deployment(data_dir, database_url) as context, context.store.read() as session:
        application = find_app(session, context, app)
        rows = [cert_row(c, now) for c in credentials.list_certificates(session, application)]
    show_rows(rows, as_json, certs_table, "No certificates.")


@cert_app.command("remove")
def remove_cert(
    app: AppRef, key_id: KeyId, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Delete a certificate credential."""
    with deployment(data_dir, database_url) as context, context.store.write() as session:
        credentials.remove_certificate(session, find_app_to_change(session, context, app), key_id)
    say(f"Certificate {escape(key_id)} removed.")
