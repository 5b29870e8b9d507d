"""Token-signing keys: creation, rotation and the JWKS.

A key is published in the JWKS from its creation, signs from ``activates_at`` (so resource
servers that cache the JWKS learn it before they meet it), and stays published until
``retires_at``, when every token it signed has expired. As in Entra ID, ``kid`` equals ``x5t``,
the base64url SHA-1 thumbprint of the key's self-signed certificate.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from dicomite.identity.protection import KeyProtection
from dicomite.store.db import Store
from dicomite.store.tables import SigningKey

KEY_BITS = 2048
CERT_LIFETIME = timedelta(days=5 * 365)
# Resource servers refresh a cached JWKS at most every five minutes (RFC 7517 users such as
# our own DICOM service), so a new key waits that long before it signs.
DEFAULT_ROTATION_LEAD = timedelta(minutes=5)
CLOCK_SKEW = timedelta(minutes=5)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint_b64(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _self_signed(key: rsa.RSAPrivateKey, now: datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Dicomite token signing")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CERT_LIFETIME)
        .sign(key, hashes.SHA256())
    )


def create_key(
    session: Session, protection: KeyProtection, now: datetime, activates_at: datetime
) -> SigningKey:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    der = _self_signed(private_key, now).public_bytes(serialization.Encoding.DER)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    row = SigningKey(
        kid=b64url(hashlib.sha1(der, usedforsecurity=False).digest()),
        created_at=now,
        activates_at=activates_at,
        retires_at=None,
        private_key_encrypted=protection.encrypt(pem),
        certificate_der=der,
    )
    session.add(row)
    return row


def ensure_signing_key(session: Session, protection: KeyProtection, now: datetime) -> None:
    """First start: one key, active at once."""
    if session.scalar(select(SigningKey.kid).limit(1)) is None:
        create_key(session, protection, now, activates_at=now)


def rotate(
    session: Session,
    protection: KeyProtection,
    now: datetime,
    *,
    lead: timedelta = DEFAULT_ROTATION_LEAD,
    token_lifetime: timedelta,
) -> SigningKey:
    """Publish a new key now, let it sign after ``lead``, retire the others when their
    tokens have expired."""
    new = create_key(session, protection, now, activates_at=now + lead)
    retire_at = new.activates_at + token_lifetime + CLOCK_SKEW
    for key in session.scalars(select(SigningKey).where(SigningKey.kid != new.kid)):
        if key.retires_at is None or key.retires_at > retire_at:
            key.retires_at = retire_at
    return new


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    certificate_der: bytes
    activates_at: datetime
    retires_at: datetime | None

    def published(self, now: datetime) -> bool:
        return self.retires_at is None or self.retires_at > now

    def jwk(self, issuer: str | None) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        jwk: dict[str, Any] = {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _uint_b64(numbers.n),
            "e": _uint_b64(numbers.e),
            "x5c": [base64.b64encode(self.certificate_der).decode()],
        }
        if issuer:
            jwk["issuer"] = issuer
        return jwk


class KeyRing:
    """The keys as this process sees them, re-read from the store every few seconds so that a
    rotation made by another process (``dicomite keys rotate``) is picked up."""

    def __init__(self, store: Store, protection: KeyProtection, refresh_seconds: float = 2.0):
        self._store = store
        self._protection = protection
        self._refresh_seconds = refresh_seconds
        self._keys: list[LoadedKey] = []
        self._loaded_at = float("-inf")
        self._private_cache: dict[str, rsa.RSAPrivateKey] = {}
        self._lock = threading.Lock()

    def keys(self) -> list[LoadedKey]:
        if time.monotonic() - self._loaded_at > self._refresh_seconds:
            with self._lock:
                if time.monotonic() - self._loaded_at > self._refresh_seconds:
                    self._keys = self._load()
                    self._loaded_at = time.monotonic()
        return self._keys

    def signing_key(self, now: datetime) -> LoadedKey:
        active = [k for k in self.keys() if k.activates_at <= now and k.published(now)]
        if not active:
            raise RuntimeError("no active signing key; run 'dicomite keys rotate'")
        return max(active, key=lambda k: k.activates_at)

    def jwks(self, now: datetime, issuer: str | None) -> dict[str, Any]:
        published = sorted(
            (k for k in self.keys() if k.published(now)), key=lambda k: k.activates_at
        )
        return {"keys": [k.jwk(issuer) for k in published]}

    def _load(self) -> list[LoadedKey]:
        with self._store.read() as session:
            rows = session.scalars(select(SigningKey)).all()
            return [self._loaded(row) for row in rows]

    def _loaded(self, row: SigningKey) -> LoadedKey:
        private = self._private_cache.get(row.kid)
        if private is None:
            pem = self._protection.decrypt(row.private_key_encrypted)
            loaded = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey):  # create_key() writes RSA keys only
                raise TypeError(f"Signing key {row.kid} in the store is not an RSA private key.")
            private = self._private_cache[row.kid] = loaded
        return LoadedKey(row.kid, private, row.certificate_der, row.activates_at, row.retires_at)
