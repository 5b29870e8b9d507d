"""The public keys a resource server verifies tokens with: the signing keys published now.

The Graph API and the DICOM service run in the issuer's process, on its database, so they read
the keys from the store rather than over HTTP. Each process keeps them by ``kid``:

- a ``kid`` it does not hold reloads the keys at once, so a key published by ``keys rotate``
  (even with ``--lead 0``, on another process or host) is honoured on its first token; at most
  once per ``MIN_RELOAD_SECONDS``, so that forged ``kid`` values cannot hammer the database;
- a key past its ``retires_at`` is refused at once, and the keys are re-read at least every
  ``max_age`` (``MAX_AGE_SECONDS`` unless the setting ``signing_keys_max_age_seconds`` says
  otherwise), so a key retired early or withdrawn from the store is refused within it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from dicomite.store.db import Store
from dicomite.store.tables import SigningKey

MIN_RELOAD_SECONDS = 1.0
MAX_AGE_SECONDS = 30.0


@dataclass(frozen=True)
class PublishedKey:
    kid: str
    public_key: rsa.RSAPublicKey
    retires_at: datetime | None

    def published(self, now: datetime) -> bool:
        return self.retires_at is None or self.retires_at > now


def load_from_store(store: Store) -> list[PublishedKey]:
    """Every key in the store, with the public key of its certificate (no private key)."""
    query = select(SigningKey.kid, SigningKey.certificate_der, SigningKey.retires_at)
    with store.read() as session:
        rows = session.execute(query).all()
    keys = []
    for kid, der, retires_at in rows:
        public_key = x509.load_der_x509_certificate(der).public_key()
        if isinstance(public_key, rsa.RSAPublicKey):
            keys.append(PublishedKey(kid, public_key, retires_at))
    return keys


class PublishedKeys:
    """Keys by ``kid`` from ``load``, reloaded as the module docstring says; thread-safe."""

    def __init__(
        self,
        load: Callable[[], Sequence[PublishedKey]],
        min_reload: float = MIN_RELOAD_SECONDS,
        max_age: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._min_reload = min_reload
        self._max_age = max_age
        self._clock = clock
        self._keys: dict[str, PublishedKey] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    @classmethod
    def of_store(cls, store: Store, max_age: float = MAX_AGE_SECONDS) -> PublishedKeys:
        return cls(lambda: load_from_store(store), max_age=max_age)

    def public_key(self, kid: str, now: datetime) -> rsa.RSAPublicKey | None:
        """The key ``kid`` if it is published at ``now``, else None."""
        if self._age() >= self._max_age:
            self._reload(self._max_age)
        key = self._keys.get(kid)
        if key is None and self._age() >= self._min_reload:
            key = self._reload(self._min_reload).get(kid)
        return key.public_key if key is not None and key.published(now) else None

    def _age(self) -> float:
        return self._clock() - self._loaded_at

    def _reload(self, unless_younger_than: float) -> dict[str, PublishedKey]:
        with self._lock:  # one reload at a time; those that waited find it done
            if self._age() >= unless_younger_than:
                self._keys = {key.kid: key for key in self._load()}
                self._loaded_at = self._clock()
            return self._keys
