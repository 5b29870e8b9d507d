"""RP-initiated logout at ``/{tenant}/oauth2/v2.0/logout``: the portal session ends; the browser
goes back to ``post_logout_redirect_uri`` (with ``state``) only when the application named by
``client_id`` or by a verified ``id_token_hint`` registered it; never anywhere else."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlencode

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from playwright.sync_api import Page

from dicomite.clock import utcnow
from dicomite.identity.keys import KeyRing
from dicomite.identity.tokens import issuer, sign
from tests.fixtures.directory import PASSWORD, Admin
from tests.fixtures.server import Server
from tests.identity.people import Browserless, WebApp, signed_in_tokens, web_app

SIGNED_OUT = "You have signed out"


@pytest.fixture(scope="module")
def app(admin: Admin) -> WebApp:
    return web_app(admin)


@pytest.fixture(scope="module")
def person(admin: Admin) -> str:
    return admin.add_person(None)


def _logout(server: Server, method: str = "GET", **params: str) -> httpx.Response:
    path = f"/{server.tenant_id}/oauth2/v2.0/logout"
    with server.client() as client:
        if method == "GET":
            return client.get(path, params=params)
        return client.post(path, data=params)


def _id_token(server: Server, admin: Admin, audience: str, **claims: object) -> str:
    """An ID token signed with the tenant's current key (as the server would sign it)."""
    now = utcnow()
    payload = {
        "aud": audience,
        "iss": issuer(server.base_url, server.tenant_id, 2),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
        "sub": "someone",
        **claims,
    }
    key = KeyRing(admin.context.store, admin.context.protection).signing_key(now)
    return sign(payload, key, 2)


def _redirected(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    return response.headers["location"]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_back_to_a_uri_the_named_application_registered(
    server: Server, app: WebApp, method: str
) -> None:
    response = _logout(
        server,
        method,
        client_id=app.app.app_id,
        post_logout_redirect_uri=app.redirect_uri,
        state="st-1",
    )
    assert _redirected(response) == f"{app.redirect_uri}?state=st-1"
    without_state = _logout(
        server, client_id=app.app.app_id, post_logout_redirect_uri=app.redirect_uri
    )
    assert _redirected(without_state) == app.redirect_uri


def test_the_id_token_hint_names_the_application(
    server: Server, admin: Admin, app: WebApp, person: str
) -> None:
    hint = signed_in_tokens(server, app, person, "openid")["id_token"]
    back = {"post_logout_redirect_uri": app.redirect_uri, "id_token_hint": hint}
    assert _redirected(_logout(server, **back)) == app.redirect_uri
    both = _logout(server, client_id=app.app.app_id, **back)
    assert _redirected(both) == app.redirect_uri
    # RP-Initiated Logout §2: a hint past its exp still names its application.
    past = utcnow() - timedelta(days=2)
    expired = _id_token(
        server, admin, app.app.app_id, iat=int(past.timestamp()), exp=int(past.timestamp()) + 60
    )
    stale = _logout(server, id_token_hint=expired, post_logout_redirect_uri=app.redirect_uri)
    assert _redirected(stale) == app.redirect_uri


def _foreign_key_token(server: Server, admin: Admin, audience: str) -> str:
    """The tenant's current kid, another key's signature."""
    genuine = _id_token(server, admin, audience)
    kid = jwt.get_unverified_header(genuine)["kid"]
    claims = jwt.decode(genuine, options={"verify_signature": False})
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, other, algorithm="RS256", headers={"kid": kid})


def _unsigned(server: Server, admin: Admin, audience: str) -> str:
    claims = jwt.decode(_id_token(server, admin, audience), options={"verify_signature": False})
    return jwt.encode(claims, None, algorithm="none")


OPEN_REDIRECTS = {
    "a URI nobody registered": lambda s, a, app, other: {
        "client_id": app.app.app_id,
        "post_logout_redirect_uri": "https://evil.example/",
    },
    "a look-alike host": lambda s, a, app, other: {
        "client_id": app.app.app_id,
        "post_logout_redirect_uri": app.redirect_uri.replace("localhost", "localhost.evil.example"),
    },
    "another application's URI": lambda s, a, app, other: {
        "client_id": app.app.app_id,
        "post_logout_redirect_uri": other.redirect_uri,
    },
    "no application named": lambda s, a, app, other: {"post_logout_redirect_uri": app.redirect_uri},
    "an unknown client_id": lambda s, a, app, other: {
        "client_id": str(uuid.uuid4()),
        "post_logout_redirect_uri": app.redirect_uri,
    },
    "a hint signed by another key": lambda s, a, app, other: {
        "id_token_hint": _foreign_key_token(s, a, app.app.app_id),
        "post_logout_redirect_uri": app.redirect_uri,
    },
    "an unsigned hint": lambda s, a, app, other: {
        "id_token_hint": _unsigned(s, a, app.app.app_id),
        "post_logout_redirect_uri": app.redirect_uri,
    },
    "a hint from another issuer": lambda s, a, app, other: {
        "id_token_hint": _id_token(s, a, app.app.app_id, iss="https://login.example/t/v2.0"),
        "post_logout_redirect_uri": app.redirect_uri,
    },
    "a hint for another application than client_id": lambda s, a, app, other: {
        "client_id": other.app.app_id,
        "id_token_hint": _id_token(s, a, app.app.app_id),
        "post_logout_redirect_uri": app.redirect_uri,
    },
    "a hint that is no token": lambda s, a, app, other: {
        "client_id": app.app.app_id,
        "id_token_hint": "not.a.token",
        "post_logout_redirect_uri": app.redirect_uri,
    },
}


@pytest.fixture(scope="module")
def other_app(admin: Admin) -> WebApp:
    return web_app(admin)


@pytest.mark.parametrize("case", list(OPEN_REDIRECTS))
def test_anything_else_ends_on_the_signed_out_page(
    server: Server, admin: Admin, app: WebApp, other_app: WebApp, case: str
) -> None:
    params = OPEN_REDIRECTS[case](server, admin, app, other_app)
    response = _logout(server, **params, state="st-2")
    assert response.status_code == 200 and SIGNED_OUT in response.text
    assert "location" not in response.headers


@pytest.fixture
def person_session(server: Server, person: str) -> Iterator[httpx.Client]:
    browser = Browserless(server)
    browser.sign_in(person)
    yield browser.http
    browser.close()


def test_the_portal_session_ends(server: Server, app: WebApp, person_session: httpx.Client) -> None:
    cookie = next(c for c in person_session.cookies.jar if c.name.endswith("dicomite-session"))
    assert person_session.get("/portal/", follow_redirects=False).status_code == 200
    response = person_session.get(
        f"/{server.tenant_id}/oauth2/v2.0/logout",
        params={"client_id": app.app.app_id, "post_logout_redirect_uri": app.redirect_uri},
        follow_redirects=False,
    )
    assert _redirected(response) == app.redirect_uri
    assert f'{cookie.name}=""' in response.headers["set-cookie"]  # the browser forgets it
    with server.client() as replay:  # and the server: the old cookie opens nothing
        replay.cookies.set(cookie.name, cookie.value or "", domain=cookie.domain)
        assert replay.get("/portal/", follow_redirects=False).status_code == 303


def test_a_browser_signs_out_and_returns_to_the_application(
    server: Server, admin: Admin, person: str, page: Page, pages: tuple[str, str]
) -> None:
    landing = f"{pages[0]}/signed-out"  # a real page on another origin
    registered = admin.register()
    admin.add_redirect_uri(registered.app_id, "web", landing)
    page.goto(f"{server.base_url}/portal/signin")
    page.get_by_label("Username").fill(person)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()

    query = urlencode(
        {"client_id": registered.app_id, "post_logout_redirect_uri": landing, "state": "b"}
    )
    page.goto(f"{server.authority}/oauth2/v2.0/logout?{query}")
    assert page.url == f"{landing}?state=b"
    assert not [c for c in page.context.cookies() if c["name"].endswith("dicomite-session")]
    page.goto(f"{server.base_url}/portal/")
    assert "/portal/signin" in page.url
