"""Small helpers shared by the Graph API tests."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fixtures.certificates import self_signed
from tests.fixtures.server import Server

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
DICOM_SCOPE = "https://dicom.healthcareapis.azure.com/.default"
T = TypeVar("T")


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:10]}"


def create_app(graph: httpx.Client, prefix: str = "graph-test", **fields: Any) -> dict[str, Any]:
    response = graph.post("/applications", json={"displayName": unique(prefix), **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


def create_principal(graph: httpx.Client, app: dict[str, Any]) -> dict[str, Any]:
    response = graph.post("/servicePrincipals", json={"appId": app["appId"]})
    assert response.status_code == 201, response.text
    return dict(response.json())


def add_password(graph: httpx.Client, app: dict[str, Any]) -> dict[str, Any]:
    response = graph.post(f"/applications/{app['id']}/addPassword", json={})
    assert response.status_code == 200, response.text
    return dict(response.json())


def request_token(server: Server, client_id: str, secret: str, scope: str) -> httpx.Response:
    with server.client() as client:
        return client.post(
            server.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
                "scope": scope,
            },
        )


def token(server: Server, client_id: str, secret: str, scope: str = GRAPH_SCOPE) -> str:
    """A token, retried briefly: a new secret or grant is seen by the token path at once, but
    the test should not depend on it."""
    response = eventually(lambda: _ok(request_token(server, client_id, secret, scope)))
    return str(response.json()["access_token"])


def _ok(response: httpx.Response) -> httpx.Response | None:
    return response if response.status_code == 200 else None


def claims(access_token: str) -> dict[str, Any]:
    payload = access_token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def eventually(probe: Callable[[], T | None], timeout: float = 5.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def graph_client(server: Server, access_token: str | None) -> httpx.Client:
    client = server.client()
    client.base_url = httpx.URL(f"{server.base_url}/graph/v1.0/")
    if access_token:
        client.headers["Authorization"] = f"Bearer {access_token}"
    return client


def certificate() -> tuple[rsa.RSAPrivateKey, bytes]:
    """A self-signed RSA certificate (DER) and its key."""
    key, cert = self_signed(30, start=datetime.now(UTC) - timedelta(minutes=5))
    return key, cert.public_bytes(serialization.Encoding.DER)
