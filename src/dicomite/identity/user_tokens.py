"""Claims of the tokens issued to a person through an application: the delegated access token
(``scp``) and the OpenID Connect ID token (OIDC Core §2), shaped as Entra ID's.

The access token's format follows the resource's ``requestedAccessTokenVersion`` as app-only
tokens do; the ID token is always v2.0 (this is the v2.0 endpoint's ID token, and the v1
endpoint's differs only in claims no client here reads).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dicomite.identity.tokens import BACKDATE, issuer
from dicomite.ids import unique_token_id

ID_TOKEN_LIFETIME = timedelta(hours=1)


@dataclass(frozen=True)
class Person:
    id: str  # the user's object id: the oid claim
    user_principal_name: str
    display_name: str


@dataclass(frozen=True)
class Audience:
    """The resource an access token is for."""

    app_id: str
    uri: str  # as the client named it (identifier URI or appId): v1's aud
    token_version: int


@dataclass(frozen=True)
class UserGrant:
    """A person's delegated grant to a client application for one resource."""

    tenant_id: str
    client_app_id: str
    person: Person
    subject: str  # pairwise per client application (KeyProtection.pairwise_subject)
    audience: Audience
    scopes: tuple[str, ...]  # the scp claim's values
    roles: tuple[str, ...]  # the person's roles on the resource
    client_acr: str  # "0" public client, "1" secret, "2" certificate
    authenticated_at: datetime


def access_claims(
    grant: UserGrant, public_url: str, now: datetime, lifetime: timedelta
) -> dict[str, Any]:
    iat = int((now - BACKDATE).timestamp())
    version = grant.audience.token_version
    body: dict[str, Any] = {
        "iat": iat,
        "nbf": iat,
        "exp": int((now + lifetime).timestamp()),
        "iss": issuer(public_url, grant.tenant_id, version),
    }
    person = grant.person
    if version == 2:
        body |= {
            "aud": grant.audience.app_id,
            "azp": grant.client_app_id,
            "azpacr": grant.client_acr,
            "preferred_username": person.user_principal_name,
        }
    else:
        body |= {
            "aud": grant.audience.uri,
            "appid": grant.client_app_id,
            "appidacr": grant.client_acr,
            "amr": ["pwd"],
            "unique_name": person.user_principal_name,
            "upn": person.user_principal_name,
        }
    body |= {
        "name": person.display_name,
        "oid": person.id,
        "scp": " ".join(grant.scopes),
        "sub": grant.subject,
        "tid": grant.tenant_id,
        "uti": unique_token_id(),
        "ver": "2.0" if version == 2 else "1.0",
    }
    if grant.roles:
        body["roles"] = list(grant.roles)
    return body


def id_token_claims(
    grant: UserGrant,
    public_url: str,
    now: datetime,
    *,
    nonce: str | None,
    hashes: dict[str, str],
) -> dict[str, Any]:
    """``hashes``: ``at_hash`` / ``c_hash`` (OIDC Core §3.3.2.11) where the response carries
    an access token or a code beside the ID token."""
    iat = int((now - BACKDATE).timestamp())
    body: dict[str, Any] = {
        "aud": grant.client_app_id,
        "iss": issuer(public_url, grant.tenant_id, 2),
        "iat": iat,
        "nbf": iat,
        "exp": int((now + ID_TOKEN_LIFETIME).timestamp()),
        "auth_time": int(grant.authenticated_at.timestamp()),
        "name": grant.person.display_name,
        "oid": grant.person.id,
        "preferred_username": grant.person.user_principal_name,
        "sub": grant.subject,
        "tid": grant.tenant_id,
        "uti": unique_token_id(),
        "ver": "2.0",
        **hashes,
    }
    if nonce is not None:
        body["nonce"] = nonce
    return body


def half_hash(value: str) -> str:
    """The left half of the value's SHA-256, base64url (OIDC Core §3.1.3.6, for RS256)."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
