"""Helpers for talking to the token endpoint over the wire."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.fixtures.server import Server

DESCRIPTION = re.compile(
    r"^AADSTS(?P<code>\d+): (?P<message>.+)\r\nTrace ID: [0-9a-f-]{36}\r\n"
    r"Correlation ID: [0-9a-f-]{36}\r\nTimestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$",
    re.DOTALL,
)


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
