"""Alembic environment: runs against the connection handed over by ``dicomite.store.migrate``."""

from __future__ import annotations

from alembic import context

from dicomite.store.tables import Base

connection = context.config.attributes["connection"]
before_commit = context.config.attributes.get("before_commit")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    # Alembic takes SQLite's DDL for non-transactional and commits after each migration, so a
    # second process, let in by the write lock between two of them, read an old version and
    # ran a migration again ("table … already exists"). SQLite's DDL is transactional: the
    # whole upgrade is one transaction, seen by others all at once or not at all.
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
    if before_commit is not None:
        before_commit()
