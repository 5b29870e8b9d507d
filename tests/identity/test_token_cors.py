"""CORS on the identity endpoints, as Entra ID answers browsers: discovery and keys for any
origin; the token and device authorization endpoints only for the origins of the tenant's SPA
redirect URIs (preflights included), following the directory at once. Chromium redeems a SPA's
code from its page."""

from __future__ import annotations

import secrets
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import BrowserContext

from dicomite.identity import directory
from tests.fixtures.directory import PASSWORD, Admin
from tests.fixtures.server import Server
from tests.identity.people import Pkce

ALLOW_ORIGIN = "access-control-allow-origin"
UNREGISTERED = "https://elsewhere.example"


def test_discovery_and_keys_are_for_any_origin(server: Server) -> None:
    tenant = server.tenant_id
    paths = [
        f"/{tenant}/v2.0/.well-known/openid-configuration",
        f"/{tenant}/.well-known/openid-configuration",
        f"/{tenant}/discovery/v2.0/keys",
        f"/{tenant}/discovery/keys",
        "/no-such-tenant.example/v2.0/.well-known/openid-configuration",  # errors too
    ]
    with server.client() as client:
        for path in paths:
            response = client.get(path, headers={"Origin": UNREGISTERED})
            assert response.headers[ALLOW_ORIGIN] == "*", path


@pytest.fixture(scope="module")
def spa_origin(admin: Admin) -> str:
    """An origin a SPA of the tenant registered, written as its redirect URI has it (upper
    case, default port): browsers send it lowercase and without the port."""
    host = f"spa-{uuid.uuid4().hex[:8]}.example"
    app = admin.register(secret=False)
    admin.add_redirect_uri(app.app_id, "spa", f"https://{host.upper()}:443/app/callback")
    return f"https://{host}"


TOKEN, DEVICE_CODE = "token", "devicecode"


def _url(server: Server, endpoint: str) -> str:
    return f"{server.authority}/oauth2/v2.0/{endpoint}"


def _token_call(server: Server, origin: str | None, endpoint: str = TOKEN) -> httpx.Response:
    """Any request will do: its answer (here an error) is what the page may or may not read."""
    headers = {"Origin": origin} if origin else {}
    form = {"grant_type": "client_credentials", "client_id": str(uuid.uuid4()), "scope": "x"}
    with server.client() as client:
        return client.post(_url(server, endpoint), data=form, headers=headers)


@pytest.mark.parametrize("endpoint", [TOKEN, DEVICE_CODE])
def test_responses_are_readable_from_spa_origins_only(
    server: Server, spa_origin: str, endpoint: str
) -> None:
    allowed = _token_call(server, spa_origin, endpoint)
    assert allowed.status_code in (400, 401) and allowed.json()["error"]
    assert allowed.headers[ALLOW_ORIGIN] == spa_origin
    assert allowed.headers["vary"] == "Origin"
    for origin in (UNREGISTERED, spa_origin.replace("https", "http"), None):
        response = _token_call(server, origin, endpoint)
        assert ALLOW_ORIGIN not in response.headers, origin
        assert "vary" not in response.headers


@pytest.mark.parametrize("endpoint", [TOKEN, DEVICE_CODE])
def test_errors_before_the_form_is_read_are_readable_too(
    server: Server, spa_origin: str, endpoint: str
) -> None:
    headers = {"Origin": spa_origin, "Content-Type": "x/y"}
    with server.client() as client:
        response = client.post(_url(server, endpoint), content=b"{}", headers=headers)
    assert response.status_code == 400 and response.headers[ALLOW_ORIGIN] == spa_origin


def _preflight(server: Server, endpoint: str, origin: str, method: str = "POST") -> httpx.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type,client-request-id",
    }
    with server.client() as client:
        return client.options(_url(server, endpoint), headers=headers)


@pytest.mark.parametrize("endpoint", [TOKEN, DEVICE_CODE])
def test_a_preflight_from_a_spa_origin_is_answered(
    server: Server, spa_origin: str, endpoint: str
) -> None:
    response = _preflight(server, endpoint, spa_origin)
    assert response.status_code == 204
    assert response.headers[ALLOW_ORIGIN] == spa_origin
    assert response.headers["access-control-allow-methods"] == "POST"
    assert response.headers["access-control-allow-headers"] == "content-type,client-request-id"
    assert response.headers["access-control-max-age"] == "3600"
    refusals = (
        _preflight(server, endpoint, UNREGISTERED),
        _preflight(server, endpoint, spa_origin, "PUT"),
    )
    for refused in refusals:
        assert refused.status_code == 400 and ALLOW_ORIGIN not in refused.headers


def test_the_origins_follow_the_directory(server: Server, admin: Admin) -> None:
    origin = f"http://localhost:{40000 + secrets.randbelow(20000)}"
    app = admin.register(secret=False)
    assert ALLOW_ORIGIN not in _token_call(server, origin).headers
    admin.add_redirect_uri(app.app_id, "web", f"{origin}/web")  # a web URI opens nothing
    assert ALLOW_ORIGIN not in _token_call(server, origin).headers
    admin.add_redirect_uri(app.app_id, "spa", f"{origin}/spa")
    assert _token_call(server, origin).headers[ALLOW_ORIGIN] == origin
    with admin.context.store.write() as session:
        registered = directory.get_application_by_app_id(
            session, admin.context.tenant_id, app.app_id
        )
        directory.remove_redirect_uri(session, registered, "spa", f"{origin}/spa")
    assert ALLOW_ORIGIN not in _token_call(server, origin).headers


# ------------------------------------------------------------------- from Chromium

REDEEM = """async ([url, form]) => {
  try {
    const r = await fetch(url, {method: 'POST', body: new URLSearchParams(form)});
    return {status: r.status, body: await r.json()};
  } catch (e) { return {error: String(e)}; }
}"""


def test_a_single_page_application_redeems_its_code_from_its_page(
    server: Server,
    admin: Admin,
    browser_context: BrowserContext,
    pages: tuple[str, str],
) -> None:
    spa_page, other_page = pages
    redirect_uri = f"{spa_page}/callback"
    app = admin.register(secret=False)
    admin.add_redirect_uri(app.app_id, "spa", redirect_uri)
    person = admin.add_person(None)
    pkce = Pkce.new()
    query = {
        "client_id": app.app_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": "openid profile offline_access",
        "state": "spa-1",
        **pkce.params(),
    }
    page = browser_context.new_page()
    page.goto(f"{server.authority}/oauth2/v2.0/authorize?{urlencode(query)}")
    page.get_by_label("Username").fill(person)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{redirect_uri}?**")
    answer = dict(parse_qsl(urlsplit(page.url).query))
    assert answer["state"] == "spa-1"
    form = {
        "grant_type": "authorization_code",
        "client_id": app.app_id,
        "code": answer["code"],
        "redirect_uri": redirect_uri,
        "code_verifier": pkce.verifier,
        "scope": query["scope"],
    }
    redeemed: dict[str, Any] = page.evaluate(REDEEM, [server.token_url, form])
    assert redeemed["status"] == 200, redeemed
    assert {"access_token", "id_token", "refresh_token"} <= set(redeemed["body"])

    console: list[str] = []
    stranger = browser_context.new_page()
    stranger.on("console", lambda message: console.append(message.text))
    stranger.goto(f"{other_page}/callback")
    refresh = {
        "grant_type": "refresh_token",
        "client_id": app.app_id,
        "refresh_token": redeemed["body"]["refresh_token"],
    }
    refused = stranger.evaluate(REDEEM, [server.token_url, refresh])
    assert "Failed to fetch" in refused["error"]
    assert any("CORS" in text for text in console)
