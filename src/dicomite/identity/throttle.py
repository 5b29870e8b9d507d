"""Sign-in throttling in the store, so every worker and host sees it: Entra ID's smart lockout
idea, where failures from one address do not lock the account out for people elsewhere.

Three counts per attempt, each with its own limit:

- the account at this address: 5 failures lock that pair (the guesser, not the account);
- the address, over every account: 20 (one address spraying many names);
- the account, over every address: 50 (guessing spread over many addresses).

An address the account signed in from within 30 days is *familiar* to it: the per-account lock
does not hold there, so guessers spread over many addresses cannot keep the owner out of their
usual place (the other two counts still do).

The limit's failure locks its count for 60 s; each further failure doubles the lock (at most
15 minutes); the count starts over 15 minutes after its first failure, or after the end of its
last lock. Unknown names are counted alike, so a lock says nothing about whether an account
exists. IPv6 addresses are counted by their /64 network, which one host often holds whole.

The user codes people type at ``/devicelogin`` (the device authorization grant) have a count
of their own, wrong codes from one address (10), locked and released alike (``count_failure``).

An attempt is counted *before* its password is checked (``count_attempt``, one short write),
so attempts running at the same time cannot slip past a limit; a successful one is then
forgiven (``forgive``). Checking a lock (``wait_seconds``) is one read, and a locked attempt
writes nothing: refusing a flood costs no hash and no write lock.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dicomite.client_address import MAX_ADDRESS_LENGTH, parse_address
from dicomite.store.tables import SignInThrottle

WINDOW = timedelta(minutes=15)
FIRST_LOCK = timedelta(seconds=60)
MAX_LOCK = timedelta(minutes=15)
IPV6_PREFIX = 64
FAMILIAR_FOR = timedelta(days=30)
SWEEP_BATCH = 8  # expired rows forgotten per counted attempt (it adds at most three)


class Scope(StrEnum):
    ACCOUNT_AT_ADDRESS = "account-address"
    ADDRESS = "address"
    ACCOUNT = "account"
    FAMILIAR = "familiar"  # not a count: a recent success of the account at the address
    USER_CODE = "user-code"  # wrong device-login codes entered from an address


LIMITS = {
    Scope.ACCOUNT_AT_ADDRESS: 5,
    Scope.ADDRESS: 20,
    Scope.ACCOUNT: 50,
    Scope.USER_CODE: 10,
}


@dataclass(frozen=True, order=True)
class Key:
    """One count: the parts its scope does not use are empty."""

    scope: Scope
    name: str
    address: str


@dataclass(frozen=True)
class Counted:
    """What ``count_attempt`` did to one count, for ``forgive`` to undo."""

    key: Key
    new_lock: datetime | None  # the lock this attempt set, if it set one
    old_lock: datetime | None


Reservation = tuple[Counted, ...]


def keys_for(name: str, address: str) -> tuple[Key, ...]:
    """The three counts of an attempt."""
    where = address_key(address)
    return (
        Key(Scope.ACCOUNT_AT_ADDRESS, name, where),
        Key(Scope.ADDRESS, "", where),
        Key(Scope.ACCOUNT, name, ""),
    )


def familiar_key(name: str, address: str) -> Key:
    return Key(Scope.FAMILIAR, name, address_key(address))


def user_code_key(address: str) -> Key:
    return Key(Scope.USER_CODE, "", address_key(address))


def address_key(address: str) -> str:
    """The address as counted: an IPv6 address by its /64 network."""
    parsed = parse_address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, IPV6_PREFIX), strict=False))
    return str(parsed) if parsed is not None else address[:MAX_ADDRESS_LENGTH]


def load(session: Session, tenant_id: str, keys: Iterable[Key]) -> Sequence[SignInThrottle]:
    """The rows that exist of ``keys``: one primary-key lookup each, in one statement (each
    term names the whole key, so SQLite's OR optimisation searches the index per term)."""
    return session.scalars(select(SignInThrottle).where(or_(*_matches(tenant_id, keys)))).all()


def _matches(tenant_id: str, keys: Iterable[Key]) -> list[ColumnElement[bool]]:
    return [
        and_(
            SignInThrottle.tenant_id == tenant_id,
            SignInThrottle.scope == key.scope.value,
            SignInThrottle.user_principal_name == key.name,
            SignInThrottle.address == key.address,
        )
        for key in keys
    ]


def wait_seconds(rows: Iterable[SignInThrottle], now: datetime) -> int:
    """How long the longest lock among ``rows`` still holds; 0 when none does. A familiar
    row among them lifts the per-account lock."""
    rows = list(rows)
    familiar = any(r.scope == Scope.FAMILIAR and r.expires_at > now for r in rows)
    lifted = {Scope.FAMILIAR.value} | ({Scope.ACCOUNT.value} if familiar else set())
    ends = [
        r.locked_until
        for r in rows
        if r.scope not in lifted and r.locked_until and r.locked_until > now
    ]
    return math.ceil((max(ends) - now).total_seconds()) if ends else 0


def count_attempt(
    session: Session, tenant_id: str, keys: Iterable[Key], familiar: Key, now: datetime
) -> Reservation | int:
    """Count one attempt as a failure on every key (in a write session), or return the
    seconds to wait when a key is locked (then the caller rolls back: nothing is counted).

    Rows are taken in key order, each locked on PostgreSQL, so concurrent attempts queue per
    count and never deadlock; on SQLite the write transaction already runs alone."""
    rows = [(key, _row_for_update(session, tenant_id, key, now)) for key in sorted(keys)]
    known = session.scalars(_by_key(tenant_id, familiar)).all()
    wait = wait_seconds([*(row for _, row in rows), *known], now)
    if wait:
        return wait
    counted = tuple(_count(key, row, now) for key, row in rows)
    _sweep_some(session, now)
    return counted


def count_failure(session: Session, tenant_id: str, key: Key, now: datetime) -> int:
    """Count one failure on ``key`` alone (in a write session), as ``count_attempt`` counts
    each of its keys; the seconds the count is locked for now, 0 when it is not."""
    row = _row_for_update(session, tenant_id, key, now)
    _count(key, row, now)
    _sweep_some(session, now)
    return wait_seconds([row], now)


def _row_for_update(session: Session, tenant_id: str, key: Key, now: datetime) -> SignInThrottle:
    insert = _dialect(session).insert(SignInThrottle).values(_values(tenant_id, key, now + WINDOW))
    session.execute(insert.on_conflict_do_nothing())
    return session.scalars(_by_key(tenant_id, key).with_for_update()).one()


def _values(tenant_id: str, key: Key, expires_at: datetime) -> dict[str, object]:
    return {
        "tenant_id": tenant_id,
        "scope": key.scope.value,
        "user_principal_name": key.name,
        "address": key.address,
        "failures": 0,
        "expires_at": expires_at,
    }


def _dialect(session: Session) -> Any:
    """The dialect module whose ``insert`` has ``on_conflict_do_*`` for this database."""
    return postgresql if session.get_bind().dialect.name == "postgresql" else sqlite


def _by_key(tenant_id: str, key: Key) -> Select[SignInThrottle]:
    return select(SignInThrottle).where(*_matches(tenant_id, [key]))


def _count(key: Key, row: SignInThrottle, now: datetime) -> Counted:
    old_lock = row.locked_until
    if row.expires_at <= now:
        row.failures, row.locked_until = 0, None
    row.failures += 1
    if row.failures >= LIMITS[key.scope]:
        row.locked_until = now + lock_duration(row.failures, LIMITS[key.scope])
    new_lock = row.locked_until if row.locked_until != old_lock else None
    if row.failures == 1:
        row.expires_at = now + WINDOW
    elif new_lock is not None:
        row.expires_at = new_lock + WINDOW  # quiet since the end of the lock
    return Counted(key, new_lock, old_lock)


def forgive(
    session: Session, tenant_id: str, reservation: Reservation, familiar: Key, now: datetime
) -> None:
    """Undo a counted attempt whose password was right: the account at this address starts
    over; the other counts lose this attempt (and the lock it set, if any); the address is
    familiar to the account for the next 30 days."""
    for counted in sorted(reservation, key=lambda c: c.key):
        row = session.scalars(_by_key(tenant_id, counted.key).with_for_update()).one_or_none()
        if row is None:
            continue
        if counted.key.scope is Scope.ACCOUNT_AT_ADDRESS:
            session.delete(row)
            continue
        row.failures = max(row.failures - 1, 0)
        if counted.new_lock is not None and row.locked_until == counted.new_lock:
            row.locked_until = counted.old_lock
    _remember(session, tenant_id, familiar, now + FAMILIAR_FOR)
    session.flush()


def _remember(session: Session, tenant_id: str, familiar: Key, until: datetime) -> None:
    values = _values(tenant_id, familiar, until)
    insert = _dialect(session).insert(SignInThrottle).values(values)
    index = ["tenant_id", "scope", "user_principal_name", "address"]
    session.execute(insert.on_conflict_do_update(index_elements=index, set_={"expires_at": until}))


def _sweep_some(session: Session, now: datetime) -> None:
    """Forget a few rows whose time has passed, so the table holds about what the last
    window counted, however long a flood lasts. Rows another attempt holds are skipped
    (PostgreSQL); the attempt's own rows have just been given a new expiry."""
    key = tuple_(
        SignInThrottle.tenant_id,
        SignInThrottle.scope,
        SignInThrottle.user_principal_name,
        SignInThrottle.address,
    )
    expired = (
        select(*key.clauses)
        .where(SignInThrottle.expires_at <= now)
        .limit(SWEEP_BATCH)
        .with_for_update(skip_locked=True)
    )
    session.execute(delete(SignInThrottle).where(key.in_(expired)))


def lock_duration(failures: int, limit: int) -> timedelta:
    """60 s at the limit's failure, doubled at each one after it, at most 15 minutes."""
    doublings = min(max(failures - limit, 0), 10)
    return min(FIRST_LOCK * (1 << doublings), MAX_LOCK)
