"""Helpers for talking to the token and authorization endpoints over the wire."""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from tests.fixtures.directory import PASSWORD
from tests.fixtures.server import Server

DESCRIPTION = re.compile(
    r"^AADSTS(?P<code>\d+): (?P<message>.+)\r\nTrace ID: [0-9a-f-]{36}\r\n"
    r"Correlation ID: [0-9a-f-]{36}\r\nTimestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$",
    re.DOTALL,
)
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
HIDDEN_FIELD = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
FORM = {"content-type": "application/x-www-form-urlencoded"}


def post_token(
    server: Server,
    data: dict[str, str] | None = None,
    *,
    version: int = 2,
    tenant: str | None = None,
    **kwargs: Any,
) -> httpx.Response:
    path = "oauth2/v2.0/token" if version == 2 else "oauth2/token"
    with server.client() as client:
        return client.post(f"/{tenant or server.tenant_id}/{path}", data=data, **kwargs)


def assert_aadsts(response: httpx.Response, status: int, error: str, code: int) -> dict[str, Any]:
    """The response is Entra ID's error body for AADSTS ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store, no-cache"
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    match = DESCRIPTION.match(body["error_description"])
    assert match, body["error_description"]
    assert int(match["code"]) == code
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", body["timestamp"])
    assert body["trace_id"] in body["error_description"]
    assert body["correlation_id"] in body["error_description"]
    return body


class Browser:
    """A person's browser at the authorization endpoint of a running server: it keeps the
    session cookie and follows no redirect, so each answer can be read where it is sent."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.client = server.client()

    def sign_in(self, name: str, password: str = PASSWORD) -> None:
        form = self.client.get("/portal/signin")
        token = CSRF_FIELD.search(form.text)
        assert token, form.text
        fields = {"csrf_token": token[1], "username": name, "password": password, "next": ""}
        signed_in = self.client.post("/portal/signin", data=fields)
        assert signed_in.status_code == 303, signed_in.text

    def authorize(self, params: dict[str, str], *, tenant: str | None = None) -> httpx.Response:
        path = f"/{tenant or self.server.tenant_id}/oauth2/v2.0/authorize"
        return self.client.get(path, params=params)

    def consent(self, page: httpx.Response, decision: str = "accept") -> httpx.Response:
        """Press Accept (or Cancel) on a consent page: post its form as the page holds it."""
        form = page.text[page.text.index('<section class="signin-card consent">') :]
        action = re.search(r'<form method="post" action="([^"]+)"', form)
        assert action, page.text
        fields = [(unescape(k), unescape(v)) for k, v in HIDDEN_FIELD.findall(form)]
        body = urlencode([*fields, ("decision", decision)])
        return self.client.post(action[1], content=body, headers=FORM)

    def csrf_token(self) -> str:
        token = CSRF_FIELD.search(self.client.get("/portal/").text)
        assert token
        return token[1]

    def close(self) -> None:
        self.client.close()


def answer(response: httpx.Response) -> dict[str, str]:
    """What reached the redirect URI: a redirect's query or fragment, or a form_post page."""
    if response.status_code == 302:
        parts = urlsplit(response.headers["location"])
        return dict(parse_qsl(parts.query or parts.fragment))
    assert response.status_code == 200 and 'id="form-post"' in response.text, response.text
    return {unescape(k): unescape(v) for k, v in HIDDEN_FIELD.findall(response.text)}


def error_page(response: httpx.Response, code: int) -> None:
    """An error the endpoint shows to the person instead of sending it to the client."""
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert f"AADSTS{code}:" in response.text
