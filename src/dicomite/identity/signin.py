"""A person's portal sign-in: name and password against the stored argon2id hash, throttled.

(``identity.signins`` is another thing: the log of service principals' token requests.)

Exception tree (every ``message`` is safe to show on the sign-in page)::

    SignInError
    ├── SignInFailed          unknown name, wrong password: one message for all
    │   └── AccountDisabled   the password was right, but the account is disabled
    └── SignInThrottled       too many failures; ``retry_after_seconds``

Throttling is kept per name in ``sign_in_throttles``, so every worker and host sees it: the
fifth failure within 15 minutes locks the name for 60 s, each further failure doubles the lock
(at most 15 minutes), and the count starts over once the name has been quiet for 15 minutes
(counted from the first failure, or from the end of the last lock). Unknown names are throttled
alike, so the lock says nothing about whether an account exists. A success clears the count.

Call ``authenticate`` in a write session: it commits the failure it records before raising, so
the caller's rollback cannot undo it.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dicomite.identity.passwords import DUMMY_HASH, hash_password, needs_rehash, verify_password
from dicomite.identity.users import MAX_NAME, find_user
from dicomite.store.tables import SignInThrottle, User

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
FIRST_LOCK = timedelta(seconds=60)
MAX_LOCK = timedelta(minutes=15)


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


def authenticate(
    session: Session, tenant_id: str, user_principal_name: str, password: str, now: datetime
) -> User:
    """The user whose name and password these are, enabled; else a ``SignInError``."""
    key = user_principal_name.strip().lower()[:MAX_NAME]  # longer names match no user anyway
    throttle = _throttle(session, tenant_id, key)
    if throttle is not None and throttle.locked_until is not None and throttle.locked_until > now:
        raise SignInThrottled(math.ceil((throttle.locked_until - now).total_seconds()))
    user = find_user(session, tenant_id, user_principal_name)
    if not verify_password(user.password_hash if user else DUMMY_HASH, password) or user is None:
        _record_failure(session, throttle, tenant_id, key, now)
        session.commit()
        raise SignInFailed
    if not user.account_enabled:
        raise AccountDisabled
    _succeed(session, user, throttle, password)
    return user


def _throttle(session: Session, tenant_id: str, name: str) -> SignInThrottle | None:
    """The name's row, locked on PostgreSQL so that one name's attempts run one at a time."""
    return session.scalar(
        select(SignInThrottle)
        .where(SignInThrottle.tenant_id == tenant_id, SignInThrottle.user_principal_name == name)
        .with_for_update()
    )


def _succeed(session: Session, user: User, throttle: SignInThrottle | None, password: str) -> None:
    if throttle is not None:
        session.delete(throttle)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.flush()


def _record_failure(
    session: Session, throttle: SignInThrottle | None, tenant_id: str, name: str, now: datetime
) -> None:
    if throttle is None:
        throttle = _insert_first_failure(session, tenant_id, name, now)
    if throttle is not None:
        _count_failure(throttle, now)
    session.flush()


def _count_failure(throttle: SignInThrottle, now: datetime) -> None:
    if _quiet_since(throttle) + WINDOW <= now:
        throttle.failures, throttle.first_failure_at, throttle.locked_until = 1, now, None
        return
    throttle.failures += 1
    if throttle.failures >= MAX_FAILURES:
        throttle.locked_until = now + lock_duration(throttle.failures)


def _insert_first_failure(
    session: Session, tenant_id: str, name: str, now: datetime
) -> SignInThrottle | None:
    """A new row counting one failure (None), or the row another worker inserted meanwhile,
    to count this failure on."""
    row = SignInThrottle(
        tenant_id=tenant_id, user_principal_name=name, failures=1, first_failure_at=now
    )
    try:
        with session.begin_nested():
            session.add(row)
        return None
    except IntegrityError:
        return _throttle(session, tenant_id, name)


def _quiet_since(throttle: SignInThrottle) -> datetime:
    return throttle.locked_until or throttle.first_failure_at


def lock_duration(failures: int) -> timedelta:
    """60 s at the fifth failure, doubled at each one after it, at most 15 minutes."""
    doublings = min(max(failures - MAX_FAILURES, 0), 10)
    return min(FIRST_LOCK * (1 << doublings), MAX_LOCK)
