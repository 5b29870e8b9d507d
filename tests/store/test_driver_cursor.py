"""``Store.read_cursor`` and ``Store.write_cursor``: transactions on a pooled DBAPI connection,
without a session."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from dicomite.bootstrap import Context
from dicomite.store.db import Store


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
                text(
                    "INSERT INTO tenants (id, domain, display_name, created_at, "
                    "directory_version) SELECT :id, 'other.example', 'Other', created_at, 0 "
                    "FROM tenants LIMIT 1"
                ),
                {"id": "0b5e55ed-0000-4000-8000-000000000001"},
            )
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


_OTHER_TENANT = "0b5e55ed-0000-4000-8000-000000000002"
_COPY_TENANT = (
    "INSERT INTO tenants (id, domain, display_name, created_at, directory_version)"
    " SELECT ?, 'other.example', 'Other', created_at, 0 FROM tenants LIMIT 1"
)


def test_a_write_commits_when_its_block_ends(context: Context) -> None:
    before = _tenants(context)
    with context.store.write_cursor() as cursor:
        cursor.execute(_COPY_TENANT, [_OTHER_TENANT])
        assert _tenants(context) == before  # not committed yet: other connections don't see it
    assert _tenants(context) == before + 1
    assert context.store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_write_whose_block_raises_leaves_nothing(context: Context) -> None:
    before = _tenants(context)

    def failing_write() -> None:
        with context.store.write_cursor() as cursor:
            cursor.execute(_COPY_TENANT, [_OTHER_TENANT])
            raise RuntimeError("the caller failed")

    with pytest.raises(RuntimeError):
        failing_write()
    assert _tenants(context) == before
    with context.store.write_cursor() as cursor:  # the pooled connection is clean
        cursor.execute(_COPY_TENANT, [_OTHER_TENANT])
    assert _tenants(context) == before + 1


def test_a_failing_commit_is_raised_as_sqlalchemys_error_and_rolls_back(
    context: Context,
) -> None:
    before = _tenants(context)

    def write_breaking_a_deferred_constraint() -> None:
        with context.store.write_cursor() as cursor:
            cursor.execute(_COPY_TENANT, [_OTHER_TENANT])
            cursor.execute(  # a constraint checked at COMMIT, on both databases
                "CREATE TEMPORARY TABLE nodes (id INTEGER PRIMARY KEY, parent INTEGER"
                " REFERENCES nodes (id) DEFERRABLE INITIALLY DEFERRED)",
                [],
            )
            cursor.execute("INSERT INTO nodes (id, parent) VALUES (?, ?)", [1, 2])

    with pytest.raises(IntegrityError):
        write_breaking_a_deferred_constraint()
    assert _tenants(context) == before
    assert context.store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_write_takes_sqlites_write_lock_at_begin(tmp_path: Path) -> None:
    """As the sessions' writes do (``BEGIN IMMEDIATE``): two processes never deadlock upgrading
    read transactions to writes."""
    store = Store(f"sqlite:///{tmp_path / 'index.db'}")
    other = sqlite3.connect(tmp_path / "index.db", timeout=0, isolation_level=None)
    try:
        with store.write_cursor(), pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again after the commit
        other.execute("ROLLBACK")
    finally:
        other.close()
        store.dispose()
