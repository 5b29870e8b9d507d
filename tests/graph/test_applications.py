"""/applications: registrations, secrets and certificates, end to end on the real server."""

from __future__ import annotations

import base64
import hashlib

import httpx

from dicomite.identity.builtin import DICOM_APP_ID, DICOM_READWRITE
from tests.fixtures.server import Server
from tests.graph.helpers import (
    add_password,
    certificate,
    create_app,
    create_principal,
    request_token,
    token,
    unique,
)


def test_create_returns_the_graph_shape(graph: httpx.Client, server: Server) -> None:
    app = create_app(graph)
    assert app["@odata.context"].endswith("/graph/v1.0/$metadata#applications/$entity")
    assert app["@odata.context"].startswith(server.base_url)
    assert app["signInAudience"] == "AzureADMyOrg"
    assert app["api"]["requestedAccessTokenVersion"] is None
    assert app["passwordCredentials"] == [] and app["keyCredentials"] == []
    assert app["web"]["implicitGrantSettings"] == {
        "enableAccessTokenIssuance": False,
        "enableIdTokenIssuance": False,
    }


def test_get_by_id_and_by_app_id(graph: httpx.Client) -> None:
    app = create_app(graph)
    by_id = graph.get(f"/applications/{app['id']}")
    by_app_id = graph.get(f"/applications(appId='{app['appId']}')")
    assert by_id.status_code == by_app_id.status_code == 200
    assert by_app_id.json()["id"] == app["id"]
    assert by_id.headers["content-type"].startswith("application/json")
    assert by_id.headers["request-id"]


def test_secret_lifecycle_reaches_the_token_endpoint(graph: httpx.Client, server: Server) -> None:
    app = create_app(graph)
    create_principal(graph, app)  # as in Entra ID, a client needs its principal (7000229)
    secret = add_password(graph, app)
    assert len(secret["secretText"]) == 40 and secret["hint"] == secret["secretText"][:3]
    assert token(server, app["appId"], secret["secretText"])

    listed = graph.get(f"/applications/{app['id']}").json()["passwordCredentials"]
    assert [p["keyId"] for p in listed] == [secret["keyId"]]
    assert listed[0]["secretText"] is None and listed[0]["hint"] == secret["hint"]
    assert secret["secretText"] not in graph.get("/applications").text

    removed = graph.post(
        f"/applications/{app['id']}/removePassword", json={"keyId": secret["keyId"]}
    )
    assert removed.status_code == 204
    refused = request_token(
        server, app["appId"], secret["secretText"], "https://graph.microsoft.com/.default"
    )
    assert refused.status_code == 401
    assert refused.json()["error_codes"] == [7000215]


def test_add_password_with_display_name_and_dates(graph: httpx.Client) -> None:
    app = create_app(graph)
    body = {
        "passwordCredential": {
            "displayName": "ci",
            "startDateTime": "2030-01-01T00:00:00Z",
            "endDateTime": "2031-01-01T00:00:00.1234567Z",
        }
    }
    secret = graph.post(f"/applications/{app['id']}/addPassword", json=body).json()
    assert secret["displayName"] == "ci"
    assert secret["startDateTime"].startswith("2030-01-01T00:00:00")
    assert secret["endDateTime"].startswith("2031-01-01T00:00:00.123456")


def test_secret_beyond_24_months_is_refused(graph: httpx.Client) -> None:
    app = create_app(graph)
    body = {"passwordCredential": {"endDateTime": "2099-01-01T00:00:00Z"}}
    response = graph.post(f"/applications/{app['id']}/addPassword", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_BadRequest"
    assert "24 months" in response.json()["error"]["message"]


def test_remove_unknown_password_is_404(graph: httpx.Client) -> None:
    app = create_app(graph)
    body = {"keyId": "00000000-0000-0000-0000-000000000001"}
    response = graph.post(f"/applications/{app['id']}/removePassword", json=body)
    assert response.status_code == 404


def test_patch_and_delete(graph: httpx.Client) -> None:
    app = create_app(graph)
    uri = f"api://{app['appId']}"
    patch = {
        "displayName": unique("renamed"),
        "description": "a test app",
        "identifierUris": [uri],
        "api": {"requestedAccessTokenVersion": 2},
        "web": {"redirectUris": ["https://localhost/cb"]},
        "requiredResourceAccess": [
            {
                "resourceAppId": DICOM_APP_ID,
                "resourceAccess": [{"id": DICOM_READWRITE, "type": "Role"}],
            }
        ],
    }
    assert graph.patch(f"/applications/{app['id']}", json=patch).status_code == 204
    got = graph.get(f"/applications/{app['id']}").json()
    assert got["displayName"] == patch["displayName"] and got["identifierUris"] == [uri]
    assert got["api"]["requestedAccessTokenVersion"] == 2
    assert got["web"]["redirectUris"] == ["https://localhost/cb"]
    assert got["requiredResourceAccess"] == patch["requiredResourceAccess"]

    assert graph.delete(f"/applications(appId='{app['appId']}')").status_code == 204
    assert graph.get(f"/applications/{app['id']}").status_code == 404


def test_duplicate_identifier_uri_is_a_bad_request(graph: httpx.Client, server: Server) -> None:
    first = create_app(graph)
    uri = f"api://{server.tenant_id}/{unique('shared').replace(' ', '-')}"
    patched = graph.patch(f"/applications/{first['id']}", json={"identifierUris": [uri]})
    assert patched.status_code == 204
    second = create_app(graph)  # no service principal on either side: still refused
    response = graph.patch(f"/applications/{second['id']}", json={"identifierUris": [uri]})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_BadRequest"
    builtin = graph.patch(
        f"/applications/{second['id']}",
        json={"identifierUris": ["https://dicom.healthcareapis.azure.com"]},
    )
    assert builtin.status_code == 400


def test_get_response_can_be_sent_back(graph: httpx.Client) -> None:
    app = create_app(graph)
    body = graph.get(f"/applications/{app['id']}").json()
    for read_only in (
        "@odata.context",
        "id",
        "appId",
        "createdDateTime",
        "publisherDomain",
        "parentalControlSettings",
    ):
        body.pop(read_only)
    body["displayName"] = unique("round trip")
    assert graph.patch(f"/applications/{app['id']}", json=body).status_code == 204


def test_filter_top_skiptoken_and_select(graph: httpx.Client) -> None:
    prefix = unique("paged")
    made = [create_app(graph, prefix=prefix) for _ in range(3)]
    query = f"startswith(displayName,'{prefix}')"
    first = graph.get("/applications", params={"$filter": query, "$top": "2"}).json()
    assert len(first["value"]) == 2 and first["@odata.context"].endswith("#applications")
    rest = graph.get(first["@odata.nextLink"]).json()
    assert len(rest["value"]) == 1 and "@odata.nextLink" not in rest
    assert {a["id"] for a in first["value"] + rest["value"]} == {a["id"] for a in made}

    exact = graph.get(
        "/applications",
        params={"$filter": f"appId eq '{made[0]['appId']}'", "$select": "id,displayName"},
    ).json()
    assert exact["value"] == [{"id": made[0]["id"], "displayName": made[0]["displayName"]}]


def test_certificates_by_add_key_patch_and_remove_key(graph: httpx.Client) -> None:
    app = create_app(graph)
    _, der = certificate()
    thumbprint = hashlib.sha1(der).hexdigest().upper()
    body = {
        "keyCredential": {
            "type": "AsymmetricX509Cert",
            "usage": "Verify",
            "key": base64.b64encode(der).decode(),
        },
        "passwordCredential": None,
    }
    added = graph.post(f"/applications/{app['id']}/addKey", json=body)
    assert added.status_code == 200, added.text
    key = added.json()
    assert key["customKeyIdentifier"] == thumbprint and key["key"] is None
    listed = graph.get(f"/applications/{app['id']}").json()["keyCredentials"]
    assert listed[0]["keyId"] == key["keyId"] and listed[0]["key"] is None
    selected = graph.get(f"/applications/{app['id']}", params={"$select": "keyCredentials"})
    assert selected.json()["keyCredentials"][0]["key"] == base64.b64encode(der).decode()

    _, other = certificate()
    patch = {
        "keyCredentials": [
            {"keyId": key["keyId"]},
            {
                "type": "AsymmetricX509Cert",
                "usage": "Verify",
                "key": base64.b64encode(other).decode(),
                "displayName": "second",
            },
        ]
    }
    assert graph.patch(f"/applications/{app['id']}", json=patch).status_code == 204
    listed = graph.get(f"/applications/{app['id']}").json()["keyCredentials"]
    assert sorted(k["displayName"] or "" for k in listed)[-1] == "second" and len(listed) == 2

    removed = graph.post(
        f"/applications/{app['id']}/removeKey", json={"keyId": key["keyId"], "proof": "x"}
    )
    assert removed.status_code == 204
    assert len(graph.get(f"/applications/{app['id']}").json()["keyCredentials"]) == 1
    assert graph.patch(f"/applications/{app['id']}", json={"keyCredentials": []}).status_code == 204
    assert graph.get(f"/applications/{app['id']}").json()["keyCredentials"] == []


def test_add_key_refuses_symmetric_keys(graph: httpx.Client) -> None:
    app = create_app(graph)
    body = {"keyCredential": {"type": "Symmetric", "usage": "Sign", "key": "AAAA"}}
    response = graph.post(f"/applications/{app['id']}/addKey", json=body)
    assert response.status_code == 400


def test_an_enabled_app_role_is_disabled_before_it_is_deleted(graph: httpx.Client) -> None:
    app = create_app(graph)
    role = {
        "id": "5b0cb2a7-5f4c-4bc6-b0a5-3c2e0c9c1a11",
        "value": "Things.Read",
        "displayName": "Read things",
        "description": "Read things",
        "allowedMemberTypes": ["Application"],
        "isEnabled": True,
    }
    assert graph.patch(f"/applications/{app['id']}", json={"appRoles": [role]}).status_code == 204

    deleted = graph.patch(f"/applications/{app['id']}", json={"appRoles": []})
    assert deleted.status_code == 400
    assert "must be disabled" in deleted.json()["error"]["message"]

    disabled = {**role, "isEnabled": False}
    assert (
        graph.patch(f"/applications/{app['id']}", json={"appRoles": [disabled]}).status_code == 204
    )
    assert graph.patch(f"/applications/{app['id']}", json={"appRoles": []}).status_code == 204
    assert graph.get(f"/applications/{app['id']}").json()["appRoles"] == []
