"""The UserInfo endpoint (OIDC Core §5.3) at ``/graph/oidc/userinfo``, where discovery points:
a person's Microsoft Graph token gets the ID token's ``sub`` (and ``name`` with ``profile``);
other tokens are refused with RFC 6750 challenges."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest

from tests.fixtures.directory import Admin
from tests.fixtures.server import Server
from tests.identity.people import WebApp, person_token, signed_in_tokens, web_app

DICOM_IMPERSONATION = "https://dicom.healthcareapis.azure.com/user_impersonation"


def _claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def _userinfo_url(server: Server) -> str:
    with server.client() as client:
        discovery = client.get(f"/{server.tenant_id}/v2.0/.well-known/openid-configuration")
    url = str(discovery.json()["userinfo_endpoint"])
    assert url == f"{server.base_url}/graph/oidc/userinfo"
    return url


def _call(server: Server, token: str | None, method: str = "GET") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with server.client() as client:
        return client.request(method, _userinfo_url(server), headers=headers)


@pytest.fixture(scope="module")
def app(admin: Admin) -> WebApp:
    return web_app(admin)


@pytest.fixture(scope="module")
def person(admin: Admin) -> str:
    return admin.add_person("DICOM Data Reader")


def test_a_persons_graph_token_gets_the_id_tokens_subject_and_name(
    server: Server, admin: Admin, app: WebApp, person: str
) -> None:
    signed_in = signed_in_tokens(server, app, person, "openid profile email")
    access = _claims(signed_in["access_token"])
    assert (
        access["aud"] == "https://graph.microsoft.com" and access["scp"] == "email openid profile"
    )
    subject = _claims(signed_in["id_token"])["sub"]
    for method in ("GET", "POST"):
        response = _call(server, signed_in["access_token"], method)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"sub": subject, "name": admin.person(person).display_name}


def test_the_subject_is_pairwise_and_the_name_needs_profile(
    server: Server, admin: Admin, app: WebApp, person: str
) -> None:
    other_app = web_app(admin)
    first = signed_in_tokens(server, app, person, "openid")
    second = signed_in_tokens(server, other_app, person, "openid")
    answers = [_call(server, t["access_token"]).json() for t in (first, second)]
    assert answers == [{"sub": _claims(t["id_token"])["sub"]} for t in (first, second)]
    assert answers[0]["sub"] != answers[1]["sub"]


def _challenge(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    return challenge


def test_no_token_gets_a_challenge_without_an_error(server: Server) -> None:
    response = _call(server, None)
    assert "error=" not in _challenge(response, 401)
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_an_app_only_token_is_refused(server: Server) -> None:
    response = _call(server, server.graph_token())
    challenge = _challenge(response, 401)
    assert 'error="invalid_token"' in challenge and "app-only" in challenge
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_a_token_for_another_api_is_refused(server: Server, admin: Admin, person: str) -> None:
    dicom_token = person_token(server, admin, person, f"openid {DICOM_IMPERSONATION}")
    challenge = _challenge(_call(server, dicom_token), 401)
    assert 'error="invalid_token"' in challenge and "audience" in challenge


def test_a_token_without_openid_is_not_enough(
    server: Server, admin: Admin, app: WebApp, person: str
) -> None:
    signed_in = signed_in_tokens(server, app, person, "profile email")
    challenge = _challenge(_call(server, signed_in["access_token"]), 403)
    assert 'error="insufficient_scope"' in challenge


def test_a_disabled_person_gets_nothing(server: Server, admin: Admin, app: WebApp) -> None:
    person = admin.add_person(None)
    signed_in = signed_in_tokens(server, app, person, "openid profile")
    assert _call(server, signed_in["access_token"]).status_code == 200
    admin.change_person(person, enabled=False)
    challenge = _challenge(_call(server, signed_in["access_token"]), 401)
    assert 'error="invalid_token"' in challenge and "disabled" in challenge
