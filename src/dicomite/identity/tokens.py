"""Claims of app-only access tokens (v1 and v2), their lifetimes and signing.

The resource's ``api.requestedAccessTokenVersion`` (null or 1 → v1, 2 → v2) picks the format,
not the endpoint the client called — as Entra ID does.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256

from dicomite.identity.keys import LoadedKey, b64url
from dicomite.ids import unique_token_id

# Entra ID backdates nbf/iat by five minutes to absorb clock skew between servers.
BACKDATE = timedelta(minutes=5)


@dataclass(frozen=True)
class Grant:
    """Who gets a token for what: the outcome of client authentication and consent lookup."""

    tenant_id: str
    client_app_id: str
    client_sp_id: str
    resource_app_id: str
    resource_uri: str  # the identifier the client asked for (a URI, or the appId)
    token_version: int
    roles: tuple[str, ...]
    credential_type: str  # "secret", "certificate" or "federated"


def issuer(public_url: str, tenant_id: str, version: int) -> str:
    return f"{public_url}/{tenant_id}/v2.0" if version == 2 else f"{public_url}/{tenant_id}/"


def claims(grant: Grant, public_url: str, now: datetime, lifetime: timedelta) -> dict[str, Any]:
    iat = int((now - BACKDATE).timestamp())
    exp = int((now + lifetime).timestamp())
    acr = "1" if grant.credential_type == "secret" else "2"  # a key proves the client: "2"
    iss = issuer(public_url, grant.tenant_id, grant.token_version)
    body: dict[str, Any] = {"iat": iat, "nbf": iat, "exp": exp, "iss": iss}
    if grant.token_version == 2:
        body |= {"aud": grant.resource_app_id, "azp": grant.client_app_id, "azpacr": acr}
    else:
        body |= {"aud": grant.resource_uri, "appid": grant.client_app_id, "appidacr": acr}
    body |= {
        "idp": issuer(public_url, grant.tenant_id, 1),
        "idtyp": "app",
        "oid": grant.client_sp_id,
        "sub": grant.client_sp_id,
        "tid": grant.tenant_id,
        "uti": unique_token_id(),
        "ver": "2.0" if grant.token_version == 2 else "1.0",
    }
    if grant.roles:
        body["roles"] = list(grant.roles)
    return body


def sign(payload: dict[str, Any], key: LoadedKey, version: int) -> str:
    """JWS compact serialisation (RFC 7515 §7.1) with RS256 (RFC 7518 §3.3).

    Written out rather than through a JOSE library: the token path signs with a key object it
    already holds, and a library's per-call key preparation cost more than the encoding.
    """
    signing_input = f"{_header_segment(key.kid, version)}.{_b64json(payload)}".encode()
    signature = key.private_key.sign(signing_input, PKCS1v15(), SHA256())
    return f"{signing_input.decode()}.{b64url(signature)}"


@functools.lru_cache(maxsize=64)
def _header_segment(kid: str, version: int) -> str:
    """The encoded JOSE header, the same for every token of one key and version."""
    header: dict[str, Any] = {"typ": "JWT", "alg": "RS256", "kid": kid}
    if version == 1:
        header["x5t"] = kid
    return _b64json(header)


def _b64json(value: dict[str, Any]) -> str:
    # orjson writes the compact form (no spaces) and encodes several times faster than json.
    return b64url(orjson.dumps(value))
