"""``dicomite app …``: App registrations, as in the portal (create, list, show, delete)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from dicomite.cli.app_credentials import (
    cert_app,
    cert_row,
    certs_table,
    secret_app,
    secret_row,
    secrets_table,
)
from dicomite.cli.app_federated import federated_app
from dicomite.cli.app_permissions import (
    consent_command,
    permission_app,
    permission_rows,
    permissions_table,
)
from dicomite.cli.app_redirect_uris import redirect_uri_app
from dicomite.cli.console import console
from dicomite.cli.shared import (
    AppRef,
    AsJson,
    DatabaseUrl,
    DataDir,
    deployment,
    escape,
    find_app,
    find_app_to_change,
    id_column,
    iso,
    print_json,
    say,
)
from dicomite.clock import utcnow
from dicomite.identity import credentials, directory, principals
from dicomite.store.tables import Application

app = typer.Typer(
    help="App registrations: applications and their credentials.", no_args_is_help=True
)
app.add_typer(secret_app, name="secret")
app.add_typer(cert_app, name="cert")
app.add_typer(federated_app, name="federated")
app.add_typer(permission_app, name="permission")
app.add_typer(redirect_uri_app, name="redirect-uri")
app.command("consent")(consent_command)


def summary(application: Application, sp_id: str | None) -> dict[str, Any]:
    return {
        "displayName": application.display_name,
        "appId": application.app_id,
        "id": application.id,
        "tenantId": application.tenant_id,
        "servicePrincipalId": sp_id,
        "identifierUris": list(application.identifier_uris),
        "createdDateTime": iso(application.created_at),
    }


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="Display name")],
    identifier_uri: Annotated[
        list[str] | None,
        typer.Option("--identifier-uri", help="Application ID URI (repeatable), for an API"),
    ] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Register an application and its service principal, as the portal does."""
    now = utcnow()
    with deployment(data_dir, database_url) as context, context.store.write() as session:
        application, sp = directory.register_app(
            session, context.tenant_id, now, name, identifier_uris=identifier_uri or []
        )
    details = summary(application, sp.id)
    if as_json:
        print_json(details)
        return
    say(f"Application '{escape(application.display_name)}' registered.")
    say(f"  Application (client) ID: {application.app_id}")
    say(f"  Object ID:               {application.id}")
    say(f"  Directory (tenant) ID:   {application.tenant_id}")


@app.command("list")
def list_apps(
    search: Annotated[
        str | None, typer.Option("--search", help="Part of the display name, or an appId")
    ] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The tenant's application registrations."""
    with deployment(data_dir, database_url) as context, context.store.read() as session:
        rows = [
            summary(a, None) | {"servicePrincipalId": _sp_id(session, a)}
            for a in directory.list_applications(session, context.tenant_id, search)
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("display name", id_column("Application (client) ID"), "created")
    for row in rows:
        table.add_row(escape(row["displayName"]), row["appId"], row["createdDateTime"][:10])
    console.print(table if rows else "No applications.")


@app.command()
def show(
    app_ref: AppRef,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """An application's overview, API permissions, secrets and certificates."""
    now = utcnow()
    with deployment(data_dir, database_url) as context, context.store.read() as session:
        application = find_app(session, context, app_ref)
        details = summary(application, _sp_id(session, application)) | {
            "requiredPermissions": permission_rows(session, application),
            "passwordCredentials": [
                secret_row(s, now) for s in credentials.list_passwords(session, application)
            ],
            "keyCredentials": [
                cert_row(c, now) for c in credentials.list_certificates(session, application)
            ],
        }
    if as_json:
        print_json(details)
    else:
        _print_details(details)


def _print_details(details: dict[str, Any]) -> None:
    say(f"[bold]{escape(details['displayName'])}[/bold]")
    say(f"  Application (client) ID: {details['appId']}")
    say(f"  Object ID:               {details['id']}")
    say(f"  Directory (tenant) ID:   {details['tenantId']}")
    say(f"  Service principal ID:    {details['servicePrincipalId'] or '-'}")
    uris = ", ".join(details["identifierUris"]) or "-"
    say(f"  Application ID URIs:     {escape(uris)}")
    for rows, table in (
        (details["requiredPermissions"], permissions_table),
        (details["passwordCredentials"], secrets_table),
        (details["keyCredentials"], certs_table),
    ):
        if rows:
            console.print(table(rows))
    if not details["requiredPermissions"]:
        say("No API permissions configured.")
    if not details["passwordCredentials"] and not details["keyCredentials"]:
        say("No secrets or certificates.")


@app.command()
def delete(
    app_ref: AppRef,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Delete an application, its service principal, credentials and consents."""
    with deployment(data_dir, database_url) as context:
        with context.store.read() as session:
            application = find_app(session, context, app_ref)
        label = f"'{application.display_name}' ({application.app_id})"
        if not yes:
            typer.confirm(f"Delete {label}?", abort=True)  # outside any transaction
        with context.store.write() as session:
            doomed = find_app_to_change(session, context, application.id)
            directory.delete_application(session, doomed)
    say(f"Deleted {escape(label)}.")


def _sp_id(session: Session, application: Application) -> str | None:
    sp = principals.service_principal_for_app(session, application.tenant_id, application.app_id)
    return sp.id if sp else None
