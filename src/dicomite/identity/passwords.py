"""Portal passwords: argon2id hashes and the password policy.

Parameters are OWASP's first argon2id recommendation (Password Storage Cheat Sheet: m = 19 MiB,
t = 2, p = 1); argon2-cffi's RFC 9106 default (64 MiB, t = 3, p = 4) costs several hundred
milliseconds on a small shared machine, too slow for a sign-in form. Hashes made with other
parameters keep verifying; ``needs_rehash`` tells sign-in to upgrade them.

One hash at a time per process (``HASHES_AT_ONCE``): a hash is ~19 MiB and tens of
milliseconds of one core, and a flood of sign-ins running dozens at once in the thread pool
would take every core from the DICOM service beside them. Callers wait for their turn; sign-in
bounds how many wait (``identity.signin``). Never call these inside a database transaction.
"""

from __future__ import annotations

import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error

from dicomite.identity.problems import InvalidInput

MIN_LENGTH = 8
MAX_LENGTH = 256
MIN_CLASSES = 3

_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
HASHES_AT_ONCE = 1
_hashing = threading.BoundedSemaphore(HASHES_AT_ONCE)

# Verified against when no user has the name, so an unknown name costs as much as a wrong
# password (no timing oracle). The hash of a random value nobody knows, made with the
# parameters above (a test checks that they still match); a literal, so importing costs nothing.
DUMMY_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$9cDzcJjLQQj83fywk8983Q"
    "$/781epITC0yLCAaf+muSIz0pBSY0NNwvdoqgwNSDIJE"
)


def hash_password(password: str) -> str:
    with _hashing:
        return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Never raises: a malformed hash or an unencodable password is simply no match."""
    try:
        with _hashing:
            return _hasher.verify(password_hash, password)
    except (Argon2Error, ValueError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except ValueError:
        return True


def check_password_policy(password: str) -> str:
    """Entra ID's rules for cloud accounts: 8 to 256 characters, at least three of lowercase,
    uppercase, digits and symbols. Control characters are refused."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise InvalidInput(
            f"The password must be between {MIN_LENGTH} and {MAX_LENGTH} characters long."
        )
    if not _printable(password):
        raise InvalidInput("The password must not contain control characters.")
    if _classes(password) < MIN_CLASSES:
        raise InvalidInput(
            "The password must contain characters from at least three of these groups: "
            "lowercase letters, uppercase letters, digits and symbols."
        )
    return password


def generate_password(length: int = 24) -> str:
    """A random password that meets the policy (URL-safe characters, easy to copy)."""
    while True:
        candidate = secrets.token_urlsafe(length)[:length]
        if _classes(candidate) >= MIN_CLASSES:
            return candidate


def _printable(password: str) -> bool:
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        return False
    try:
        password.encode()
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def _classes(password: str) -> int:
    lower = any(c.islower() for c in password)
    upper = any(c.isupper() for c in password)
    digit = any(c.isdigit() for c in password)
    symbol = any(not c.isalnum() for c in password)
    return lower + upper + digit + symbol
