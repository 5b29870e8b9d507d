"""Alembic migrations: applied at every start, on both backends, and matching the models."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select

from dicomite.bootstrap import BOOTSTRAP_APP_NAME, Context, prepare
from dicomite.store.migrate import alembic_config
from dicomite.store.tables import Application, Base, SigningKey, Tenant
from tests.fixtures.stores import store_settings


def test_prepare_twice_applies_migrations_once(data_dir: Path, store_url: str) -> None:
    settings = store_settings(data_dir, store_url)
    prepare(settings).store.dispose()
    context = prepare(settings)
    try:
        with context.store.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
            tables = set(inspect(connection).get_table_names())
        with context.store.read() as session:
            tenants = session.scalar(select(func.count()).select_from(Tenant))
            keys = session.scalar(select(func.count()).select_from(SigningKey))
            bootstrap_apps = session.scalar(
                select(func.count()).where(Application.display_name == BOOTSTRAP_APP_NAME)
            )
    finally:
        context.store.dispose()
    assert current == set(ScriptDirectory.from_config(alembic_config()).get_heads())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables
    assert (tenants, keys, bootstrap_apps) == (1, 1, 1)


def test_migrations_match_the_models(context: Context) -> None:
    """Nothing for autogenerate to add: the migration scripts create exactly the tables."""
    with context.store.engine.connect() as connection:
        migration = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(migration, Base.metadata)
    assert differences == []
