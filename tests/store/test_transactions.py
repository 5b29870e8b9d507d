"""``Store.transaction``, the one transaction helper (Core on its connection, and the ORM
sessions of ``Store.read``/``Store.write`` built on it), and ``Store.scalar``, the probe."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError

from dicomite.bootstrap import Context
from dicomite.clock import utcnow
from dicomite.store.db import Store
from dicomite.store.tables import Tenant
from tests.fixtures.postgres import PostgresServer

_OTHER_TENANT = "0b5e55ed-0000-4000-8000-000000000002"
_COUNT = select(func.count()).select_from(Tenant)


def _tenants(context: Context) -> int:
    with context.store.transaction() as db:
        return int(db.execute(_COUNT).scalar_one())


def _copy_tenant(tenant_id: str = _OTHER_TENANT) -> object:
    """A new tenant row copying the first one's creation time."""
    first = select(Tenant.created_at).limit(1).scalar_subquery()
    return insert(Tenant).values(
        id=tenant_id, domain=f"{tenant_id}.example", display_name="Other", created_at=first
    )


def test_reads_share_a_transaction_and_the_connection_goes_back_clean(context: Context) -> None:
    store = context.store
    before = _tenants(context)
    with store.transaction() as db:
        assert db.execute(_COUNT).scalar_one() == before
        # A write committed meanwhile by another connection: SQLite's read transaction keeps
        # its snapshot; PostgreSQL's is READ COMMITTED.
        with store.transaction(write=True) as other:
            other.execute(_copy_tenant())  # type: ignore[call-overload]
        seen = before if store.is_sqlite else before + 1
        assert db.execute(_COUNT).scalar_one() == seen
    assert _tenants(context) == before + 1
    assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_write_commits_when_its_block_ends(context: Context) -> None:
    before = _tenants(context)
    with context.store.transaction(write=True) as db:
        db.execute(_copy_tenant())  # type: ignore[call-overload]
        assert _tenants(context) == before  # not committed yet: other connections don't see it
    assert _tenants(context) == before + 1


def test_a_write_whose_block_raises_leaves_nothing(context: Context) -> None:
    before = _tenants(context)

    def failing_write() -> None:
        with context.store.transaction(write=True) as db:
            db.execute(_copy_tenant())  # type: ignore[call-overload]
            raise RuntimeError("the caller failed")

    with pytest.raises(RuntimeError):
        failing_write()
    assert _tenants(context) == before
    with context.store.transaction(write=True) as db:  # the pooled connection is clean
        db.execute(_copy_tenant())  # type: ignore[call-overload]
    assert _tenants(context) == before + 1


def _tenant(tenant_id: str, domain: str) -> Tenant:
    return Tenant(id=tenant_id, domain=domain, display_name=domain, created_at=utcnow())


def test_sessions_commit_through_the_helper(context: Context) -> None:
    before = _tenants(context)

    def failing_write() -> None:
        with context.store.write() as session:
            session.add(_tenant(_OTHER_TENANT, "a.example"))
            session.flush()
            session.add(_tenant(str(uuid.uuid4()), "a.example"))  # the same domain: refused

    with pytest.raises(IntegrityError):
        failing_write()
    assert _tenants(context) == before  # the first insert went with the failed transaction
    with context.store.write() as session:
        session.add(_tenant(_OTHER_TENANT, "a.example"))
    assert _tenants(context) == before + 1
    assert context.store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_read_session_never_sends_a_change(context: Context) -> None:
    before = _tenants(context)
    with context.store.read() as session:
        session.add(_tenant(_OTHER_TENANT, "a.example"))
        assert session.scalar(_COUNT) == before  # no autoflush before the query
    assert _tenants(context) == before


_STAMPS = select(func.transaction_timestamp(), func.statement_timestamp())
_PAUSE = select(func.pg_sleep(0.01))


def test_a_read_on_postgresql_takes_no_begin_or_rollback(postgres_server: PostgresServer) -> None:
    """A read's statements each run on their own (autocommit): under READ COMMITTED each
    statement of a transaction takes its own snapshot anyway. Seen from the server, a
    statement's transaction then starts with it; in a write, with the write's first one."""
    store = Store(postgres_server.create_database())
    try:
        with store.transaction() as db:
            db.execute(_PAUSE)
            began, now = db.execute(_STAMPS).one()
        assert began == now
        with store.read() as session:
            session.execute(_PAUSE)
            began, now = session.execute(_STAMPS).one()
        assert began == now
        with store.transaction(write=True) as db:  # the same pooled connection, set back
            db.execute(_PAUSE)
            began, now = db.execute(_STAMPS).one()
        assert began < now
        assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        store.dispose()


@pytest.mark.parametrize("write", ["transaction", "session"])
def test_a_write_takes_sqlites_write_lock_at_begin(tmp_path: Path, write: str) -> None:
    """``BEGIN IMMEDIATE``: two processes never deadlock upgrading read transactions."""
    store = Store(f"sqlite:///{tmp_path / 'index.db'}")
    other = sqlite3.connect(tmp_path / "index.db", timeout=0, isolation_level=None)
    opened = store.transaction(write=True) if write == "transaction" else store.write()
    try:
        with opened, pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again after the commit
        other.execute("ROLLBACK")
        with store.transaction():  # a read leaves the write lock free
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
    finally:
        other.close()
        store.dispose()


_VERSION = select(Tenant.directory_version).where(Tenant.id == bindparam("tenant"))


def test_the_probe_reads_outside_transactions_and_survives_a_broken_connection(
    context: Context,
) -> None:
    store = context.store
    tenant = context.tenant_id
    assert store.scalar(_VERSION, {"tenant": tenant}) is not None
    assert store.scalar(_VERSION, {"tenant": "none"}) is None
    # a write from another connection is seen at once: the probe holds no snapshot
    with store.write() as session:
        row = session.get_one(Tenant, tenant)
        row.directory_version += 1
        version = row.directory_version
    assert store.scalar(_VERSION, {"tenant": tenant}) == version
    probe = store._probe
    assert probe is not None
    probe.dbapi_connection.close()  # as a restart would
    assert store.scalar(_VERSION, {"tenant": tenant}) == version
