"""New registration: the portal, the CLI and Graph register an application through the one
domain function (``directory.register_app``; Graph's ``POST /applications`` through its
application part, ``create_application``) and store the same shape."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import inspect
from typer.testing import CliRunner

from dicomite.bootstrap import Context
from dicomite.cli.main import app as cli_app
from dicomite.identity import directory, principals
from dicomite.store.tables import Base
from tests.portal.conftest import PortalClient
from tests.portal.test_expose_pages import register

SignedIn = Callable[[str], PortalClient]
# Columns that name the object or its making, not its shape; the portal also records its owner.
IDENTITY = {"id", "app_id", "application_id", "display_name", "created_at", "owner_user_id"}


def _recorded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the directory's registration functions, in the order they are called."""
    calls: list[str] = []
    for name in ("register_app", "create_application"):
        real = getattr(directory, name)

        def spy(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(directory, name, spy)
    return calls


def _by_cli(context: Context, name: str) -> None:
    data_dir = str(context.settings.data_dir)
    result = CliRunner().invoke(cli_app, ["app", "create", name, "--json", "--data-dir", data_dir])
    assert result.exit_code == 0, (result.output, result.exception)


def _by_graph(client: PortalClient, context: Context, name: str) -> None:
    saved = json.loads(context.settings.bootstrap_file.read_text(encoding="utf-8"))
    token = client.post(
        f"/{context.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": saved["client_id"],
            "client_secret": saved["client_secret"],
            "scope": "https://graph.microsoft.com/.default",
        },
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    created = client.post("/graph/v1.0/applications", json={"displayName": name}, headers=headers)
    assert created.status_code == 201, created.text
    body = {"appId": created.json()["appId"]}
    principal = client.post("/graph/v1.0/servicePrincipals", json=body, headers=headers)
    assert principal.status_code == 201, principal.text


def _columns(row: Base) -> dict[str, Any]:
    mapper = inspect(type(row))
    values = {c.key: getattr(row, c.key) for c in mapper.column_attrs}
    return {key: value for key, value in values.items() if key not in IDENTITY}


def _stored_shape(context: Context, name: str) -> dict[str, Any]:
    with context.store.read() as session:
        (app,) = directory.list_applications(session, context.tenant_id, name)
        sp = principals.service_principal_for_app(session, context.tenant_id, app.app_id)
        assert sp is not None, f"{name} has no service principal"
        names = [
            n.replace(app.app_id, "{appId}")
            for n in principals.service_principal_names(session, sp)
        ]
        return {"application": _columns(app), "servicePrincipal": _columns(sp), "names": names}


def test_portal_cli_and_graph_register_the_same_shape_through_one_function(
    signed_in: SignedIn, portal_context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _recorded(monkeypatch)
    client = signed_in("app-admin")
    register(client, "Registered in the portal")
    assert calls == ["register_app", "create_application"]
    _by_cli(portal_context, "Registered by the CLI")
    assert calls[2:] == ["register_app", "create_application"]
    _by_graph(client, portal_context, "Registered through Graph")
    assert calls[4:] == ["create_application"]  # POST /servicePrincipals makes the other half

    portal, cli, graph = (
        _stored_shape(portal_context, f"Registered {how}")
        for how in ("in the portal", "by the CLI", "through Graph")
    )
    assert portal == cli == graph
    assert portal["application"]["required_resource_access"] == []
