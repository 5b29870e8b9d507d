"""Apply Alembic migrations at start.

On PostgreSQL a session-level advisory lock serialises concurrent starts on several hosts, so
two processes never run the same migration at once.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, func, select

from dicomite.store.db import Store, write_intent

MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 0x0D1C0117


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(store: Store) -> None:
    with store.engine.connect() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            connection.execute(select(func.pg_advisory_lock(_PG_MIGRATION_LOCK)))
            connection.commit()
        try:
            # On SQLite the write lock, taken at BEGIN, plays the advisory lock's part: a
            # second process waits instead of failing when its read snapshot goes stale.
            with write_intent():
                command.upgrade(alembic_config(connection), "head")
            connection.commit()
        finally:
            if postgres:
                connection.execute(select(func.pg_advisory_unlock(_PG_MIGRATION_LOCK)))
                connection.commit()
