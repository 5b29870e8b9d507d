"""Identifiers that must be unique but need not be secret (token ``uti``, trace and
correlation ids, log rows).

They come from a per-process PRNG seeded from the OS, because in sandboxed deployments each
``os.urandom`` call is a system call costing tens of microseconds, and the token path needs
several per request. Secrets (client secrets, keys) always use ``secrets``/``os.urandom``.
"""

from __future__ import annotations

import base64
import os
import random
import time
import uuid

_generator = random.Random(os.urandom(32))  # noqa: S311 - identifiers, not secrets


def _reseed() -> None:
    _generator.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed)


def unique_uuid() -> str:
    """A random (version 4) UUID string."""
    return str(uuid.UUID(int=_generator.getrandbits(128), version=4))


def unique_token_id() -> str:
    """22 base64url characters, the shape of Entra ID's ``uti`` claim."""
    return (
        base64.urlsafe_b64encode(_generator.getrandbits(128).to_bytes(16, "big"))
        .rstrip(b"=")
        .decode()
    )


def time_ordered_uuid() -> str:
    """A UUIDv7 (RFC 9562 §5.7): milliseconds since the epoch, then random bits.

    Used as the key of append-only logs, so each insert lands at the end of the primary-key
    index instead of a random page of it.
    """
    millis = time.time_ns() // 1_000_000
    value = (millis & (2**48 - 1)) << 80 | _generator.getrandbits(80)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant
    return str(uuid.UUID(int=value))
