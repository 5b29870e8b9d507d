"""``Store.read_cursor``: a read transaction on a pooled DBAPI connection, without a session."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from dicomite.bootstrap import Context


def _tenants(context: Context) -> int:
    with context.store.read() as session:
        return int(session.execute(text("SELECT count(*) FROM tenants")).scalar_one())


def test_reads_share_a_transaction_and_the_connection_goes_back_clean(context: Context) -> None:
    store = context.store
    before = _tenants(context)
    with store.read_cursor() as cursor:
        assert cursor.rows("SELECT count(*) FROM tenants WHERE id <> ?", ["none"]) == [(before,)]
        # A write committed meanwhile by another connection: SQLite's read transaction keeps
        # its snapshot; PostgreSQL's is READ COMMITTED, as every session's is.
        with store.write() as session:
            session.execute(
                text("INSERT INTO tenants (id, domain, display_name, created_at, "
                     "directory_version) SELECT :id, 'other.example', 'Other', created_at, 0 "
                     "FROM tenants LIMIT 1"),
                {"id": "0b5e55ed-0000-4000-8000-000000000001"},
            )  # fmt: skip
        seen = before if store.is_sqlite else before + 1
        assert cursor.rows("SELECT count(*) FROM tenants", []) == [(seen,)]
    assert _tenants(context) == before + 1
    # Every pooled connection is back, none left in a transaction that would pin a snapshot.
    for _ in range(3):
        with store.read_cursor() as cursor:
            assert cursor.rows("SELECT count(*) FROM tenants", []) == [(before + 1,)]
    assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_driver_errors_are_raised_as_sqlalchemys(context: Context) -> None:
    """Callers catch SQLAlchemy's error classes: a driver cursor raises the same ones."""
    with context.store.read_cursor() as cursor:
        (tenant,) = cursor.rows("SELECT id FROM tenants", [])
        with pytest.raises(IntegrityError) as raised:
            cursor.execute(
                "INSERT INTO tenants (id, domain, display_name, created_at, directory_version)"
                " SELECT id, domain, display_name, created_at, 0 FROM tenants WHERE id = ?",
                [tenant[0]],
            )
        assert isinstance(raised.value.orig, context.store.engine.dialect.loaded_dbapi.Error)
        assert raised.value.hide_parameters  # bound values stay out of logs
    with context.store.read_cursor() as cursor, pytest.raises(DBAPIError):
        cursor.rows("SELECT no_such_column FROM tenants", [])


def test_a_connection_that_breaks_during_a_read_is_not_pooled_again(context: Context) -> None:
    with context.store.read_cursor() as cursor:
        cursor._cursor.connection.close()  # as a restarted database server would
    with context.store.read_cursor() as cursor:
        assert cursor.rows("SELECT 1", []) == [(1,)]
