"""Column types that must behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from dicomite.bootstrap import Context
from dicomite.store.db import Store
from dicomite.store.tables import SignIn, Tenant

PARIS_SUMMER = timezone(timedelta(hours=2))


def _sign_in(created_at: datetime, tenant_id: str) -> SignIn:
    return SignIn(id=str(uuid.uuid4()), tenant_id=tenant_id, created_at=created_at, error_code=0)


def test_datetimes_come_back_aware_and_in_utc(context: Context) -> None:
    written = datetime(2025, 7, 1, 14, 30, 15, 123456, tzinfo=PARIS_SUMMER)
    row = _sign_in(written, context.tenant_id)
    with context.store.write() as session:
        session.add(row)
    reopened = Store(context.store.url)
    try:
        with reopened.read() as session:
            read = session.scalars(select(SignIn.created_at).where(SignIn.id == row.id)).one()
            tenant_created = session.scalars(select(Tenant.created_at)).one()
    finally:
        reopened.dispose()
    assert read == written
    assert read.tzinfo is not None and read.utcoffset() == timedelta(0)
    assert read.replace(tzinfo=None) == datetime(2025, 7, 1, 12, 30, 15, 123456)
    assert tenant_created.tzinfo is not None and tenant_created.utcoffset() == timedelta(0)


def test_datetimes_compare_in_queries_across_offsets(context: Context) -> None:
    base = datetime(2025, 1, 1, 12, tzinfo=UTC)
    with context.store.write() as session:
        session.add_all(_sign_in(base + timedelta(minutes=m), context.tenant_id) for m in range(3))
    since = (base + timedelta(minutes=1)).astimezone(PARIS_SUMMER)
    with context.store.read() as session:
        found = session.scalars(select(SignIn.created_at).where(SignIn.created_at >= since)).all()
    assert sorted(found) == [base + timedelta(minutes=1), base + timedelta(minutes=2)]


def test_naive_datetimes_are_refused(context: Context) -> None:
    with pytest.raises(StatementError, match="naive datetime"), context.store.write() as session:
        session.add(_sign_in(datetime(2025, 1, 1, 12), context.tenant_id))
