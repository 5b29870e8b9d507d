"""The device authorization grant (RFC 8628) as Entra ID offers it to tools on machines without
a browser, framework-free:

1. The device asks the device authorization endpoint for codes (``authorize``, §3.1-3.2),
   naming its client and the scopes it wants.
2. The person opens the verification URI (``/devicelogin``) elsewhere, types the user code
   (``look_up``), signs in, confirms and consents; the code is then ``approve``d or ``deny``d.
3. Meanwhile the device polls the token endpoint (``poll``, §3.4-3.5): pending until the person
   decides; an approval gives its tokens once (``take``).

Both codes are stored as SHA-256 only. A user code is 9 characters from an alphabet without
look-alikes (no I, O, 0 or 1): 32^9, about 3.5·10^13 codes, of which a few are pending at a
time; wrong codes are counted per client address (``throttle``), so guessing one is hopeless.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dicomite.identity import throttle
from dicomite.identity.codes import digest, new_secret
from dicomite.identity.delegation import requested
from dicomite.identity.directory import find_application_by_app_id
from dicomite.identity.errors import AppNotFound, MissingParameter, TokenError
from dicomite.identity.scopes import parse_scope
from dicomite.identity.user_errors import (
    AuthorizationDeclined,
    AuthorizationPending,
    BadVerificationCode,
    ExpiredToken,
    SlowDown,
)
from dicomite.store.tables import DeviceCode

DEVICE_LOGIN = "/devicelogin"  # the verification URI's path, under the public URL
LIFETIME = timedelta(minutes=15)  # Entra ID's expires_in
INTERVAL_SECONDS = 5
SLOW_DOWN_SECONDS = 5  # RFC 8628 §3.5: added to the interval at each slow_down
POLL_LEEWAY = timedelta(seconds=1)  # request latencies vary: a poll may arrive a bit early
USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
USER_CODE_LENGTH = 9
MAX_TYPED = 32
PENDING, APPROVED, DENIED = "pending", "approved", "denied"
WRONG_CODE = "That code didn't work. Check the code and try again."


def authorize(
    session: Session, tenant_id: str, form: Mapping[str, str], public_url: str, now: datetime
) -> dict[str, Any]:
    """The device authorization response (§3.2) in Entra ID's shape."""
    client_id = form.get("client_id")
    if not client_id:
        raise MissingParameter(parameter="client_id")
    if find_application_by_app_id(session, tenant_id, client_id) is None:
        raise AppNotFound(app_id=client_id[:100], tenant=tenant_id)
    scope = " ".join((form.get("scope") or "").split())
    requested(session, tenant_id, parse_scope(scope))  # unknown resources are refused now
    device_code, user_code = new_secret(), new_user_code()
    session.add(
        DeviceCode(
            device_code_hash=digest(device_code),
            user_code_hash=digest(user_code),
            tenant_id=tenant_id,
            client_app_id=client_id,
            scope=scope,
            state=PENDING,
            expires_at=now + LIFETIME,
            interval_seconds=INTERVAL_SECONDS,
        )
    )
    sweep(session, now)
    uri = f"{public_url}{DEVICE_LOGIN}"
    return {
        "user_code": user_code,
        "device_code": device_code,
        "verification_uri": uri,
        "expires_in": int(LIFETIME.total_seconds()),
        "interval": INTERVAL_SECONDS,
        "message": (
            f"To sign in, use a web browser to open the page {uri} and enter the code "
            f"{user_code} to authenticate."
        ),
    }


def new_user_code() -> str:
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


def normalized(typed: str) -> str:
    """A user code as typed, read leniently (RFC 8628 §6.1): case, spaces and dashes ignored."""
    return "".join(typed.upper().replace("-", "").split())


# The person at /devicelogin ------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """A typed code that leads nowhere: what to tell the person."""

    message: str
    status: int
    retry_after_seconds: int = 0


def look_up(
    session: Session, tenant_id: str, typed: str, address: str, now: datetime
) -> DeviceCode | Refused:
    """The pending device authorization of a typed user code (in a write session: a wrong code
    is counted against ``address``, and a locked address is refused before any lookup)."""
    key = throttle.user_code_key(address)
    wait = throttle.wait_seconds(throttle.load(session, tenant_id, [key]), now)
    if wait:
        return _too_many(wait)
    found = _pending(session, tenant_id, normalized(typed[:MAX_TYPED]), now)
    if found is not None:
        return found
    wait = throttle.count_failure(session, tenant_id, key, now)
    return _too_many(wait) if wait else Refused(WRONG_CODE, 400)


def _too_many(wait: int) -> Refused:
    message = f"You've entered too many wrong codes. Try again in {wait} seconds."
    return Refused(message, 429, wait)


def _pending(session: Session, tenant_id: str, code: str, now: datetime) -> DeviceCode | None:
    if len(code) != USER_CODE_LENGTH:
        return None
    # Locked until the decision commits (PostgreSQL): two people cannot both decide it.
    row = session.scalar(
        select(DeviceCode).where(DeviceCode.user_code_hash == digest(code)).with_for_update()
    )
    if row is None or row.tenant_id != tenant_id or row.state != PENDING or row.expires_at <= now:
        return None
    return row


def approve(row: DeviceCode, user_id: str, authenticated_at: datetime) -> None:
    row.state, row.user_id, row.authenticated_at = APPROVED, user_id, authenticated_at


def deny(row: DeviceCode) -> None:
    row.state = DENIED


# The device at the token endpoint ------------------------------------------------------------


@dataclass(frozen=True)
class Approval:
    tenant_id: str
    client_app_id: str
    user_id: str
    scope: str
    authenticated_at: datetime


def poll(session: Session, device_code_hash: str, now: datetime) -> TokenError | None:
    """None once the person approved; else the answer to this poll, which is recorded (the
    caller commits it before answering)."""
    row = session.get(DeviceCode, device_code_hash)
    if row is None:
        return BadVerificationCode()  # taken by a concurrent poll
    if row.expires_at <= now:
        return ExpiredToken()
    if row.state == APPROVED:
        return None
    if row.state == DENIED:
        return AuthorizationDeclined()
    interval = timedelta(seconds=row.interval_seconds)
    too_soon = row.polled_at is not None and now - row.polled_at < interval - POLL_LEEWAY
    row.polled_at = now
    if too_soon:
        row.interval_seconds += SLOW_DOWN_SECONDS
        return SlowDown(interval=str(row.interval_seconds))
    return AuthorizationPending()


def client_of(session: Session, device_code_hash: str, tenant_id: str) -> tuple[str, bool]:
    """The client a device code was issued to, and whether it is public now: an app that
    allows public client flows (``isFallbackPublicClient``, which Entra ID reads for flows
    without a redirect URI)."""
    row = session.get(DeviceCode, device_code_hash)
    if row is None or row.tenant_id != tenant_id:
        raise BadVerificationCode()
    app = find_application_by_app_id(session, tenant_id, row.client_app_id)
    return row.client_app_id, app is not None and app.is_fallback_public_client


def take(session: Session, device_code_hash: str) -> Approval:
    """The approval, consumed: its tokens are issued once."""
    row = session.get(DeviceCode, device_code_hash)
    if row is None or row.user_id is None or row.authenticated_at is None:
        raise BadVerificationCode()
    approval = Approval(
        row.tenant_id, row.client_app_id, row.user_id, row.scope, row.authenticated_at
    )
    taken = session.execute(
        delete(DeviceCode).where(
            DeviceCode.device_code_hash == device_code_hash, DeviceCode.state == APPROVED
        )
    )
    if not taken.rowcount:  # type: ignore[attr-defined]
        raise BadVerificationCode()
    return approval


def sweep(session: Session, now: datetime) -> None:
    """Forget device codes a lifetime after they expired: until then a late poll is told
    ``expired_token`` rather than ``bad_verification_code``."""
    session.execute(delete(DeviceCode).where(DeviceCode.expires_at <= now - LIFETIME))
