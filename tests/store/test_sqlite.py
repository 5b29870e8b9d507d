"""SQLite settings that let several worker processes share one file."""

from __future__ import annotations

import sqlite3

import pytest

from dicomite.bootstrap import Context


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(context: Context) -> None:
    with context.store.engine.connect() as connection:
        pragmas = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
        }
    # synchronous 2 = FULL: every commit is on disk before the caller hears of it.
    assert pragmas == {
        "journal_mode": "wal",
        "busy_timeout": 30000,
        "foreign_keys": 1,
        "synchronous": 2,
    }
    # The mode is stored in the file: any other client opening it gets WAL too.
    database = context.settings.effective_database_url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as other:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
