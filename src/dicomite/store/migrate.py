"""Apply Alembic migrations at start.

On PostgreSQL a session-level advisory lock serialises concurrent starts on several hosts, so
two processes never run the same migration at once.

On SQLite, altering a table means copying it into a new one and dropping the old (Alembic's
batch mode); with foreign keys enforced, that drop deletes every row referring to the table
through ``ON DELETE CASCADE``. So migrations run with enforcement off (the pragma only takes
effect outside a transaction, https://www.sqlite.org/foreignkeys.html §2) and
``PRAGMA foreign_key_check`` must find nothing dangling before they commit.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, func, select

from dicomite.store.db import (
    Store,
    sqlite_dangling_reference,
    sqlite_foreign_keys,
    write_intent,
)

MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 0x0D1C0117


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(store: Store, revision: str = "head") -> None:
    with store.engine.connect() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            connection.execute(select(func.pg_advisory_lock(_PG_MIGRATION_LOCK)))
            connection.commit()
        else:
            sqlite_foreign_keys(connection, enforced=False)
        config = alembic_config(connection)
        if not postgres:
            config.attributes["before_commit"] = lambda: _no_dangling_reference(connection)
        try:
            # On SQLite the write lock, taken at BEGIN, plays the advisory lock's part: a
            # second process waits instead of failing when its read snapshot goes stale.
            with write_intent():
                command.upgrade(config, revision)
            connection.commit()
        finally:
            if postgres:
                connection.execute(select(func.pg_advisory_unlock(_PG_MIGRATION_LOCK)))
                connection.commit()
            else:
                connection.rollback()
                sqlite_foreign_keys(connection, enforced=True)


def _no_dangling_reference(connection: Connection) -> None:
    """Run inside the migrations' transaction: a dangling row rolls them all back."""
    dangling = sqlite_dangling_reference(connection)
    if dangling is not None:
        raise RuntimeError(f"a migration left a row of {dangling} referring to nothing")
