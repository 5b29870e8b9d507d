"""``dicomite signins``: the sign-in log of service principals (one row per token request)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich import box
from rich.table import Column, Table
from sqlalchemy.orm import Session

from dicomite.bootstrap import Context
from dicomite.cli.console import console
from dicomite.cli.shared import (
    AsJson,
    DatabaseUrl,
    DataDir,
    deployment,
    escape,
    find_app,
    id_column,
    iso,
    print_json,
)
from dicomite.identity import signins as log
from dicomite.identity.problems import InvalidInput, NotFound
from dicomite.identity.validation import check_guid
from dicomite.store.tables import SignIn


def signins(
    app: Annotated[
        str | None,
        typer.Option("--app", help="Only this application (appId, object id or display name)"),
    ] = None,
    failures: Annotated[bool, typer.Option("--failures", help="Only failed requests")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Newest N rows")] = 50,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Token requests, newest first: who asked for which API, and why a request failed."""
    with deployment(data_dir, database_url) as context, context.store.read() as session:
        app_id = _app_id(session, context, app) if app else None
        rows = [
            row(s)
            for s in log.list_sign_ins(
                session, context.tenant_id, app_id=app_id, failures_only=failures, limit=limit
            )
        ]
    if as_json:
        print_json(rows)
    elif rows:
        _print(rows)
    else:
        console.print("No sign-ins.")


def row(sign_in: SignIn) -> dict[str, Any]:
    return {
        "createdDateTime": iso(sign_in.created_at),
        "appId": sign_in.app_id,
        "appDisplayName": sign_in.app_display_name,
        "resource": sign_in.resource,
        "resourceDisplayName": sign_in.resource_display_name,
        "errorCode": sign_in.error_code,
        "failureReason": sign_in.failure_reason,
        "result": result(sign_in),
        "credentialType": sign_in.credential_type,
        "credentialKeyId": sign_in.credential_key_id,
        "ipAddress": sign_in.ip_address,
        "correlationId": sign_in.correlation_id,
    }


def result(sign_in: SignIn) -> str:
    if sign_in.error_code == 0:
        return "Success"
    reason = f": {sign_in.failure_reason}" if sign_in.failure_reason else ""
    return f"AADSTS{sign_in.error_code}{reason}"


def _app_id(session: Session, context: Context, reference: str) -> str:
    """The app's appId; a GUID no application has (deleted, or never registered) is kept as is,
    since failed requests are logged under the client id they gave."""
    try:
        return find_app(session, context, reference).app_id
    except NotFound:
        try:
            return check_guid(reference, "appId")
        except InvalidInput:
            raise NotFound(f"No application '{reference}' exists in this tenant.") from None


WIDE_ENOUGH = 150  # below this a table of seven columns is unreadable: one block per sign-in


def _print(rows: list[dict[str, Any]]) -> None:
    if console.width >= WIDE_ENOUGH:
        console.print(_table(rows))
        return
    for r in rows:
        console.print(
            f"[bold]{_time(r)}[/bold]  {escape(r['appDisplayName'] or '?')} ({r['appId'] or '-'})",
            f"  {_result(r)}",
            f"  [dim]resource[/dim] {escape(_resource(r))} · [dim]from[/dim] {r['ipAddress']}",
            f"  [dim]credential[/dim] {escape(_credential(r))}",
            sep="\n",
            highlight=False,
        )


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table(
        Column("time (UTC)", no_wrap=True),
        id_column("appId"),
        "app",
        "resource",
        "result",
        id_column("credential"),
        Column("client IP", no_wrap=True),
        box=box.SIMPLE_HEAD,
    )
    for r in rows:
        table.add_row(
            _time(r),
            r["appId"] or "",
            escape(r["appDisplayName"] or ""),
            escape(_resource(r)),
            _result(r),
            escape(_credential(r)),
            r["ipAddress"] or "",
        )
    return table


def _time(r: dict[str, Any]) -> str:
    return str(r["createdDateTime"]).replace("T", " ").rstrip("Z")


def _result(r: dict[str, Any]) -> str:
    if r["errorCode"] == 0:
        return "[green]Success[/green]"
    first_sentence = (r["failureReason"] or "").split(". ")[0].rstrip(".")
    return f"[red]AADSTS{r['errorCode']}[/red]: {escape(first_sentence)}"


def _resource(r: dict[str, Any]) -> str:
    return str(r["resourceDisplayName"] or r["resource"] or "-")


def _credential(r: dict[str, Any]) -> str:
    return " ".join(filter(None, (r["credentialType"], r["credentialKeyId"]))) or "-"
