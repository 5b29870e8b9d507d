"""A person's side of the sign-in flows, over the wire without a browser: a cookie-keeping
HTTP client that signs in at the portal and follows the authorization endpoint by hand."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from tests.fixtures.directory import DICOM, PASSWORD, Admin, RegisteredApp
from tests.fixtures.server import Server, free_port

IMPERSONATION = f"{DICOM}/user_impersonation"
STATE = "st@te with spaces & symbols"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
HIDDEN_FIELD = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
FORM = {"content-type": "application/x-www-form-urlencoded"}


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        return cls.of(secrets.token_urlsafe(48))

    @classmethod
    def of(cls, verifier: str) -> Pkce:
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())

    def params(self) -> dict[str, str]:
        return {"code_challenge": self.challenge, "code_challenge_method": "S256"}


class Browserless:
    """One person's browser, reduced to cookies and redirects read by hand."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = server.client()

    def close(self) -> None:
        self.http.close()

    def sign_in(self, name: str, password: str = PASSWORD) -> None:
        form = self.http.get("/portal/signin")
        token = CSRF_FIELD.search(form.text)
        assert token, form.text
        fields = {"csrf_token": token.group(1), "username": name, "password": password}
        response = self.http.post("/portal/signin", data={**fields, "next": ""})
        assert response.status_code == 303, response.text

    def authorize(self, **params: str) -> httpx.Response:
        path = f"/{self.server.tenant_id}/oauth2/v2.0/authorize"
        return self.http.get(f"{path}?{urlencode(params)}")

    def consent(self, page: httpx.Response, decision: str = "accept") -> httpx.Response:
        """Press Accept (or Cancel) on a consent page: post its form as the page holds it."""
        form = page.text[page.text.index('<section class="signin-card consent">') :]
        action = re.search(r'<form method="post" action="([^"]+)"', form)
        assert action, page.text
        fields = [(unescape(k), unescape(v)) for k, v in HIDDEN_FIELD.findall(form)]
        body = urlencode([*fields, ("decision", decision)])
        return self.http.post(action[1], content=body, headers=FORM)

    def csrf_token(self) -> str:
        """The session's token, as every portal page carries it."""
        token = CSRF_FIELD.search(self.http.get("/portal/").text)
        assert token
        return token.group(1)


def code_request(app_id: str, redirect_uri: str, pkce: Pkce | None, **extra: str) -> dict[str, str]:
    params = {
        "client_id": app_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": f"openid offline_access {IMPERSONATION}",
        "state": STATE,
        "nonce": "n-0S6_WzA2Mj",
        **extra,
    }
    if pkce is not None:
        params |= {"code_challenge": pkce.challenge, "code_challenge_method": "S256"}
    return params


def answer(response: httpx.Response, redirect_uri: str) -> dict[str, str]:
    """The parameters delivered to the redirect URI (query, fragment or form_post)."""
    if response.status_code == 200 and 'id="form-post"' in response.text:
        assert f'action="{redirect_uri}"' in response.text, response.text
        return {unescape(k): unescape(v) for k, v in HIDDEN_FIELD.findall(response.text)}
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(redirect_uri), location
    parts = urlsplit(location)
    return dict(parse_qsl(parts.fragment or parts.query))


def shown(response: httpx.Response, code: int) -> None:
    """An error the endpoint shows the person, as it cannot trust the redirect URI yet."""
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert f"AADSTS{code}:" in response.text


def redeem(server: Server, **form: str) -> httpx.Response:
    with server.client() as client:
        return client.post(
            f"/{server.tenant_id}/oauth2/v2.0/token",
            data={"grant_type": "authorization_code", **form},
        )


def token_form(app_id: str, code: str, redirect_uri: str, **extra: Any) -> dict[str, str]:
    return {"client_id": app_id, "code": code, "redirect_uri": redirect_uri, **extra}


@dataclass(frozen=True)
class WebApp:
    app: RegisteredApp
    redirect_uri: str


def web_app(admin: Admin) -> WebApp:
    """A new confidential web application: a secret and a web redirect URI of its own."""
    app = admin.register()
    redirect_uri = f"http://localhost:{free_port()}/signin-oidc"
    admin.add_redirect_uri(app.app_id, "web", redirect_uri)
    return WebApp(app, redirect_uri)


def signed_in_tokens(server: Server, app: WebApp, person: str, scope: str) -> dict[str, Any]:
    """The token response when ``person`` signs in to ``app`` for ``scope`` (nothing left to
    consent to), over the wire: sign-in, code, redemption with the app's secret."""
    browser = Browserless(server)
    try:
        browser.sign_in(person)
        request = code_request(app.app.app_id, app.redirect_uri, None, scope=scope)
        code = answer(browser.authorize(**request), app.redirect_uri)["code"]
    finally:
        browser.close()
    secret = app.app.secret or ""
    response = redeem(
        server, **token_form(app.app.app_id, code, app.redirect_uri, client_secret=secret)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def person_token(server: Server, admin: Admin, person: str, scope: str = IMPERSONATION) -> str:
    """A delegated access token of ``person`` through a new web app consented for everyone
    to the DICOM service's user_impersonation (sign-in, code, redemption over the wire)."""
    app = web_app(admin)
    admin.grant_delegated(app.app.app_id, "user_impersonation", "Dicom.Read", "Dicom.ReadWrite")
    return str(signed_in_tokens(server, app, person, scope)["access_token"])
