"""The one resource-server validator: a bearer token in, a :class:`Principal` or a refusal out.

Every API of this deployment (the Graph API, the DICOM service) accepts a token as an Entra ID
resource server does (RFC 6750, RFC 7519):

- it comes in the ``Authorization`` header with the ``Bearer`` scheme (RFC 6750 §2.1), never in a
  query parameter or form field;
- it is RS256 (RFC 7518 §3.3), signed by the key its ``kid`` names among those the tenant
  publishes now (:mod:`dicomite.identity.published_keys`);
- ``iss`` is the tenant's v1 or v2 issuer and ``aud`` the resource's identifier URI or appId;
  or ``iss`` is a *trusted external authority* configured for the resource (another Entra ID
  tenant, say) with the audience configured for it, and the key comes from that issuer's
  published JWKS (:mod:`dicomite.identity.external_keys`);
- ``exp`` and ``nbf`` hold at the caller's ``now``, with a leeway for clock skew.

A client sends one token for up to an hour: its signature, issuer and audience are checked once
and remembered; its lifetime, and that its key is still published, at every request.

Refusals are types that carry their RFC 6750 §3.1 meaning; each API words them in its own
format (``graph.auth``, ``dicom.auth``)::

    BearerRefusal                 status, error (RFC 6750 §3.1 error code)
    ├── NoToken                   401, no error code: the request sent no credentials
    ├── InvalidToken              401 invalid_token, with the ``Reason``
    └── InsufficientPermission    403 insufficient_scope, with the action refused
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

import jwt

from dicomite.identity.external_keys import ExternalKeys, FetchFailed
from dicomite.identity.published_keys import PublishedKeys
from dicomite.identity.tokens import issuer

LEEWAY = timedelta(minutes=5)
VERIFIED_TOKENS = 1024  # tokens whose signature, issuer and audience were checked
# A JWS in compact serialisation: three base64url parts without padding (RFC 7515 §2, §7.1),
# a stricter form of RFC 6750's b64token; the signature part is empty for "alg": "none".
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class Reason(enum.Enum):
    """Why a token is not valid, for each API to put in its own words."""

    EMPTY = "no token follows the scheme"
    NOT_BEARER = "the scheme is not Bearer"
    MALFORMED = "not a JWS in compact serialisation"
    ALGORITHM = "not RS256"
    UNKNOWN_KEY = "no key of this tenant is published under its kid"
    SIGNATURE = "the signature does not verify"
    CLAIMS = "a required claim is missing or unreadable"
    LIFETIME_CLAIMS = "exp or nbf is not a number"
    ISSUER = "another issuer"
    AUDIENCE = "another audience"
    EXPIRED = "exp has passed"
    NOT_YET_VALID = "nbf is still ahead"


class BearerRefusal(Exception):
    status: ClassVar[int] = 401
    error: ClassVar[str | None] = "invalid_token"


class NoToken(BearerRefusal):
    error = None  # RFC 6750 §3.1: no error code when the request had no authentication


class InvalidToken(BearerRefusal):
    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.value)
        self.reason = reason


class InsufficientPermission(BearerRefusal):
    status = 403
    error = "insufficient_scope"

    def __init__(self, action: str) -> None:
        super().__init__(f"not permitted: {action}")
        self.action = action


@dataclass(frozen=True)
class Principal:
    """Who calls, as the token says: no web framework, no API's permission names."""

    object_id: str  # oid: the client's service principal (app-only) or the signed-in user
    subject: str  # sub: the same as oid in app-only tokens, pairwise for a person (OIDC §8.1)
    app_id: str  # appid (v1) or azp (v2): the client application
    tenant_id: str
    roles: frozenset[str]  # application permissions granted to the client
    scopes: frozenset[str]  # delegated permissions (scp), none in an app-only token
    token_version: int  # 1 or 2, by the issuer that signed it
    # Acting for a signed-in person: the token has a ``scp`` claim, even an empty one (an
    # app-only token has none); such a token needs a scope for every action, never only roles.
    delegated: bool = False

    def require_role(self, any_of: frozenset[str], action: str) -> None:
        if not self.roles & any_of:
            raise InsufficientPermission(action)

    def require_scope(self, any_of: frozenset[str], action: str) -> None:
        if not self.scopes & any_of:
            raise InsufficientPermission(action)


@dataclass(frozen=True)
class TrustedAuthority:
    """Another issuer whose tokens for ``audience`` this resource accepts."""

    issuer: str
    audience: str

    @property
    def token_version(self) -> int:
        return 2 if self.issuer.rstrip("/").endswith("/v2.0") else 1


class KeySource(Protocol):
    def public_key(self, kid: str, now: datetime) -> Any | None: ...


@dataclass(frozen=True)
class _IssuerKeys:
    """An external authority's published keys, as a key source (a failed fetch: no key)."""

    keys: ExternalKeys
    issuer: str

    def public_key(self, kid: str, now: datetime) -> Any | None:
        try:
            return self.keys.public_key(self.issuer, kid)
        except FetchFailed:
            return None


@dataclass(frozen=True)
class _Trust:
    version: int
    keys: KeySource
    audiences: tuple[str, ...]


@dataclass(frozen=True)
class _Verified:
    kid: str
    keys: KeySource
    principal: Principal
    not_before: float
    expires: float


class ResourceServer:
    """Validates bearer tokens for one resource (its audiences) of one tenant; thread-safe."""

    def __init__(
        self,
        keys: PublishedKeys,
        public_url: str,
        tenant_id: str,
        audiences: Sequence[str],
        leeway: timedelta = LEEWAY,
        *,
        authorities: Sequence[TrustedAuthority] = (),
        external_keys: ExternalKeys | None = None,
    ) -> None:
        own = tuple(audiences)
        self._issuers: dict[str, _Trust] = {
            issuer(public_url, tenant_id, v): _Trust(v, keys, own) for v in (1, 2)
        }
        for authority in authorities:
            if external_keys is None:
                raise ValueError("trusted authorities need external_keys to fetch their keys")
            source = _IssuerKeys(external_keys, authority.issuer)
            trust = _Trust(authority.token_version, source, (authority.audience,))
            self._issuers.setdefault(authority.issuer, trust)
        self._leeway = leeway.total_seconds()
        self._verified: dict[str, _Verified] = {}

    def authenticate(self, authorization: str | None, now: datetime) -> Principal:
        token = bearer_token(authorization)
        verified = self._verified.get(token)
        if verified is None:
            verified = self._verify(token, now)
            if len(self._verified) >= VERIFIED_TOKENS:
                self._verified.clear()
            self._verified[token] = verified
        elif verified.keys.public_key(verified.kid, now) is None:
            raise InvalidToken(Reason.UNKNOWN_KEY)  # retired since it was verified
        self._check_lifetime(verified, now.timestamp())
        return verified.principal

    def _verify(self, token: str, now: datetime) -> _Verified:
        """Signature, algorithm, issuer and audience (not the lifetime: that changes)."""
        if not _COMPACT_JWS.fullmatch(token):
            raise InvalidToken(Reason.MALFORMED)
        trust = self._trust(token)
        kid, key = verification_key(trust.keys, token, now)
        claims = self._decode(token, key, trust)
        exp, nbf = claims["exp"], claims.get("nbf", 0)
        if not isinstance(exp, int | float) or not isinstance(nbf, int | float):
            raise InvalidToken(Reason.LIFETIME_CLAIMS)
        return _Verified(kid, trust.keys, self._principal(claims, trust), nbf, exp)

    def _trust(self, token: str) -> _Trust:
        """What the token's (still unverified) issuer is trusted for: which keys, audiences.
        An issuer nobody configured is refused before any key is looked for."""
        try:
            claimed = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            raise InvalidToken(Reason.MALFORMED) from None
        trust = self._issuers.get(claimed) if isinstance(claimed, str) else None
        if trust is None:
            raise InvalidToken(Reason.ISSUER)
        return trust

    def _decode(self, token: str, key: Any, trust: _Trust) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=list(trust.audiences),
                issuer=list(self._issuers),
                # The lifetime is checked at every use, by _check_lifetime.
                options={
                    "require": ["exp", "iss", "aud"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
            return claims
        except jwt.InvalidAudienceError:
            raise InvalidToken(Reason.AUDIENCE) from None
        except jwt.InvalidIssuerError:
            raise InvalidToken(Reason.ISSUER) from None
        except jwt.InvalidSignatureError:
            raise InvalidToken(Reason.SIGNATURE) from None
        except jwt.PyJWTError:
            raise InvalidToken(Reason.CLAIMS) from None

    def _principal(self, claims: dict[str, Any], trust: _Trust) -> Principal:
        scopes = claims.get("scp")  # space-separated, as Entra ID writes delegated permissions
        return Principal(
            object_id=str(claims.get("oid") or ""),
            subject=str(claims.get("sub") or ""),
            app_id=str(claims.get("appid") or claims.get("azp") or ""),
            tenant_id=str(claims.get("tid") or ""),
            roles=_strings(claims.get("roles")),
            scopes=_strings(scopes.split() if isinstance(scopes, str) else None),
            delegated="scp" in claims,
            token_version=trust.version,
        )

    def _check_lifetime(self, verified: _Verified, moment: float) -> None:
        if moment > verified.expires + self._leeway:
            raise InvalidToken(Reason.EXPIRED)
        if moment < verified.not_before - self._leeway:
            raise InvalidToken(Reason.NOT_YET_VALID)


def verification_key(keys: KeySource, token: str, now: datetime) -> tuple[str, Any]:
    """The ``kid`` and public key an RS256 token's header names, when ``keys`` holds it at
    ``now``; InvalidToken otherwise."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidToken(Reason.MALFORMED) from None
    if header.get("alg") != "RS256":  # never "none", never HS256 keyed by a public key
        raise InvalidToken(Reason.ALGORITHM)
    kid = header.get("kid")
    key = keys.public_key(kid, now) if isinstance(kid, str) else None
    if key is None:
        raise InvalidToken(Reason.UNKNOWN_KEY)
    return str(kid), key


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 §2.1; the scheme is
    case-insensitive, RFC 9110 §11.1)."""
    if not authorization:
        raise NoToken()
    scheme, _, token = authorization.strip().partition(" ")
    if not token.strip():
        raise InvalidToken(Reason.EMPTY)
    if scheme.lower() != "bearer":
        raise InvalidToken(Reason.NOT_BEARER)
    return token.strip()


def _strings(values: object) -> frozenset[str]:
    if not isinstance(values, list):
        return frozenset()
    return frozenset(value for value in values if isinstance(value, str))
