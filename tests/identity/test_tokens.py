"""Access tokens verify with PyJWT against the published JWKS and carry CONTRACT's claims."""

from __future__ import annotations

import uuid
from typing import Any

import jwt
import pytest

from tests.fixtures.directory import DICOM, DICOM_SCOPE, Admin, RegisteredApp
from tests.fixtures.server import Server
from tests.identity.wire import post_token

V1_CLAIMS = {
    "aud",
    "iss",
    "iat",
    "nbf",
    "exp",
    "appid",
    "appidacr",
    "idp",
    "idtyp",
    "oid",
    "sub",
    "tid",
    "uti",
    "ver",
}
V2_CLAIMS = (V1_CLAIMS - {"appid", "appidacr"}) | {"azp", "azpacr"}


def jwks(server: Server, version: int = 2) -> jwt.PyJWKSet:
    with server.client() as client:
        config = client.get(
            f"/{server.tenant_id}/{'v2.0/' if version == 2 else ''}.well-known/openid-configuration"
        ).json()
        return jwt.PyJWKSet.from_dict(client.get(config["jwks_uri"]).json())


def verify(server: Server, token: str, audience: str) -> dict[str, Any]:
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks(server).keys if k.key_id == kid)
    claims: dict[str, Any] = jwt.decode(token, key, algorithms=["RS256"], audience=audience)
    return claims


def token_for(server: Server, app: RegisteredApp, scope: str, version: int = 2) -> dict[str, Any]:
    assert app.secret is not None
    data = {
        "grant_type": "client_credentials",
        "client_id": app.app_id,
        "client_secret": app.secret,
    }
    data |= {"scope": scope} if version == 2 else {"resource": scope}
    response = post_token(server, data, version=version)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store, no-cache"
    assert response.headers["pragma"] == "no-cache"
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def reader(admin: Admin) -> RegisteredApp:
    return admin.register(roles=("Dicom.Read",))


def test_v2_endpoint_response_has_numbers(server: Server, reader: RegisteredApp) -> None:
    body = token_for(server, reader, DICOM_SCOPE)
    assert list(body) == ["token_type", "expires_in", "ext_expires_in", "access_token"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599 and body["ext_expires_in"] == 3599


def test_v1_endpoint_response_has_strings(server: Server, reader: RegisteredApp) -> None:
    body = token_for(server, reader, DICOM, version=1)
    for name in ("expires_in", "ext_expires_in", "expires_on", "not_before"):
        assert isinstance(body[name], str) and body[name].isdigit(), name
    assert body["resource"] == DICOM
    assert int(body["expires_on"]) - int(body["not_before"]) > 3599


def test_v1_claims_for_the_dicom_resource(server: Server, reader: RegisteredApp) -> None:
    token = token_for(server, reader, DICOM_SCOPE)["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "JWT" and header["alg"] == "RS256"
    assert header["x5t"] == header["kid"]
    claims = verify(server, token, DICOM)
    assert set(claims) >= V1_CLAIMS
    issuer = f"{server.base_url}/{server.tenant_id}/"
    assert claims["iss"] == claims["idp"] == issuer
    assert claims["appid"] == reader.app_id and claims["appidacr"] == "1"
    assert claims["tid"] == server.tenant_id and claims["ver"] == "1.0"
    assert claims["idtyp"] == "app" and claims["oid"] == claims["sub"]
    assert claims["roles"] == ["Dicom.Read"]
    assert claims["exp"] - claims["iat"] >= 3599


def test_token_by_app_id_has_app_id_audience(server: Server, reader: RegisteredApp) -> None:
    from dicomite.identity.builtin import DICOM_APP_ID

    token = token_for(server, reader, f"{DICOM_APP_ID}/.default")["access_token"]
    assert verify(server, token, DICOM_APP_ID)["aud"] == DICOM_APP_ID


def test_v2_claims_when_resource_asks_for_v2(server: Server, admin: Admin) -> None:
    api = admin.register(secret=False)
    uri = f"api://{server.tenant_id}/things-{uuid.uuid4().hex}"
    admin.expose_api(api.app_id, uri, version=2, roles=["Things.Read"])
    client = admin.register(roles=("Things.Read",), api=uri)
    token = token_for(server, client, uri, version=1)["access_token"]
    claims = verify(server, token, api.app_id)
    assert set(claims) >= V2_CLAIMS
    assert claims["iss"] == f"{server.base_url}/{server.tenant_id}/v2.0"
    assert claims["aud"] == api.app_id and claims["ver"] == "2.0"
    assert claims["azp"] == client.app_id and claims["azpacr"] == "1"
    assert claims["roles"] == ["Things.Read"]
    assert "x5t" not in jwt.get_unverified_header(token)


def test_discovery_documents(server: Server) -> None:
    with server.client() as client:
        v2 = client.get(f"/{server.tenant_id}/v2.0/.well-known/openid-configuration").json()
        v1 = client.get(f"/{server.tenant_id}/.well-known/openid-configuration").json()
        by_domain = client.get("/dicomite.localhost/v2.0/.well-known/openid-configuration")
    base = f"{server.base_url}/{server.tenant_id}"
    assert v2["issuer"] == f"{base}/v2.0" and v1["issuer"] == f"{base}/"
    assert v2["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert v1["token_endpoint"] == f"{base}/oauth2/token"
    assert v2["jwks_uri"] == f"{base}/discovery/v2.0/keys"
    assert "private_key_jwt" in v2["token_endpoint_auth_methods_supported"]
    assert by_domain.json()["issuer"] == v2["issuer"]


def test_jwks_publishes_public_keys_only(server: Server) -> None:
    with server.client() as client:
        keys = client.get(f"/{server.tenant_id}/discovery/v2.0/keys").json()["keys"]
        v1_keys = client.get(f"/{server.tenant_id}/discovery/keys").json()["keys"]
    for key in keys:
        assert {"kty", "use", "kid", "x5t", "n", "e", "x5c", "issuer"} <= set(key)
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
        assert key["issuer"] == f"{server.base_url}/{server.tenant_id}/v2.0"
    assert all("issuer" not in key for key in v1_keys)


def test_granted_roles_only(server: Server, admin: Admin) -> None:
    asked_not_granted = admin.register(roles=("Dicom.ReadWrite",), grant=False)
    claims = jwt.decode(
        token_for(server, asked_not_granted, DICOM_SCOPE)["access_token"],
        options={"verify_signature": False},
    )
    assert "roles" not in claims
