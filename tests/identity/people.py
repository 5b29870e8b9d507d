"""A person signing in through an application over the wire, without a browser: a portal
session (``tests.portal.wire``) drives the authorization endpoint, and the application redeems
the code at the token endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from tests.fixtures.directory import PASSWORD, Admin, RegisteredApp
from tests.fixtures.server import Server, free_port
from tests.portal.wire import PortalSession


@dataclass(frozen=True)
class WebApp:
    app: RegisteredApp
    redirect_uri: str


def web_app(admin: Admin) -> WebApp:
    """A confidential web application (a secret, one web redirect URI, no permissions)."""
    app = admin.register()
    redirect_uri = f"http://localhost:{free_port()}/signed-in"
    admin.add_redirect_uri(app.app_id, "web", redirect_uri)
    return WebApp(app, redirect_uri)


def signed_in(server: Server, name: str) -> PortalSession:
    return PortalSession(server, name, PASSWORD)


def authorize(
    person: PortalSession, server: Server, app: WebApp, scope: str, **extra: str
) -> httpx.Response:
    """The authorization endpoint's answer to the signed-in person (not followed)."""
    params = {
        "client_id": app.app.app_id,
        "response_type": "code",
        "redirect_uri": app.redirect_uri,
        "scope": scope,
        **extra,
    }
    path = f"/{server.tenant_id}/oauth2/v2.0/authorize"
    return person.client.get(path, params=params, follow_redirects=False)


def answer(response: httpx.Response) -> dict[str, str]:
    """What a redirect brings to the redirect URI (its query)."""
    assert response.status_code == 302, response.text
    return dict(parse_qsl(urlsplit(response.headers["location"]).query))


def tokens(server: Server, admin: Admin, app: WebApp, name: str, scope: str) -> dict[str, Any]:
    """The token response for ``name`` signing in to ``app`` (consent already given)."""
    person = signed_in(server, name)
    try:
        code = answer(authorize(person, server, app, scope))["code"]
    finally:
        person.close()
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": app.redirect_uri,
        "client_id": app.app.app_id,
        "client_secret": app.app.secret or "",
        "scope": scope,
    }
    with server.client() as client:
        response = client.post(server.token_url, data=form)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
