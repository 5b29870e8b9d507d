"""A person's portal sign-in: name and password against the stored argon2id hash, throttled.

(``identity.signins`` is another thing: the log of service principals' token requests.)

Exception tree (every ``message`` is safe to show on the sign-in page)::

    SignInError
    ├── SignInFailed          unknown name, wrong password: one message for all
    │   └── AccountDisabled   the password was right, but the account is disabled
    ├── SignInThrottled       too many failures; ``retry_after_seconds``
    └── SignInBusy            too many sign-ins waiting for a password check in this process

Throttling (``identity.throttle``) counts failures per account at the client's address, per
address and per account, so a guesser at one address locks out only themselves. A locked
attempt is refused after one read, before any password hash.

No hash runs inside a database transaction: an argon2id check takes tens of milliseconds, and
on SQLite a write transaction holds the one write lock that every STOW and token request
waits for. So an attempt is one read (locks and the account), one short write (counting it),
the hash with no transaction open, and for a right password a second short write (forgiving
it, and storing an upgraded hash computed beforehand). Callers run ``authenticate`` in the
blocking thread pool, never on the event loop.

Hashes run one at a time per process (``passwords``); at most ``WAITING`` more sign-ins wait
for their turn, and any beyond are refused at once with ``SignInBusy``, before they are counted
or hashed: a flood from many addresses costs at most one core per worker process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from dicomite.identity import throttle
from dicomite.identity.passwords import (
    DUMMY_HASH,
    HASHES_AT_ONCE,
    hash_password,
    needs_rehash,
    verify_password,
)
from dicomite.identity.users import MAX_NAME, find_user
from dicomite.store.db import Store
from dicomite.store.tables import User

WAITING = 8
_admitted = threading.BoundedSemaphore(HASHES_AT_ONCE + WAITING)
BUSY_RETRY_SECONDS = 5


class SignInError(Exception):
    message = "Sign-in failed."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.message
        super().__init__(self.message)


class SignInFailed(SignInError):
    message = "Your account or password is incorrect."


class AccountDisabled(SignInFailed):
    message = "Your account has been disabled."


class SignInThrottled(SignInError):
    def __init__(self, retry_after_seconds: int) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(
            "You've tried to sign in too many times with an incorrect account or password. "
            f"Try again in {retry_after_seconds} seconds."
        )


class SignInBusy(SignInError):
    retry_after_seconds = BUSY_RETRY_SECONDS
    message = (
        f"Too many sign-ins are being checked right now. Try again in {BUSY_RETRY_SECONDS} seconds."
    )


@dataclass(frozen=True)
class _Account:
    id: str
    password_hash: str


def authenticate(
    store: Store,
    tenant_id: str,
    user_principal_name: str,
    password: str,
    address: str,
    now: datetime,
) -> User:
    """The user whose name and password these are, enabled; else a ``SignInError``.
    ``address`` is the client's (``client_address``)."""
    name = user_principal_name.strip().lower()[:MAX_NAME]  # longer names match no user anyway
    keys, familiar = throttle.keys_for(name, address), throttle.familiar_key(name, address)
    account = _account_unless_locked(store, tenant_id, name, (*keys, familiar), now)
    with _admission():
        reservation = _count_attempt(store, tenant_id, keys, familiar, now)
        known, upgraded = _checked(account, password)
    with store.write() as session:
        throttle.forgive(session, tenant_id, reservation, familiar, now)
        user = _unchanged(session, known, upgraded)
    if not user.account_enabled:
        raise AccountDisabled
    return user


def _checked(account: _Account | None, password: str) -> tuple[_Account, str | None]:
    """The account, and a new hash when its stored one has old parameters; ``SignInFailed``
    when the password is wrong (an unknown name is checked against the dummy hash alike)."""
    if not verify_password(account.password_hash if account else DUMMY_HASH, password):
        raise SignInFailed  # counted already
    if account is None:
        raise SignInFailed
    upgraded = hash_password(password) if needs_rehash(account.password_hash) else None
    return account, upgraded


def _unchanged(session: Session, account: _Account, upgraded: str | None) -> User:
    """The account's user, its hash upgraded; ``SignInFailed`` when it was deleted, or its
    password reset, while the hash ran."""
    user = session.get(User, account.id)
    if user is None or user.password_hash != account.password_hash:
        raise SignInFailed
    if upgraded is not None:
        user.password_hash = upgraded
    return user


@contextmanager
def _admission() -> Iterator[None]:
    """A place among the sign-ins hashing or waiting to hash; ``SignInBusy`` when none is
    free (refused before anything is counted)."""
    if not _admitted.acquire(blocking=False):
        raise SignInBusy
    try:
        yield
    finally:
        _admitted.release()


def _account_unless_locked(
    store: Store, tenant_id: str, name: str, keys: tuple[throttle.Key, ...], now: datetime
) -> _Account | None:
    """The account of ``name`` (None for none); ``SignInThrottled`` when a count is locked."""
    with store.read() as session:
        wait = throttle.wait_seconds(throttle.load(session, tenant_id, keys), now)
        if wait:
            raise SignInThrottled(wait)
        user = find_user(session, tenant_id, name)
        return None if user is None else _Account(user.id, user.password_hash)


def _count_attempt(
    store: Store,
    tenant_id: str,
    keys: tuple[throttle.Key, ...],
    familiar: throttle.Key,
    now: datetime,
) -> throttle.Reservation:
    with store.write() as session:
        counted = throttle.count_attempt(session, tenant_id, keys, familiar, now)
        if isinstance(counted, int):  # locked meanwhile by a concurrent attempt
            raise SignInThrottled(counted)
        return counted
