"""Authorization codes and refresh tokens in the store: issued as random strings shown once,
kept as their SHA-256, each redeemed once.

A code lives ten minutes (Entra ID's lifetime; RFC 6749 §4.1.2 says at most ten). Redeeming a
code starts a refresh-token *family*; each refresh token is single use and its redemption
issues the next of the family. A replayed code or refresh token revokes the whole family, as
the OAuth 2.0 Security BCP (§4.14.2) recommends: one of the two parties holding it is not the
client. (Entra ID lets a refresh token be used more than once; single use is a documented
divergence.)
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from dicomite.store.tables import AuthorizationCode, RefreshToken

CODE_LIFETIME = timedelta(minutes=10)
SPA_REFRESH_LIFETIME = timedelta(hours=24)  # fixed: a SPA's family ends a day after sign-in
REFRESH_LIFETIME = timedelta(days=90)  # sliding: each redemption starts the 90 days again
SPA = "spa"


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(48)


@dataclass(frozen=True)
class CodeGrant:
    """What an authorization code stands for."""

    tenant_id: str
    client_app_id: str
    user_id: str
    redirect_uri: str
    platform: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    authenticated_at: datetime


def issue_code(session: Session, grant: CodeGrant, now: datetime) -> str:
    code = new_secret()
    session.add(
        AuthorizationCode(
            code_hash=digest(code),
            tenant_id=grant.tenant_id,
            client_app_id=grant.client_app_id,
            user_id=grant.user_id,
            redirect_uri=grant.redirect_uri,
            platform=grant.platform,
            scope=grant.scope,
            nonce=grant.nonce,
            code_challenge=grant.code_challenge,
            authenticated_at=grant.authenticated_at,
            expires_at=now + CODE_LIFETIME,
        )
    )
    sweep(session, now)
    return code


def mark_code_redeemed(session: Session, code_hash: str, family_id: str, now: datetime) -> bool:
    """Whether this call redeemed the code (False: another redemption came first)."""
    result = session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.code_hash == code_hash, AuthorizationCode.redeemed_at.is_(None))
        .values(redeemed_at=now, family_id=family_id)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def issue_refresh(session: Session, family: RefreshToken, now: datetime) -> str:
    """The next refresh token of ``family`` (an unsaved row holding the family's fields)."""
    token = new_secret()
    expires = family.expires_at if family.platform == SPA else now + REFRESH_LIFETIME
    session.add(
        RefreshToken(
            token_hash=digest(token),
            family_id=family.family_id,
            tenant_id=family.tenant_id,
            client_app_id=family.client_app_id,
            user_id=family.user_id,
            platform=family.platform,
            scope=family.scope,
            authenticated_at=family.authenticated_at,
            issued_at=now,
            expires_at=expires,
        )
    )
    return token


def mark_refresh_used(session: Session, token_hash: str, now: datetime) -> bool:
    result = session.execute(
        update(RefreshToken)
        .where(RefreshToken.token_hash == token_hash, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def revoke_family(session: Session, family_id: str | None) -> None:
    if family_id is not None:
        session.execute(delete(RefreshToken).where(RefreshToken.family_id == family_id))


def sweep(session: Session, now: datetime) -> None:
    """Forget codes and refresh tokens past their lifetime (run as codes are issued)."""
    session.execute(delete(AuthorizationCode).where(AuthorizationCode.expires_at <= now))
    session.execute(delete(RefreshToken).where(RefreshToken.expires_at <= now))
