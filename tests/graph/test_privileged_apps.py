"""Applications holding Microsoft Graph permissions: only a caller holding every Graph role the
target holds may change its credentials, permissions or consent (issue 13, item 4).

Without the rule a caller with Application.ReadWrite.All alone adds a secret to the bootstrap
client (which also holds AppRoleAssignment.ReadWrite.All) and consents any role it likes.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dicomite.identity.builtin import (
    APP_ROLE_ASSIGNMENT_READWRITE_ALL,
    APPLICATION_READWRITE_ALL,
    DICOM_APP_ID,
    DICOM_READ,
    GRAPH_APP_ID,
)
from tests.fixtures.server import Server
from tests.graph.helpers import (
    add_password,
    certificate,
    create_app,
    create_principal,
    graph_client,
    token,
)

DENIED = "Insufficient privileges to complete the operation."
# A federated identity credential is a credential too: a workflow of this repository would
# sign in as the application.
_TRUST = {
    "name": "takeover",
    "issuer": "https://token.actions.githubusercontent.com",
    "subject": "repo:attacker/repo:ref:refs/heads/main",
}


def _grant(graph: httpx.Client, principal: dict[str, Any], api_app_id: str, role: str) -> str:
    api = graph.get(f"/servicePrincipals(appId='{api_app_id}')").json()
    body = {"principalId": principal["id"], "resourceId": api["id"], "appRoleId": role}
    granted = graph.post(f"/servicePrincipals/{principal['id']}/appRoleAssignments", json=body)
    assert granted.status_code == 201, granted.text
    return str(granted.json()["id"])


def _app_with_roles(graph: httpx.Client, prefix: str, *roles: str) -> dict[str, Any]:
    """An application, its service principal and the Graph roles given, granted by the
    bootstrap client (which holds every Graph role)."""
    app = create_app(graph, prefix=prefix)
    app["principal"] = create_principal(graph, app)
    for role in roles:
        _grant(graph, app["principal"], GRAPH_APP_ID, role)
    return app


@pytest.fixture(scope="module")
def writer(graph: httpx.Client, server: Server) -> Iterator[httpx.Client]:
    """A caller holding Application.ReadWrite.All only."""
    app = _app_with_roles(graph, "writer", APPLICATION_READWRITE_ALL)
    secret = add_password(graph, app)["secretText"]
    with graph_client(server, token(server, app["appId"], secret)) as client:
        yield client


@pytest.fixture(scope="module")
def assigner(graph: httpx.Client, server: Server) -> Iterator[httpx.Client]:
    """A caller holding AppRoleAssignment.ReadWrite.All only."""
    app = _app_with_roles(graph, "assigner", APP_ROLE_ASSIGNMENT_READWRITE_ALL)
    secret = add_password(graph, app)["secretText"]
    with graph_client(server, token(server, app["appId"], secret)) as client:
        yield client


def _denied(response: httpx.Response) -> None:
    assert response.status_code == 403, (response.request.url, response.text)
    error = response.json()["error"]
    assert error["code"] == "Authorization_RequestDenied"
    assert error["message"] == DENIED
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}


def _credentials(graph: httpx.Client, app: dict[str, Any]) -> tuple[list[str], list[str]]:
    body = graph.get(f"/applications/{app['id']}").json()
    return (
        [c["keyId"] for c in body["passwordCredentials"]],
        [c["keyId"] for c in body["keyCredentials"]],
    )


def test_application_writer_cannot_add_a_secret_to_an_app_that_assigns_roles(
    graph: httpx.Client, writer: httpx.Client
) -> None:
    target = _app_with_roles(graph, "assigns", APP_ROLE_ASSIGNMENT_READWRITE_ALL)
    before = _credentials(graph, target)

    _denied(writer.post(f"/applications/{target['id']}/addPassword", json={}))
    _denied(writer.post(f"/applications(appId='{target['appId']}')/addPassword", json={}))

    assert _credentials(graph, target) == before


def test_application_writer_cannot_take_over_the_bootstrap_client(
    graph: httpx.Client, writer: httpx.Client, server: Server
) -> None:
    bootstrap = graph.get(f"/applications(appId='{server.client_id}')").json()
    secret_id = bootstrap["passwordCredentials"][0]["keyId"]
    _, der = certificate()
    key = {"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.b64encode(der).decode()}
    url = f"/applications/{bootstrap['id']}"
    before = _credentials(graph, bootstrap)
    attempts = [
        writer.post(f"{url}/addPassword", json={"passwordCredential": {"displayName": "mine"}}),
        writer.post(f"{url}/removePassword", json={"keyId": secret_id}),
        writer.post(f"{url}/addKey", json={"keyCredential": key, "proof": "x"}),
        writer.post(f"{url}/removeKey", json={"keyId": secret_id, "proof": "x"}),
        writer.patch(url, json={"keyCredentials": [key]}),
        writer.patch(url, json={"requiredResourceAccess": []}),
        writer.delete(url),
        writer.delete(f"/servicePrincipals(appId='{server.client_id}')"),
        writer.post(f"{url}/federatedIdentityCredentials", json=_TRUST),
    ]
    for response in attempts:
        _denied(response)
    assert _credentials(graph, bootstrap) == before
    assert graph.get(f"{url}/federatedIdentityCredentials").json()["value"] == []
    assert graph.get(f"/servicePrincipals(appId='{server.client_id}')").status_code == 200


def test_federated_credentials_of_a_privileged_app_need_its_roles(
    graph: httpx.Client, writer: httpx.Client
) -> None:
    target = _app_with_roles(graph, "assigns", APP_ROLE_ASSIGNMENT_READWRITE_ALL)
    base = f"/applications/{target['id']}/federatedIdentityCredentials"
    added = graph.post(base, json=_TRUST)  # the bootstrap client holds every Graph role
    assert added.status_code == 201, added.text
    one = f"{base}/{added.json()['id']}"

    _denied(writer.post(base, json={**_TRUST, "name": "second", "subject": "other"}))
    _denied(writer.patch(one, json={"subject": "repo:attacker/repo:pull_request"}))
    _denied(writer.delete(one))
    assert writer.get(one).json()["subject"] == _TRUST["subject"]  # reading needs no more
    assert [c["name"] for c in graph.get(base).json()["value"]] == ["takeover"]


def test_a_caller_holding_every_role_of_the_target_may_change_it(
    graph: httpx.Client, writer: httpx.Client
) -> None:
    target = _app_with_roles(graph, "assigns", APP_ROLE_ASSIGNMENT_READWRITE_ALL)
    added = graph.post(f"/applications/{target['id']}/addPassword", json={})
    assert added.status_code == 200, added.text  # the bootstrap client holds every Graph role
    assert (
        graph.post(
            f"/applications/{target['id']}/removePassword", json={"keyId": added.json()["keyId"]}
        ).status_code
        == 204
    )

    peer = _app_with_roles(graph, "peer", APPLICATION_READWRITE_ALL)
    assert writer.post(f"/applications/{peer['id']}/addPassword", json={}).status_code == 200


def test_apps_without_graph_permissions_are_unaffected(
    graph: httpx.Client, writer: httpx.Client, assigner: httpx.Client
) -> None:
    plain = create_app(graph, prefix="plain")
    principal = create_principal(graph, plain)
    _grant(graph, principal, DICOM_APP_ID, DICOM_READ)  # a DICOM role is no Graph permission

    added = writer.post(f"/applications/{plain['id']}/addPassword", json={})
    assert added.status_code == 200, added.text
    rra = [{"resourceAppId": DICOM_APP_ID, "resourceAccess": [{"id": DICOM_READ, "type": "Role"}]}]
    patched = writer.patch(f"/applications/{plain['id']}", json={"requiredResourceAccess": rra})
    assert patched.status_code == 204, patched.text
    other = create_app(graph, prefix="plain")
    other_sp = create_principal(graph, other)
    dicom = graph.get(f"/servicePrincipals(appId='{DICOM_APP_ID}')").json()
    body = {"principalId": other_sp["id"], "resourceId": dicom["id"], "appRoleId": DICOM_READ}
    granted = assigner.post(f"/servicePrincipals/{other_sp['id']}/appRoleAssignments", json=body)
    assert granted.status_code == 201, granted.text


def test_consent_to_a_privileged_app_needs_its_roles(
    graph: httpx.Client, assigner: httpx.Client, server: Server
) -> None:
    bootstrap_sp = graph.get(f"/servicePrincipals(appId='{server.client_id}')").json()
    held = graph.get(f"/servicePrincipals/{bootstrap_sp['id']}/appRoleAssignments").json()
    dicom = graph.get(f"/servicePrincipals(appId='{DICOM_APP_ID}')").json()
    body = {"principalId": bootstrap_sp["id"], "resourceId": dicom["id"], "appRoleId": DICOM_READ}
    grant = {
        "clientId": bootstrap_sp["id"],
        "consentType": "AllPrincipals",
        "principalId": None,
        "resourceId": dicom["id"],
        "scope": "",
    }

    _denied(assigner.post(f"/servicePrincipals/{bootstrap_sp['id']}/appRoleAssignments", json=body))
    _denied(assigner.post(f"/servicePrincipals/{dicom['id']}/appRoleAssignedTo", json=body))
    first = held["value"][0]["id"]
    _denied(assigner.delete(f"/servicePrincipals/{bootstrap_sp['id']}/appRoleAssignments/{first}"))
    _denied(assigner.post("/oauth2PermissionGrants", json=grant))

    after = graph.get(f"/servicePrincipals/{bootstrap_sp['id']}/appRoleAssignments").json()
    assert after["value"] == held["value"]


def test_granting_a_graph_role_needs_that_role(graph: httpx.Client, assigner: httpx.Client) -> None:
    """Otherwise the assigner gives its own second app Application.ReadWrite.All."""
    plain = create_app(graph, prefix="plain")
    principal = create_principal(graph, plain)
    api = graph.get(f"/servicePrincipals(appId='{GRAPH_APP_ID}')").json()
    body = {
        "principalId": principal["id"],
        "resourceId": api["id"],
        "appRoleId": APPLICATION_READWRITE_ALL,
    }

    _denied(assigner.post(f"/servicePrincipals/{principal['id']}/appRoleAssignments", json=body))
    own = {**body, "appRoleId": APP_ROLE_ASSIGNMENT_READWRITE_ALL}  # a role it holds itself
    granted = assigner.post(f"/servicePrincipals/{principal['id']}/appRoleAssignments", json=own)
    assert granted.status_code == 201, granted.text
