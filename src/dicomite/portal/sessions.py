"""Portal sign-in sessions, kept in the store so that every worker process knows them.

The browser holds a random value in a cookie; the store keeps only its SHA-256, so a copy of the
database does not let anyone sign in. Each session has its own CSRF token (the synchronizer
token pattern, OWASP CSRF cheat sheet) that every form posts back.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from dicomite.store.tables import PortalSession, User

IDLE_TIMEOUT = timedelta(hours=1)
ABSOLUTE_LIFETIME = timedelta(hours=12)
# last_seen_at is refreshed at most this often, so most page views stay read-only.
TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class SignedIn:
    user: User
    csrf_token: str
    authenticated_at: datetime  # when the password was entered (OIDC's auth_time)
    # last_seen_at is old enough to be refreshed (see TOUCH_INTERVAL).
    stale: bool = False


def _digest(cookie_value: str) -> str:
    return hashlib.sha256(cookie_value.encode()).hexdigest()


def start(session: Session, user: User, now: datetime) -> str:
    """Open a session for ``user``; returns the cookie value (shown to nobody else)."""
    cookie_value = secrets.token_urlsafe(32)
    session.add(
        PortalSession(
            id_hash=_digest(cookie_value),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + ABSOLUTE_LIFETIME,
        )
    )
    return cookie_value


def find(session: Session, cookie_value: str, now: datetime) -> SignedIn | None:
    """The live session behind a cookie: not expired, not idle too long, user still enabled."""
    if not cookie_value or len(cookie_value) > 128:
        return None
    found = session.get(PortalSession, _digest(cookie_value))
    if found is None or found.expires_at <= now or found.last_seen_at + IDLE_TIMEOUT <= now:
        return None
    user = session.get(User, found.user_id)
    if user is None or not user.account_enabled:
        return None
    stale = found.last_seen_at + TOUCH_INTERVAL <= now
    return SignedIn(
        user=user, csrf_token=found.csrf_token, authenticated_at=found.created_at, stale=stale
    )


def touch(session: Session, cookie_value: str, now: datetime) -> None:
    found = session.get(PortalSession, _digest(cookie_value))
    if found is not None:
        found.last_seen_at = now


def end(session: Session, cookie_value: str) -> None:
    session.execute(delete(PortalSession).where(PortalSession.id_hash == _digest(cookie_value)))


def sweep(session: Session, now: datetime) -> None:
    """Forget sessions past their absolute lifetime (run at each sign-in)."""
    session.execute(delete(PortalSession).where(PortalSession.expires_at <= now))


def csrf_matches(expected: str, given: str | None) -> bool:
    return given is not None and secrets.compare_digest(expected.encode(), given.encode())
