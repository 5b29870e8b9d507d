"""/servicePrincipals, app role assignments (application permissions) and delegated grants."""

from __future__ import annotations

from typing import Any

import httpx

from dicomite.identity.builtin import DICOM_APP_ID, DICOM_READ, DICOM_READWRITE, GRAPH_APP_ID
from tests.fixtures.server import Server
from tests.graph.helpers import (
    DICOM_SCOPE,
    add_password,
    claims,
    create_app,
    create_principal,
    eventually,
    token,
)

_DICOM_ACCESS = [
    {"resourceAppId": DICOM_APP_ID, "resourceAccess": [{"id": DICOM_READWRITE, "type": "Role"}]}
]


def _by_app_id(graph: httpx.Client, app_id: str) -> dict[str, Any]:
    found = graph.get("/servicePrincipals", params={"$filter": f"appId eq '{app_id}'"}).json()
    assert len(found["value"]) == 1
    return dict(found["value"][0])


def test_builtin_principals_have_graph_ids(graph: httpx.Client) -> None:
    sp = _by_app_id(graph, GRAPH_APP_ID)
    assert sp["servicePrincipalType"] == "Application"
    assert "https://graph.microsoft.com" in sp["servicePrincipalNames"]
    assert {r["value"] for r in sp["appRoles"]} >= {"Application.ReadWrite.All"}
    by_name = graph.get(
        "/servicePrincipals",
        params={"$filter": "servicePrincipalNames/any(n:n eq 'https://graph.microsoft.com')"},
    )
    assert [s["id"] for s in by_name.json()["value"]] == [sp["id"]]


def test_create_get_and_delete(graph: httpx.Client, server: Server) -> None:
    app = create_app(graph)
    sp = create_principal(graph, app)
    assert sp["appId"] == app["appId"] and sp["appDisplayName"] == app["displayName"]
    assert sp["appOwnerOrganizationId"] == server.tenant_id
    assert sp["@odata.context"].endswith("#servicePrincipals/$entity")
    assert graph.get(f"/servicePrincipals/{sp['id']}").json()["id"] == sp["id"]
    assert graph.get(f"/servicePrincipals(appId='{app['appId']}')").json()["id"] == sp["id"]
    again = graph.post("/servicePrincipals", json={"appId": app["appId"]})
    assert again.status_code == 400 and again.json()["error"]["code"] == "Request_BadRequest"
    assert graph.delete(f"/servicePrincipals/{sp['id']}").status_code == 204
    assert graph.get(f"/servicePrincipals/{sp['id']}").status_code == 404


def test_builtin_principal_cannot_be_deleted(graph: httpx.Client) -> None:
    sp = _by_app_id(graph, DICOM_APP_ID)
    assert graph.delete(f"/servicePrincipals/{sp['id']}").status_code == 400


def test_assignment_puts_roles_in_tokens_and_removal_takes_them_out(
    graph: httpx.Client, server: Server
) -> None:
    app = create_app(graph, requiredResourceAccess=_DICOM_ACCESS)
    client = create_principal(graph, app)
    secret = add_password(graph, app)["secretText"]
    dicom = _by_app_id(graph, DICOM_APP_ID)
    assert "roles" not in claims(token(server, app["appId"], secret, DICOM_SCOPE))

    body = {"principalId": client["id"], "resourceId": dicom["id"], "appRoleId": DICOM_READWRITE}
    created = graph.post(f"/servicePrincipals/{client['id']}/appRoleAssignments", json=body)
    assert created.status_code == 201, created.text
    assignment = created.json()
    assert assignment["principalType"] == "ServicePrincipal"
    assert assignment["resourceDisplayName"] == dicom["displayName"]
    assert assignment["principalDisplayName"] == app["displayName"]
    assert claims(token(server, app["appId"], secret, DICOM_SCOPE))["roles"] == ["Dicom.ReadWrite"]

    listed = graph.get(f"/servicePrincipals/{client['id']}/appRoleAssignments").json()["value"]
    assert [a["id"] for a in listed] == [assignment["id"]]
    to_dicom = graph.get(f"/servicePrincipals/{dicom['id']}/appRoleAssignedTo").json()["value"]
    assert assignment["id"] in {a["id"] for a in to_dicom}

    path = f"/servicePrincipals/{client['id']}/appRoleAssignments/{assignment['id']}"
    assert graph.get(path).json()["id"] == assignment["id"]
    assert graph.delete(path).status_code == 204
    assert graph.get(path).status_code == 404
    eventually(
        lambda: "roles" not in claims(token(server, app["appId"], secret, DICOM_SCOPE)) or None
    )


def test_assignment_through_app_role_assigned_to(graph: httpx.Client) -> None:
    client = create_principal(graph, create_app(graph))
    dicom = _by_app_id(graph, DICOM_APP_ID)
    body = {"principalId": client["id"], "resourceId": dicom["id"], "appRoleId": DICOM_READ}
    created = graph.post(f"/servicePrincipals/{dicom['id']}/appRoleAssignedTo", json=body)
    assert created.status_code == 201
    assert "appRoleAssignedTo/$entity" in created.json()["@odata.context"]
    path = f"/servicePrincipals/{dicom['id']}/appRoleAssignedTo/{created.json()['id']}"
    assert graph.delete(path).status_code == 204


def test_assignment_errors(graph: httpx.Client) -> None:
    client = create_principal(graph, create_app(graph))
    dicom = _by_app_id(graph, DICOM_APP_ID)
    url = f"/servicePrincipals/{client['id']}/appRoleAssignments"
    unknown_role = {
        "principalId": client["id"],
        "resourceId": dicom["id"],
        "appRoleId": "00000000-0000-0000-0000-000000000000",
    }
    assert graph.post(url, json=unknown_role).status_code == 400
    other_principal = {**unknown_role, "principalId": dicom["id"], "appRoleId": DICOM_READ}
    assert graph.post(url, json=other_principal).status_code == 400
    assert graph.post(url, json={"principalId": client["id"]}).status_code == 400
    assert graph.delete(f"{url}/not-an-assignment").status_code == 404


def test_delegated_grants(graph: httpx.Client) -> None:
    scope_id = "5a1c1d38-2d7e-4f55-9a55-0d5f7f8bb101"
    scopes = [
        {
            "id": scope_id,
            "value": "Studies.Read",
            "type": "Admin",
            "adminConsentDisplayName": "Read studies",
        }
    ]
    api = create_app(graph, api={"oauth2PermissionScopes": scopes})
    resource = create_principal(graph, api)
    client = create_principal(graph, create_app(graph))
    body = {
        "clientId": client["id"],
        "consentType": "AllPrincipals",
        "principalId": None,
        "resourceId": resource["id"],
        "scope": "Studies.Read",
    }
    created = graph.post("/oauth2PermissionGrants", json=body)
    assert created.status_code == 201, created.text
    grant = created.json()
    assert grant["scope"] == "Studies.Read" and grant["principalId"] is None

    listed = graph.get(
        "/oauth2PermissionGrants", params={"$filter": f"clientId eq '{client['id']}'"}
    )
    assert [g["id"] for g in listed.json()["value"]] == [grant["id"]]
    assert (
        graph.patch(f"/oauth2PermissionGrants/{grant['id']}", json={"scope": ""}).status_code == 204
    )
    assert graph.get(f"/oauth2PermissionGrants/{grant['id']}").json()["scope"] == ""
    bad = graph.patch(f"/oauth2PermissionGrants/{grant['id']}", json={"scope": "Nope"})
    assert bad.status_code == 400
    assert graph.delete(f"/oauth2PermissionGrants/{grant['id']}").status_code == 204
    assert graph.get(f"/oauth2PermissionGrants/{grant['id']}").status_code == 404
    principal = graph.post("/oauth2PermissionGrants", json={**body, "consentType": "Principal"})
    assert principal.status_code == 400


def test_duplicate_assignment_is_refused(graph: httpx.Client) -> None:
    client = create_principal(graph, create_app(graph))
    dicom = _by_app_id(graph, DICOM_APP_ID)
    url = f"/servicePrincipals/{client['id']}/appRoleAssignments"
    body = {"principalId": client["id"], "resourceId": dicom["id"], "appRoleId": DICOM_READ}
    assert graph.post(url, json=body).status_code == 201
    again = graph.post(url, json=body)
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "Request_BadRequest"


def test_assignment_is_deleted_only_from_its_own_side(graph: httpx.Client) -> None:
    client = create_principal(graph, create_app(graph))
    dicom = _by_app_id(graph, DICOM_APP_ID)
    body = {"principalId": client["id"], "resourceId": dicom["id"], "appRoleId": DICOM_READ}
    created = graph.post(f"/servicePrincipals/{client['id']}/appRoleAssignments", json=body)
    assignment = created.json()["id"]
    wrong_side = f"/servicePrincipals/{dicom['id']}/appRoleAssignments/{assignment}"
    assert graph.delete(wrong_side).status_code == 404
    right_side = f"/servicePrincipals/{dicom['id']}/appRoleAssignedTo/{assignment}"
    assert graph.delete(right_side).status_code == 204
