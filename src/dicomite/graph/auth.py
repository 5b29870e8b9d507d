"""Bearer tokens for the management API: validated in-process against our own signing keys.

Only what Microsoft Graph accepts is accepted: an RS256 token signed by a key published now
(``identity.published_keys``: a new key is honoured on its first token), issued
by this tenant (v1 or v2 issuer), for Graph's audience (its URI or its appId). ``exp``/``nbf``
are checked with five minutes of leeway against :func:`dicomite.clock.utcnow`. Permissions are
the application roles in the ``roles`` claim, as for app-only calls to Graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from dicomite.graph.errors import Forbidden, Unauthenticated
from dicomite.identity.builtin import GRAPH_APP_ID, GRAPH_RESOURCE_URI
from dicomite.identity.published_keys import PublishedKeys
from dicomite.identity.tokens import issuer

LEEWAY = timedelta(minutes=5)
AUDIENCES = (GRAPH_RESOURCE_URI, GRAPH_APP_ID)

READ_ALL = "Application.Read.All"
READWRITE_ALL = "Application.ReadWrite.All"
ASSIGN_ALL = "AppRoleAssignment.ReadWrite.All"

# Which roles allow what (Graph's permission tables for each API, application permissions).
READ = frozenset({READ_ALL, READWRITE_ALL})
WRITE = frozenset({READWRITE_ALL})
READ_GRANTS = frozenset({READ_ALL, READWRITE_ALL, ASSIGN_ALL})
WRITE_GRANTS = frozenset({ASSIGN_ALL})
# The sign-in log needs AuditLog.Read.All in Graph; here any management role may read it.
READ_AUDIT = frozenset({READ_ALL, READWRITE_ALL, ASSIGN_ALL})

_EXPIRED = "Access token has expired or is not yet valid."
_INVALID = "Access token validation failure."


@dataclass(frozen=True)
class Caller:
    app_id: str
    object_id: str
    roles: frozenset[str]

    def require(self, allowed: frozenset[str]) -> None:
        if not self.roles & allowed:
            raise Forbidden()


class BearerValidator:
    def __init__(self, keys: PublishedKeys, public_url: str, tenant_id: str) -> None:
        self._keys = keys
        self._issuers = [issuer(public_url, tenant_id, 1), issuer(public_url, tenant_id, 2)]

    def authenticate(self, authorization: str | None, now: datetime) -> Caller:
        claims = self.validate(_bearer(authorization), now)
        roles = claims.get("roles")
        return Caller(
            app_id=str(claims.get("appid") or claims.get("azp") or ""),
            object_id=str(claims.get("oid") or ""),
            roles=frozenset(r for r in roles if isinstance(r, str))
            if isinstance(roles, list)
            else frozenset(),
        )

    def validate(self, token: str, now: datetime) -> dict[str, Any]:
        key = self._public_key(token, now)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=list(AUDIENCES),
                issuer=self._issuers,
                options={"require": ["exp", "iss", "aud"], "verify_exp": False,
                         "verify_nbf": False, "verify_iat": False},
            )  # fmt: skip
        except jwt.InvalidAudienceError:
            raise Unauthenticated(f"{_INVALID} Invalid audience.") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated(f"{_INVALID} Invalid issuer.") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated(f"{_INVALID} Invalid signature.") from None
        except jwt.PyJWTError:
            raise Unauthenticated(_INVALID) from None
        _check_lifetime(claims, now)
        return claims

    def _public_key(self, token: str, now: datetime) -> Any:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("CompactToken parsing failed with error code: 80049217") from None
        if header.get("alg") != "RS256":
            raise Unauthenticated(f"{_INVALID} Invalid signing algorithm.")
        kid = header.get("kid")
        key = self._keys.public_key(kid, now) if isinstance(kid, str) else None
        if key is None:
            raise Unauthenticated(f"{_INVALID} Invalid signature.")
        return key


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if not authorization or not token.strip():
        raise Unauthenticated("Access token is empty.")
    if scheme.lower() != "bearer":
        raise Unauthenticated(_INVALID)
    return token.strip()


def _check_lifetime(claims: dict[str, Any], now: datetime) -> None:
    exp, nbf = claims.get("exp"), claims.get("nbf", 0)
    if not isinstance(exp, int | float) or not isinstance(nbf, int | float):
        raise Unauthenticated(_INVALID)
    moment = now.timestamp()
    if moment > exp + LEEWAY.total_seconds() or moment < nbf - LEEWAY.total_seconds():
        raise Unauthenticated(_EXPIRED)
