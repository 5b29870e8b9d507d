"""Key material kept outside the database.

One 256-bit key-encryption key (a file in the data dir, or ``DICOMITE_KEY_ENCRYPTION_KEY`` for
deployments with several hosts) is stretched with HKDF (RFC 5869) into two independent keys:
one encrypts signing private keys at rest (Fernet), one keys the HMAC of client secrets, and one
seals short-lived values the portal hands the browser to show once (a new secret's value).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def new_key_encryption_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _derive(kek: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(kek)


class KeyProtection:
    def __init__(self, key_encryption_key: str) -> None:
        kek = base64.urlsafe_b64decode(key_encryption_key.strip().encode())
        if len(kek) < 32:
            raise ValueError("the key-encryption key must hold at least 32 bytes")
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(kek, b"dicomite signing keys")))
        self._pepper = _derive(kek, b"dicomite client secrets")
        self._subjects = _derive(kek, b"dicomite pairwise subjects")
        self._seals = Fernet(base64.urlsafe_b64encode(_derive(kek, b"dicomite portal seals")))

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def decrypt(self, token: bytes) -> bytes:
        return self._fernet.decrypt(token)

    def seal(self, plaintext: bytes) -> bytes:
        return self._seals.encrypt(plaintext)

    def unseal(self, token: bytes, max_age_seconds: int) -> bytes:
        """The sealed value; ``cryptography.fernet.InvalidToken`` when forged or too old."""
        return self._seals.decrypt(token, ttl=max_age_seconds)

    def secret_hash(self, secret: str) -> bytes:
        """HMAC-SHA256: client secrets are random 200+ bit strings, so a keyed fast hash is as
        strong as a slow KDF here and keeps token issuing cheap."""
        return hmac.new(self._pepper, secret.encode(), hashlib.sha256).digest()

    def pairwise_subject(self, user_id: str, client_app_id: str) -> str:
        """The ``sub`` claim of a person's tokens for one application: stable for the pair,
        unlinkable across applications (OIDC Core §8.1), 43 characters as Entra ID's."""
        mac = hmac.new(self._subjects, f"{user_id}|{client_app_id}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()
