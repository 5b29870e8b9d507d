"""Bearer tokens on the resource-manager surface: ARM's tokens are accepted there and only
there, refusals come in ARM's codes."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from dicomite.clock import utcnow
from dicomite.identity.builtin import ARM_APP_ID
from dicomite.identity.keys import KeyRing
from tests.arm.helpers import ARM_SCOPE, arm_get
from tests.fixtures.directory import DICOM_SCOPE, GRAPH_SCOPE, Admin, RegisteredApp
from tests.fixtures.server import Server
from tests.graph.helpers import claims, token


@pytest.fixture(scope="module")
def app(admin: Admin) -> RegisteredApp:
    return admin.register(roles=("Dicom.ReadWrite",))


def _error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    return dict(response.json()["error"])


def test_no_token(server: Server) -> None:
    response = arm_get(server, "/subscriptions")
    assert _error(response) == {
        "code": "AuthenticationFailed",
        "message": "Authentication failed. The 'Authorization' header is missing.",
    }
    challenge = f'Bearer authorization_uri="{server.base_url}/{server.tenant_id}"'
    assert response.headers["www-authenticate"] == challenge


def test_malformed_tokens(server: Server) -> None:
    with server.client() as client:
        basic = client.get(
            "/tenants", params={"api-version": "2022-12-01"}, headers={"Authorization": "Basic x"}
        )
    assert _error(basic)["code"] == "AuthenticationFailed"
    garbage = arm_get(server, "/tenants", "not-a-jwt")
    assert _error(garbage) == {
        "code": "InvalidAuthenticationToken",
        "message": "The access token is invalid.",
    }
    assert 'error="invalid_token"' in garbage.headers["www-authenticate"]


@pytest.mark.parametrize("scope", [DICOM_SCOPE, GRAPH_SCOPE])
def test_tokens_of_other_apis_are_refused(server: Server, app: RegisteredApp, scope: str) -> None:
    assert app.secret is not None
    response = arm_get(server, "/subscriptions", token(server, app.app_id, app.secret, scope))
    error = _error(response)
    assert error["code"] == "InvalidAuthenticationTokenAudience"
    assert "'https://management.core.windows.net/'" in error["message"]


@pytest.mark.parametrize(
    "scope",
    [ARM_SCOPE, "https://management.azure.com//.default", f"{ARM_APP_ID}/.default"],
)
def test_every_name_of_the_management_api_gets_a_token_arm_accepts(
    server: Server, app: RegisteredApp, scope: str
) -> None:
    assert app.secret is not None
    arm_token = token(server, app.app_id, app.secret, scope)
    assert "roles" not in claims(arm_token)  # the API has no app roles
    assert arm_get(server, "/subscriptions", arm_token).status_code == 200


def test_v1_resource_without_the_trailing_slash(server: Server, app: RegisteredApp) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": app.app_id,
        "client_secret": app.secret or "",
        "resource": "https://management.azure.com/",
    }
    with server.client() as client:
        response = client.post(f"{server.authority}/oauth2/token", data=form)
    assert response.status_code == 200, response.text
    arm_token = response.json()["access_token"]
    assert claims(arm_token)["aud"] == "https://management.azure.com"
    assert arm_get(server, "/tenants", arm_token).status_code == 200


def test_arm_tokens_are_refused_by_dicom_and_graph(server: Server, app: RegisteredApp) -> None:
    assert app.secret is not None
    arm_token = token(server, app.app_id, app.secret, ARM_SCOPE)
    headers = {"Authorization": f"Bearer {arm_token}"}
    with server.client() as client:
        assert client.get("/dicom/v2/studies", headers=headers).status_code == 401
        assert client.get("/graph/v1.0/organization", headers=headers).status_code == 401


def _forged(admin: Admin, server: Server, **overrides: object) -> str:
    """A token signed with the server's own key, with claims a token endpoint never writes."""
    key = KeyRing(admin.context.store, admin.context.protection).signing_key(utcnow())
    now = int(time.time())
    body = {
        "aud": "https://management.core.windows.net/",
        "iss": f"{server.base_url}/{server.tenant_id}/",
        "nbf": now,
        "exp": now + 600,
        "appid": str(uuid.uuid4()),
    } | overrides
    return jwt.encode(body, key.private_key, algorithm="RS256", headers={"kid": key.kid})


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        # offsets from the moment the test runs, not from collection
        ({"exp": -400}, "ExpiredAuthenticationToken"),
        ({"nbf": +400}, "InvalidAuthenticationToken"),
        ({"iss": "https://sts.windows.net/other/"}, "InvalidAuthenticationTokenTenant"),
    ],
)
def test_refused_claims(
    admin: Admin, server: Server, overrides: dict[str, object], code: str
) -> None:
    now = int(time.time())
    changed = {k: now + v if isinstance(v, int) else v for k, v in overrides.items()}
    response = arm_get(server, "/subscriptions", _forged(admin, server, **changed))
    assert _error(response)["code"] == code
