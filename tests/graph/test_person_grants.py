"""``POST /oauth2PermissionGrants`` with ``consentType: Principal``: delegated permissions one
person has granted an application, as the consent page records them; that person is asked
nothing more, others still are."""

from __future__ import annotations

from typing import Any

import httpx

from dicomite.identity.builtin import DICOM_APP_ID
from tests.fixtures.directory import Admin
from tests.fixtures.server import Server
from tests.identity.people import Browserless, answer, code_request, web_app

SCOPE = "openid https://dicom.healthcareapis.azure.com/user_impersonation"


def _principal_id(graph: httpx.Client, app_id: str) -> str:
    found = graph.get("/servicePrincipals", params={"$filter": f"appId eq '{app_id}'"}).json()
    return str(found["value"][0]["id"])


def _grant(graph: httpx.Client, **fields: Any) -> httpx.Response:
    return graph.post("/oauth2PermissionGrants", json={"scope": "user_impersonation", **fields})


def test_a_persons_grant_spares_them_the_consent_page(
    graph: httpx.Client, server: Server, admin: Admin
) -> None:
    app = web_app(admin)
    granted, other = admin.add_person("DICOM Data Reader"), admin.add_person("DICOM Data Reader")
    person_id = admin.person(granted).id
    ids = {
        "clientId": _principal_id(graph, app.app.app_id),
        "resourceId": _principal_id(graph, DICOM_APP_ID),
    }
    created = _grant(graph, consentType="Principal", principalId=person_id, **ids)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["consentType"], body["principalId"]) == ("Principal", person_id)
    listed = graph.get(
        "/oauth2PermissionGrants", params={"$filter": f"principalId eq '{person_id}'"}
    )
    assert [g["id"] for g in listed.json()["value"]] == [body["id"]]

    request = code_request(app.app.app_id, app.redirect_uri, None, scope=SCOPE)
    for name, asked in ((granted, False), (other, True)):
        browser = Browserless(server)
        try:
            browser.sign_in(name)
            response = browser.authorize(**request)
        finally:
            browser.close()
        if asked:
            assert response.status_code == 200 and "Permissions requested" in response.text
        else:
            assert "code" in answer(response, app.redirect_uri)


def test_a_persons_grant_names_a_person_of_the_tenant(graph: httpx.Client, admin: Admin) -> None:
    app = web_app(admin)
    ids = {
        "clientId": _principal_id(graph, app.app.app_id),
        "resourceId": _principal_id(graph, DICOM_APP_ID),
    }
    person_id = admin.person(admin.add_person(None)).id
    missing = _grant(graph, consentType="Principal", principalId=None, **ids)
    assert missing.status_code == 400 and "principalId is required" in missing.text
    unknown = _grant(
        graph, consentType="Principal", principalId="5c2c5e2e-0000-4000-8000-000000000000", **ids
    )
    assert unknown.status_code == 404
    not_a_guid = _grant(graph, consentType="Principal", principalId="someone", **ids)
    assert not_a_guid.status_code == 400
    for_everyone = _grant(graph, consentType="AllPrincipals", principalId=person_id, **ids)
    assert for_everyone.status_code == 400 and "must be null" in for_everyone.text
    other_kind = _grant(graph, consentType="Group", principalId=person_id, **ids)
    assert other_kind.status_code == 400
