"""``private_key_jwt`` client authentication (RFC 7523 §3, OpenID Connect Core §9).

The client signs a JWT with the private key of a certificate registered on its application;
the header's ``x5t#S256`` or ``x5t`` names the certificate. We check the signature (RS256 or
PS256 only), ``aud`` (our token endpoint), ``iss`` = ``sub`` = client id, ``exp``/``nbf``, the
certificate's validity, and accept each ``jti`` once for each resource. (Once per resource
rather than once: msal reuses one assertion for up to nine minutes when it asks for tokens for
several resources, and Entra ID accepts that.)
"""

from __future__ import annotations

import base64
import binascii
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from dicomite.identity import errors
from dicomite.store.db import Store
from dicomite.store.tables import UsedAssertion

ALLOWED_ALGORITHMS = ("RS256", "PS256")
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LEEWAY = timedelta(minutes=5)
MAX_ASSERTION_BYTES = 16 * 1024


@dataclass(frozen=True)
class RegisteredCertificate:
    key_id: str
    public_key: RSAPublicKey
    thumbprint_sha1: bytes
    thumbprint_sha256: bytes
    start_at: datetime
    end_at: datetime


def _thumbprint(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None


def names_certificate(header: dict[str, Any], certificates: list[RegisteredCertificate]) -> bool:
    """Whether the header's ``x5t#S256`` or ``x5t`` names one of the certificates."""
    s256, sha1 = _thumbprint(header.get("x5t#S256")), _thumbprint(header.get("x5t"))
    return any(
        (s256 and s256 == cert.thumbprint_sha256) or (sha1 and sha1 == cert.thumbprint_sha1)
        for cert in certificates
    )


def pick_certificate(
    header: dict[str, Any], certificates: list[RegisteredCertificate]
) -> RegisteredCertificate:
    s256, sha1 = _thumbprint(header.get("x5t#S256")), _thumbprint(header.get("x5t"))
    for cert in certificates:
        if (s256 and s256 == cert.thumbprint_sha256) or (sha1 and sha1 == cert.thumbprint_sha1):
            return cert
    raise errors.AssertionSignatureInvalid(
        detail="The certificate with identifier used to sign the client assertion is not "
        "registered on application."
    )


def read_header(assertion: str) -> dict[str, Any]:
    if len(assertion) > MAX_ASSERTION_BYTES:
        raise errors.MalformedAssertion(detail="The client assertion is too large.")
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.DecodeError:
        raise errors.MalformedAssertion(detail="The client assertion is not a JWS.") from None
    if header.get("alg") not in ALLOWED_ALGORITHMS:
        raise errors.MalformedAssertion(
            detail=f"The client assertion must be signed with {' or '.join(ALLOWED_ALGORITHMS)}."
        )
    return header


def verify_claims(
    assertion: str,
    header: dict[str, Any],
    cert: RegisteredCertificate,
    client_id: str,
    audiences: list[str],
    now: datetime,
) -> dict[str, Any]:
    if not cert.start_at <= now <= cert.end_at:
        raise errors.AssertionSignatureInvalid(
            detail="The certificate has expired or is not yet valid."
        )
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            cert.public_key,
            algorithms=[header["alg"]],
            audience=audiences,
            leeway=LEEWAY,
            options={"require": ["exp", "iss", "sub", "aud", "jti"]},
        )
    except jwt.InvalidSignatureError:
        raise errors.AssertionSignatureInvalid(detail="The signature does not verify.") from None
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
        raise errors.AssertionExpired(detail="Check exp and nbf.") from None
    except jwt.InvalidAudienceError:
        raise errors.AssertionAudienceInvalid(
            detail=f"Expected one of: {', '.join(audiences)}."
        ) from None
    except jwt.PyJWTError as exc:
        raise errors.MalformedAssertion(detail=str(exc)[:200]) from None
    if claims["iss"] != client_id or claims["sub"] != client_id:
        raise errors.AssertionClientMismatch()
    return claims


class ReplayGuard:
    """Remembers accepted ``jti`` values in the store, shared by every process."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def accept_once(
        self, client_id: str, resource: str, jti: str, exp: float, now: datetime
    ) -> None:
        expires = datetime.fromtimestamp(exp, UTC) + LEEWAY
        row = UsedAssertion(
            client_id=client_id, resource=resource[:512], jti=jti[:256], expires_at=expires
        )
        try:
            with self._store.write() as session:
                session.add(row)
        except IntegrityError:
            raise errors.AssertionReplayed(jti=jti[:64]) from None
        if random.random() < 0.01:  # noqa: S311 - housekeeping sample, not security
            self._purge(now)

    def _purge(self, now: datetime) -> None:
        with self._store.write() as session:
            session.execute(delete(UsedAssertion).where(UsedAssertion.expires_at < now))
