"""People sign in through applications: msal and azure-identity drive the authorization code
flow with PKCE, a real Chromium fills in the sign-in and consent pages, and the tokens come
back as Entra ID's would (an ID token with the nonce, a delegated access token with ``scp``,
a refresh token that ``acquire_token_silent`` uses)."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import msal
import pytest
from azure.identity import AuthorizationCodeCredential
from playwright.sync_api import Page, Route

from tests.fixtures.directory import DICOM, PASSWORD, Admin, RegisteredApp
from tests.fixtures.server import Server, free_port

pytestmark = pytest.mark.acceptance

IMPERSONATION = f"{DICOM}/user_impersonation"


class Redirects:
    """Catches the browser's arrival at the client's redirect URI (no client server runs)."""

    def __init__(self, page: Page, redirect_uri: str) -> None:
        self.urls: list[str] = []
        self.bodies: list[str] = []
        page.route(f"{redirect_uri}**", self._arrive)

    def _arrive(self, route: Route) -> None:
        request = route.request
        self.urls.append(request.url)
        self.bodies.append(request.post_data or "")
        route.fulfill(status=200, body="signed in", content_type="text/plain")

    def params(self) -> dict[str, str]:
        """The answer: the query of a redirect, the form of a ``form_post``."""
        assert len(self.urls) == 1, self.urls
        return dict(parse_qsl(self.bodies[0] or urlsplit(self.urls[0]).query))


def sign_in(page: Page, url: str, name: str, *, consent: bool) -> None:
    page.goto(url)
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    if consent:
        page.get_by_role("heading", name="Permissions requested").wait_for()
        page.get_by_role("button", name="Accept").click()


def claims(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


@pytest.fixture(scope="module")
def reader(admin: Admin) -> str:
    return admin.add_person("DICOM Data Reader")


@pytest.fixture(scope="module")
def web_app(admin: Admin) -> tuple[RegisteredApp, str]:
    app = admin.register()
    redirect_uri = f"http://localhost:{free_port()}/callback"
    admin.add_redirect_uri(app.app_id, "web", redirect_uri)
    return app, redirect_uri


def test_msal_confidential_client_signs_a_person_in(
    server: Server, web_app: tuple[RegisteredApp, str], reader: str, page: Page
) -> None:
    app, redirect_uri = web_app
    client = msal.ConfidentialClientApplication(
        app.app_id,
        client_credential=app.secret,
        authority=server.authority,
        instance_discovery=False,
        verify=server.ca_file,
    )
    flow = client.initiate_auth_code_flow(
        [IMPERSONATION], redirect_uri=redirect_uri, response_mode="form_post"
    )
    arrivals = Redirects(page, redirect_uri)
    sign_in(page, flow["auth_uri"], reader, consent=True)
    page.wait_for_url(f"{redirect_uri}**")
    result = client.acquire_token_by_auth_code_flow(flow, arrivals.params())
    assert "access_token" in result, result
    # msal sends the SHA-256 of its nonce, and checks the ID token carries it back.
    sent_nonce = hashlib.sha256(flow["nonce"].encode()).hexdigest()
    assert result["id_token_claims"]["nonce"] == sent_nonce
    access = claims(result["access_token"])
    assert access["scp"] == "user_impersonation"
    assert access["roles"] == ["Dicom.Read"]
    assert access["aud"] == DICOM and access["appid"] == app.app_id
    assert "idtyp" not in access
    assert access["upn"] == reader

    account = client.get_accounts()[0]
    refreshed = client.acquire_token_silent([IMPERSONATION], account, force_refresh=True)
    assert refreshed is not None and "access_token" in refreshed, refreshed
    assert refreshed["access_token"] != result["access_token"]
    assert claims(refreshed["access_token"])["scp"] == "user_impersonation"


def test_msal_public_client_on_any_localhost_port(
    server: Server, admin: Admin, reader: str, page: Page
) -> None:
    app = admin.register(secret=False)
    admin.add_redirect_uri(app.app_id, "publicClient", "http://localhost")
    redirect_uri = f"http://localhost:{free_port()}"
    client = msal.PublicClientApplication(
        app.app_id, authority=server.authority, instance_discovery=False, verify=server.ca_file
    )
    flow = client.initiate_auth_code_flow(
        [IMPERSONATION], redirect_uri=redirect_uri, response_mode="form_post"
    )
    arrivals = Redirects(page, redirect_uri)
    sign_in(page, flow["auth_uri"], reader, consent=True)
    page.wait_for_url(f"{redirect_uri}**")
    result = client.acquire_token_by_auth_code_flow(flow, arrivals.params())
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == reader
    assert claims(result["access_token"])["appidacr"] == "0"

    account = client.get_accounts()[0]
    refreshed = client.acquire_token_silent([IMPERSONATION], account, force_refresh=True)
    assert refreshed is not None and "access_token" in refreshed, refreshed


def test_azure_identity_redeems_a_code(
    server: Server, admin: Admin, reader: str, page: Page
) -> None:
    app = admin.register()
    redirect_uri = f"http://localhost:{free_port()}/signed-in"
    admin.add_redirect_uri(app.app_id, "web", redirect_uri)
    query = {
        "client_id": app.app_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": f"openid {IMPERSONATION}",
        "state": "s-1",
    }
    arrivals = Redirects(page, redirect_uri)
    url = f"{server.authority}/oauth2/v2.0/authorize?{urlencode(query)}"
    sign_in(page, url, reader, consent=True)
    page.wait_for_url(f"{redirect_uri}**")
    params = arrivals.params()
    assert params["state"] == "s-1"
    credential = AuthorizationCodeCredential(
        server.tenant_id,
        app.app_id,
        params["code"],
        redirect_uri,
        client_secret=app.secret,
        authority=server.base_url,
        connection_verify=server.ca_file,
    )
    token = credential.get_token(IMPERSONATION)
    assert claims(token.token)["scp"] == "user_impersonation"
