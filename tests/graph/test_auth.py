"""Bearer tokens and roles: what Graph accepts, what it refuses, and in which words."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest

from dicomite.bootstrap import open_context
from dicomite.graph.auth import MESSAGES, READ, WRITE, GraphAuth
from dicomite.graph.errors import Forbidden, Unauthenticated
from dicomite.identity.builtin import APPLICATION_READ_ALL, GRAPH_APP_ID
from dicomite.identity.keys import KeyRing
from dicomite.identity.published_keys import PublishedKeys
from dicomite.identity.resource_server import Reason
from dicomite.settings import Settings
from tests.fixtures.server import Server
from tests.graph.helpers import (
    DICOM_SCOPE,
    add_password,
    create_app,
    create_principal,
    graph_client,
    token,
)

DICOM = "https://dicom.healthcareapis.azure.com"


def _error(response: httpx.Response) -> dict[str, Any]:
    return dict(response.json()["error"])


def test_missing_token_is_401_with_a_challenge(anonymous: httpx.Client) -> None:
    response = anonymous.get("/applications")
    assert response.status_code == 401
    assert _error(response)["code"] == "InvalidAuthenticationToken"
    assert _error(response)["message"] == "Access token is empty."
    assert response.headers["www-authenticate"].startswith("Bearer")
    inner = _error(response)["innerError"]
    assert inner["request-id"] == response.headers["request-id"]
    assert len(inner["date"]) == 19


def test_garbage_token_is_401(server: Server) -> None:
    with graph_client(server, "not-a-jwt") as client:
        response = client.get("/applications")
    assert response.status_code == 401 and _error(response)["code"] == "InvalidAuthenticationToken"


def test_token_for_another_audience_is_401(server: Server) -> None:
    dicom_token = token(server, server.client_id, server.client_secret, DICOM_SCOPE)
    with graph_client(server, dicom_token) as client:
        response = client.get("/applications")
    assert response.status_code == 401
    assert _error(response)["message"] == "Access token validation failure. Invalid audience."


def test_client_request_id_is_echoed(graph: httpx.Client) -> None:
    response = graph.get("/organization", headers={"client-request-id": "abc-123"})
    assert response.headers["client-request-id"] == "abc-123"
    unsafe = graph.get("/organization", headers={"client-request-id": "a b\tc"})
    assert unsafe.headers["client-request-id"] == unsafe.headers["request-id"]


@pytest.fixture(scope="module")
def reader(graph: httpx.Client, server: Server) -> Iterator[httpx.Client]:
    """A client holding only Application.Read.All, granted through the API itself."""
    app = create_app(graph, prefix="reader")
    client_sp = create_principal(graph, app)
    secret = add_password(graph, app)["secretText"]
    graph_sp = graph.get(f"/servicePrincipals(appId='{GRAPH_APP_ID}')").json()
    body = {
        "principalId": client_sp["id"],
        "resourceId": graph_sp["id"],
        "appRoleId": APPLICATION_READ_ALL,
    }
    granted = graph.post(f"/servicePrincipals/{graph_sp['id']}/appRoleAssignedTo", json=body)
    assert granted.status_code == 201
    with graph_client(server, token(server, app["appId"], secret)) as client:
        yield client


def test_reader_can_read(reader: httpx.Client) -> None:
    for path in ("/applications", "/servicePrincipals", "/organization", "/auditLogs/signIns"):
        assert reader.get(path).status_code == 200, path


def test_reader_cannot_write(reader: httpx.Client, graph: httpx.Client) -> None:
    app = create_app(graph)
    attempts = [
        reader.post("/applications", json={"displayName": "nope"}),
        reader.patch(f"/applications/{app['id']}", json={"displayName": "nope"}),
        reader.delete(f"/applications/{app['id']}"),
        reader.post(f"/applications/{app['id']}/addPassword", json={}),
        reader.post("/servicePrincipals", json={"appId": app["appId"]}),
        reader.post("/oauth2PermissionGrants", json={}),
    ]
    for response in attempts:
        assert response.status_code == 403, response.request.url
        error = _error(response)
        assert error["code"] == "Authorization_RequestDenied"
        assert error["message"] == "Insufficient privileges to complete the operation."
        assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}


def test_caller_without_graph_roles_gets_403(graph: httpx.Client, server: Server) -> None:
    app = create_app(graph, prefix="no-roles")
    create_principal(graph, app)
    secret = add_password(graph, app)["secretText"]
    with graph_client(server, token(server, app["appId"], secret)) as client:
        for response in (client.get("/applications"), client.post("/applications", json={})):
            assert response.status_code == 403
            assert _error(response)["code"] == "Authorization_RequestDenied"


# --- the validator itself, with tokens signed by the server's own key --------------------------


@pytest.fixture(scope="module")
def keys(server: Server) -> Iterator[KeyRing]:
    context = open_context(Settings(data_dir=server.data_dir))
    yield KeyRing(context.store, context.protection)
    context.store.dispose()


@pytest.fixture
def auth(keys: KeyRing, server: Server) -> Iterator[GraphAuth]:
    context = open_context(Settings(data_dir=server.data_dir))
    yield GraphAuth(PublishedKeys.of_store(context.store), server.base_url, server.tenant_id)
    context.store.dispose()


def _token(keys: KeyRing, server: Server, **overrides: Any) -> str:
    now = int(time.time())
    key = keys.signing_key(datetime.now(UTC))
    body = {
        "aud": "https://graph.microsoft.com",
        "iss": f"{server.base_url}/{server.tenant_id}/",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "appid": str(uuid.uuid4()),
        "oid": str(uuid.uuid4()),
        "roles": ["Application.Read.All"],
    } | overrides
    return jwt.encode(body, key.private_key, algorithm="RS256", headers={"kid": key.kid})


def test_valid_v1_and_v2_tokens(auth: GraphAuth, keys: KeyRing, server: Server) -> None:
    now = datetime.now(UTC)
    v1 = f"Bearer {_token(keys, server)}"
    assert auth.authorize(v1, now, READ).roles == {"Application.Read.All"}
    v2 = _token(keys, server, aud=GRAPH_APP_ID, iss=f"{server.base_url}/{server.tenant_id}/v2.0")
    assert auth.authorize(f"bearer {v2}", now, READ).roles == {"Application.Read.All"}
    with pytest.raises(Forbidden, match="Insufficient privileges"):
        auth.authorize(v1, now, WRITE)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # times are offsets from the moment the test runs (see below), not from collection
        ({"exp": -400}, "Access token has expired or is not yet valid."),
        ({"nbf": +400}, "Access token has expired or is not yet valid."),
        (
            {"iss": "https://sts.windows.net/other/"},
            "Access token validation failure. Invalid issuer.",
        ),
        ({"aud": DICOM}, "Access token validation failure. Invalid audience."),
        ({"exp": "soon"}, "Access token validation failure."),
    ],
)
def test_refused_claims(
    auth: GraphAuth,
    keys: KeyRing,
    server: Server,
    overrides: dict[str, Any],
    message: str,
) -> None:
    now = int(time.time())
    claims = {k: now + v if isinstance(v, int) else v for k, v in overrides.items()}
    with pytest.raises(Unauthenticated, match=f"^{re.escape(message)}$"):
        auth.authorize(f"Bearer {_token(keys, server, **claims)}", datetime.now(UTC), READ)


def test_leeway_of_five_minutes(auth: GraphAuth, keys: KeyRing, server: Server) -> None:
    almost = _token(keys, server, exp=int(time.time()) - 200)
    assert auth.authorize(f"Bearer {almost}", datetime.now(UTC), READ)


def test_foreign_keys_and_algorithms(auth: GraphAuth, server: Server) -> None:
    now = datetime.now(UTC)
    body = {
        "aud": "https://graph.microsoft.com",
        "iss": f"{server.base_url}/{server.tenant_id}/",
        "exp": int(time.time()) + 600,
    }
    hs256 = jwt.encode(body, "a-shared-secret-of-enough-length-32b", algorithm="HS256")
    with pytest.raises(Unauthenticated, match="algorithm"):
        auth.authorize(f"Bearer {hs256}", now, READ)
    unsigned = jwt.encode(body, "", algorithm="none")
    with pytest.raises(Unauthenticated):
        auth.authorize(f"Bearer {unsigned}", now, READ)
    with pytest.raises(Unauthenticated, match="empty"):
        auth.authorize("Bearer ", now, READ)
    with pytest.raises(Unauthenticated):
        auth.authorize("Basic abc", now, READ)


def test_unknown_kid(auth: GraphAuth, keys: KeyRing, server: Server) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = {
        "aud": "https://graph.microsoft.com",
        "iss": f"{server.base_url}/{server.tenant_id}/",
        "exp": int(time.time()) + 600,
    }
    kid = keys.signing_key(datetime.now(UTC)).kid
    forged = jwt.encode(body, other, algorithm="RS256", headers={"kid": kid})
    with pytest.raises(Unauthenticated, match="signature"):
        auth.authorize(f"Bearer {forged}", datetime.now(UTC), READ)
    unknown = jwt.encode(body, other, algorithm="RS256", headers={"kid": "nope"})
    with pytest.raises(Unauthenticated, match="signature"):
        auth.authorize(f"Bearer {unknown}", datetime.now(UTC), READ)


def test_every_refusal_has_graph_words() -> None:
    assert set(MESSAGES) == set(Reason)
