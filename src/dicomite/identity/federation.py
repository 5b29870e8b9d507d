"""Workload identity federation: a client authenticates with a token another OpenID provider
issued to it (GitHub Actions, a Kubernetes service account, another cloud), matched against
the federated identity credentials registered on its application, as Entra ID does.

A credential trusts one exact, case-sensitive ``issuer`` + ``subject`` pair for an audience.
The assertion is matched against the app's credentials *before* anything is fetched, so only
issuers an administrator named are ever contacted (``external_keys``); then its signature is
checked with the issuer's published key, and its lifetime. Unlike a certificate's assertion, a
federated token may be presented many times while valid (Kubernetes reuses a service-account
token for an hour), so no ``jti`` is recorded.

Errors, as Entra ID's: 70021 (the app has no federated credential), 700211 (issuer), 700213
(subject), 700212 (audience), 700024 (lifetime), 700027 (signature or key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from dicomite.identity import errors
from dicomite.identity.assertions import (
    LEEWAY,
    MAX_ASSERTION_BYTES,
    RegisteredCertificate,
    names_certificate,
)
from dicomite.identity.external_keys import ALGORITHMS, ExternalKeys, FetchFailed


@dataclass(frozen=True)
class FederatedCredential:
    id: str
    name: str
    issuer: str
    subject: str
    audiences: tuple[str, ...]


@dataclass(frozen=True)
class Presented:
    """An assertion's unverified header and claims: enough to tell federation from a
    certificate's assertion, and to match credentials."""

    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def issuer(self) -> str:
        return str(self.claims.get("iss", ""))

    def federated(self, client_id: str, certificates: list[RegisteredCertificate]) -> bool:
        """Whether this is another issuer's token: a certificate's assertion is issued by the
        client itself (``iss`` = client id) or names one of its certificates (``x5t``), and
        is refused as such when it does not hold (AADSTS700021)."""
        return self.issuer != client_id and not names_certificate(self.header, certificates)

    def describe(self) -> str:
        return (
            f"Assertion Issuer: '{self.issuer[:300]}'. Assertion Subject: "
            f"'{str(self.claims.get('sub', ''))[:300]}'. Assertion Audience: "
            f"'{','.join(_audiences(self.claims))[:300]}'."
        )


def presented(assertion: str) -> Presented:
    if len(assertion) > MAX_ASSERTION_BYTES:
        raise errors.MalformedAssertion(detail="The client assertion is too large.")
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise errors.MalformedAssertion(detail="The client assertion is not a JWT.") from None
    return Presented(header, claims)


def verify_federated(
    assertion: str,
    seen: Presented,
    credentials: Sequence[FederatedCredential],
    keys: ExternalKeys,
) -> FederatedCredential:
    """The credential the assertion matches, once its signature and lifetime verify."""
    match = matching_credential(seen, credentials)
    algorithm = seen.header.get("alg")
    if algorithm not in ALGORITHMS:
        raise errors.MalformedAssertion(detail=f"The algorithm must be one of {ALGORITHMS}.")
    kid = seen.header.get("kid")
    try:
        key = keys.public_key(match.issuer, kid if isinstance(kid, str) else None)
    except FetchFailed as failure:
        raise errors.AssertionSignatureInvalid(
            detail=f"The issuer's signing keys could not be read: {failure}."
        ) from None
    if key is None:
        raise errors.AssertionSignatureInvalid(detail="The issuer publishes no such key (kid).")
    try:
        jwt.decode(
            assertion,
            key,
            algorithms=[algorithm],
            leeway=LEEWAY,
            options={"require": ["exp", "iss", "sub", "aud"], "verify_aud": False},
        )
    except jwt.InvalidSignatureError:
        raise errors.AssertionSignatureInvalid(detail="The signature does not verify.") from None
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
        raise errors.AssertionExpired(detail=seen.describe()) from None
    except jwt.PyJWTError as problem:
        raise errors.MalformedAssertion(detail=str(problem)[:200]) from None
    return match


def matching_credential(
    seen: Presented, credentials: Sequence[FederatedCredential]
) -> FederatedCredential:
    if not credentials:
        raise errors.NoFederatedMatch(detail=seen.describe())
    by_issuer = [c for c in credentials if c.issuer == seen.issuer]
    if not by_issuer:
        raise errors.FederatedIssuerMismatch(detail=seen.describe())
    subject = seen.claims.get("sub")
    by_subject = [c for c in by_issuer if c.subject == subject]
    if not by_subject:
        raise errors.FederatedSubjectMismatch(detail=seen.describe())
    audiences = set(_audiences(seen.claims))
    for credential in by_subject:
        if audiences & set(credential.audiences):
            return credential
    raise errors.FederatedAudienceMismatch(detail=seen.describe())


def _audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    return [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []
