"""``dicomite app permission …`` and ``dicomite app consent``: API permissions and admin consent."""

from __future__ import annotations

from dataclasses import asdict
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from dicomite.bootstrap import Context
from dicomite.cli.shared import (
    AppRef,
    AsJson,
    DatabaseUrl,
    DataDir,
    deployment,
    escape,
    find_app,
    find_app_to_change,
    print_json,
    say,
    show_rows,
)
from dicomite.clock import utcnow
from dicomite.identity import builtin, consent
from dicomite.identity.permission_kind import PermissionKind
from dicomite.store.tables import Application, ServicePrincipal

permission_app = typer.Typer(help="API permissions an application asks for.", no_args_is_help=True)

# Short names for the built-in APIs; any other API is named by identifier URI, appId or name.
API_ALIASES = {"dicom": builtin.DICOM_APP_ID, "graph": builtin.GRAPH_APP_ID}


class PermissionType(StrEnum):
    """``--type``: the kind's label, as the portal's "Request API permissions" names it."""

    application = "application"
    delegated = "delegated"

    @property
    def kind(self) -> PermissionKind:
        return PermissionKind.ROLE if self is PermissionType.application else PermissionKind.SCOPE


Api = Annotated[
    str,
    typer.Option("--api", help="dicom, graph, or an API's identifier URI, appId or display name"),
]
OptionalApi = Annotated[str | None, typer.Option("--api", help="Only this API (see --api above)")]
Permission = Annotated[
    str, typer.Option("--permission", help="The permission's value (Dicom.ReadWrite) or id")
]
Type = Annotated[PermissionType, typer.Option("--type", help="Application or delegated")]


def resolve_api(session: Session, tenant_id: str, reference: str) -> ServicePrincipal:
    name = API_ALIASES.get(reference.lower(), reference)
    return consent.resource_by_reference(session, tenant_id, name)


def permission_rows(session: Session, app: Application) -> list[dict[str, Any]]:
    return [
        {
            **asdict(p),
            "type": p.kind.label,
            "status": "Granted" if p.granted else "Not granted",
        }
        for p in consent.configured_permissions(session, app)
    ]


def permissions_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("API", "permission", "type", "status", title="Configured permissions")
    for row in rows:
        status = f"[green]{row['status']}[/green]" if row["granted"] else row["status"]
        table.add_row(escape(row["resource_name"]), escape(row["value"]), row["type"], status)
    return table


def _locate(
    session: Session, context: Context, app: str, api: str, permission: str, kind: PermissionType
) -> tuple[Application, ServicePrincipal, dict[str, Any]]:
    """The application, the API and the permission a command names."""
    application = find_app_to_change(session, context, app)
    resource = resolve_api(session, context.tenant_id, api)
    return application, resource, consent.find_permission(resource, permission, kind.kind)


@permission_app.command("add")
def add_permission(
    app: AppRef,
    api: Api,
    permission: Permission,
    kind: Type = PermissionType.application,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Ask for a permission; it reaches tokens only after admin consent (dicomite app consent)."""
    with deployment(data_dir, database_url) as context, context.store.write() as session:
        application, resource, item = _locate(session, context, app, api, permission, kind)
        consent.add_permission(session, application, resource, item["id"], kind.kind)
    say(
        f"Added {escape(item['value'])} ({kind.value}) on '{escape(resource.display_name)}'. "
        "Status: Not granted until an administrator grants consent."
    )


@permission_app.command("remove")
def remove_permission(
    app: AppRef,
    api: Api,
    permission: Permission,
    kind: Type = PermissionType.application,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Stop asking for a permission; a consent already given for it is revoked too."""
    with deployment(data_dir, database_url) as context, context.store.write() as session:
        application, resource, item = _locate(session, context, app, api, permission, kind)
        consent.remove_permission(session, application, resource, item["id"])
    say(f"Removed {escape(item['value'])} on '{escape(resource.display_name)}'.")


@permission_app.command("list")
def list_permissions(
    app: AppRef, as_json: AsJson = False, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Configured permissions and whether admin consent has granted them."""
    with deployment(data_dir, database_url) as context, context.store.read() as session:
        rows = permission_rows(session, find_app(session, context, app))
    show_rows(rows, as_json, permissions_table, "No permissions configured.")


def consent_command(
    app: AppRef,
    revoke: Annotated[bool, typer.Option("--revoke", help="Revoke instead of grant")] = False,
    api: OptionalApi = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Grant admin consent for every configured permission (or --revoke it)."""
    with deployment(data_dir, database_url) as context, context.store.write() as session:
        application = find_app_to_change(session, context, app)
        removed: int = 0
        result: consent.ConsentResult | None = None
        if revoke:
            resource = resolve_api(session, context.tenant_id, api) if api else None
            removed = consent.revoke_admin_consent(session, application, resource)
        else:
            result = consent.grant_admin_consent(session, application, utcnow())
    name = escape(application.display_name)
    if result is not None and as_json:
        print_json(asdict(result))
    elif result is not None:
        _print_consent(name, result)
    elif as_json:
        print_json({"revoked": removed})
    else:
        say(f"Revoked {removed} granted permission(s) of '{name}'.")


def _print_consent(name: str, result: consent.ConsentResult) -> None:
    granted = [*result.granted_roles, *result.granted_scopes]
    if granted:
        say(f"Admin consent granted for '{name}': {escape(', '.join(granted))}.")
    else:
        say(f"'{name}' has no permissions to grant; add some with 'dicomite app permission add'.")
    for missing in result.skipped:
        say(f"[yellow]Skipped API {escape(missing)}: it does not exist in this tenant.[/yellow]")
