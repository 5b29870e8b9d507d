"""Resource-server side of the DICOM service: bearer tokens and the actions their roles allow.

A token is accepted when (RFC 6750, RFC 7519, as Entra ID resource servers check them):
- it comes in the ``Authorization: Bearer`` header (never a query parameter or form field);
- it is RS256, signed by a key the tenant publishes now (``identity.published_keys``: a new key
  is honoured on its first token, a retired one refused within a minute);
- ``iss`` is the tenant's v1 or v2 issuer and ``aud`` the DICOM resource URI or its appId;
- ``exp`` and ``nbf`` hold, with a small leeway.
Roles map to actions: ``Dicom.Read`` reads, searches and reads the change feed;
``Dicom.ReadWrite`` also writes and deletes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from dicomite.dicom.errors import Forbidden, Unauthenticated
from dicomite.identity.builtin import DICOM_APP_ID
from dicomite.identity.published_keys import PublishedKeys
from dicomite.identity.tokens import issuer

LEEWAY = timedelta(minutes=5)
VERIFIED_TOKENS = 1024  # claims of tokens whose signature and claims were checked


class Action(enum.Enum):
    READ = "read"
    SEARCH = "search"
    CHANGEFEED = "changefeed"
    WRITE = "write"
    DELETE = "delete"


ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    "Dicom.Read": frozenset({Action.READ, Action.SEARCH, Action.CHANGEFEED}),
    "Dicom.ReadWrite": frozenset(Action),
}


@dataclass(frozen=True)
class Caller:
    app_id: str
    roles: frozenset[str]

    @property
    def actions(self) -> frozenset[Action]:
        return frozenset().union(*(ROLE_ACTIONS.get(role, frozenset()) for role in self.roles))

    def require(self, action: Action) -> None:
        if action not in self.actions:
            raise Forbidden(f"The caller is not authorized to perform the '{action.value}' action.")


class DicomAuthenticator:
    def __init__(
        self, keys: PublishedKeys, public_url: str, tenant_id: str, resource_uri: str
    ) -> None:
        self._keys = keys
        self._issuers = [issuer(public_url, tenant_id, 1), issuer(public_url, tenant_id, 2)]
        self._audiences = [resource_uri, DICOM_APP_ID]
        # RFC 6750 §3; Azure's DICOM service also names the authority and the resource.
        self._challenge = (
            f'Bearer realm="{public_url}/dicom", authorization_uri="{public_url}/{tenant_id}", '
            f'resource_id="{resource_uri}"'
        )
        # A client sends one token for up to an hour: its signature, issuer and audience are
        # checked once; its lifetime and that its key is still published, at every request.
        self._verified: dict[str, tuple[str, dict[str, Any]]] = {}

    def authenticate(self, authorization: str | None, now: datetime) -> Caller:
        claims = self._validate(self._bearer(authorization), now)
        roles = claims.get("roles")
        return Caller(
            app_id=str(claims.get("appid") or claims.get("azp") or ""),
            roles=frozenset(r for r in roles if isinstance(r, str))
            if isinstance(roles, list)
            else frozenset(),
        )

    def _bearer(self, authorization: str | None) -> str:
        scheme, _, token = (authorization or "").strip().partition(" ")
        if not authorization:
            raise Unauthenticated("Authentication failed: no bearer token.", self._challenge)
        if scheme.lower() != "bearer" or not token.strip():
            raise self._invalid("The Authorization header is not a bearer token.")
        return token.strip()

    def _validate(self, token: str, now: datetime) -> dict[str, Any]:
        verified = self._verified.get(token)
        if verified is None:
            verified = self._verify(token, now)
            if len(self._verified) >= VERIFIED_TOKENS:
                self._verified.clear()
            self._verified[token] = verified
        elif self._keys.public_key(verified[0], now) is None:
            raise self._not_ours()
        self._check_lifetime(verified[1], now)
        return verified[1]

    def _verify(self, token: str, now: datetime) -> tuple[str, dict[str, Any]]:
        """The signing key's ``kid`` and the claims, once signature, algorithm, issuer and
        audience are checked (not the lifetime)."""
        kid, key = self._key(token, now)
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=["RS256"], audience=self._audiences,
                issuer=self._issuers,
                options={"require": ["exp", "iss", "aud"], "verify_exp": False,
                         "verify_nbf": False, "verify_iat": False},
            )  # fmt: skip
        except jwt.InvalidAudienceError:
            raise self._invalid("The token's audience is not the DICOM service.") from None
        except jwt.InvalidIssuerError:
            raise self._invalid("The token was not issued by this tenant.") from None
        except jwt.PyJWTError:
            raise self._invalid("The token's signature or claims are invalid.") from None
        return kid, claims

    def _key(self, token: str, now: datetime) -> tuple[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise self._invalid("The token is not a JWT.") from None
        if header.get("alg") != "RS256":
            raise self._invalid("The token's signing algorithm is not RS256.")
        kid = header.get("kid")
        key = self._keys.public_key(kid, now) if isinstance(kid, str) else None
        if key is None:
            raise self._not_ours()
        return str(kid), key

    def _not_ours(self) -> Unauthenticated:
        return self._invalid("The token was not signed by a key of this tenant.")

    def _check_lifetime(self, claims: dict[str, Any], now: datetime) -> None:
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(exp, int | float) or not isinstance(nbf, int | float):
            raise self._invalid("The token's exp or nbf claim is not a number.")
        moment, leeway = now.timestamp(), LEEWAY.total_seconds()
        if moment > exp + leeway:
            raise self._invalid("The token has expired.")
        if moment < nbf - leeway:
            raise self._invalid("The token is not valid yet.")

    def _invalid(self, description: str) -> Unauthenticated:
        challenge = f'{self._challenge}, error="invalid_token", error_description="{description}"'
        return Unauthenticated(f"Authentication failed: {description}", challenge)
