"""Alembic migrations: applied at every start, on both backends, and matching the models."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    DateTime,
    Integer,
    String,
    column,
    func,
    insert,
    inspect,
    select,
    table,
)
from sqlalchemy.exc import IntegrityError

from dicomite.bootstrap import BOOTSTRAP_APP_NAME, Context, prepare
from dicomite.store.db import Store, sqlite_foreign_keys
from dicomite.store.migrate import alembic_config, upgrade
from dicomite.store.tables import (
    Application,
    Base,
    DicomPartition,
    DicomSeries,
    DicomStudy,
    SigningKey,
    Tenant,
)
from tests.fixtures.stores import sqlite_url, store_settings


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


def test_0006_gives_existing_applications_graphs_platform_defaults(
    data_dir: Path, store_url: str
) -> None:
    """An application registered before 0006 keeps its web redirect URIs and reads as Graph's
    defaults: no SPA or public-client URIs, no logout URL, implicit grant off, not public."""
    data_dir.mkdir(parents=True)
    store = Store(store_url)
    try:
        upgrade(store, "0005")
        with store.engine.begin() as connection:
            app_id = _insert_application(connection, redirect_uris=["https://localhost/cb"])
        upgrade(store)
        with store.read() as session:
            app = session.get_one(Application, app_id)
            got = (
                app.redirect_uris,
                app.spa_redirect_uris,
                app.public_client_redirect_uris,
                app.logout_url,
                app.enable_access_token_issuance,
                app.enable_id_token_issuance,
                app.is_fallback_public_client,
            )
        with store.engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0005")
            columns = {c["name"] for c in inspect(connection).get_columns("applications")}
    finally:
        store.dispose()
    assert got == (["https://localhost/cb"], [], [], None, False, False, False)
    assert "spa_redirect_uris" not in columns and "redirect_uris" in columns


# The two tables as release 0005 wrote them: Core constructs, not today's models.
_TENANTS = table(
    "tenants",
    column("id", String),
    column("domain", String),
    column("display_name", String),
    column("created_at", DateTime(timezone=True)),
    column("directory_version", Integer),
)
_APPLICATIONS_0005 = table(
    "applications",
    column("id", String),
    column("tenant_id", String),
    column("app_id", String),
    column("display_name", String),
    column("sign_in_audience", String),
    column("created_at", DateTime(timezone=True)),
    *(
        column(name, JSON)
        for name in (
            "identifier_uris",
            "app_roles",
            "oauth2_permission_scopes",
            "required_resource_access",
            "redirect_uris",
        )
    ),
)


def _insert_application(connection: Connection, redirect_uris: list[str]) -> str:
    tenant_id, app_id, now = str(uuid.uuid4()), str(uuid.uuid4()), datetime.now(UTC)
    tenant = {"domain": "old.example", "display_name": "old", "directory_version": 0}
    connection.execute(insert(_TENANTS).values(id=tenant_id, created_at=now, **tenant))
    names = ("identifier_uris", "app_roles", "oauth2_permission_scopes", "required_resource_access")
    lists: dict[str, list[str]] = {name: [] for name in names}
    connection.execute(
        insert(_APPLICATIONS_0005).values(
            id=app_id,
            tenant_id=tenant_id,
            app_id=str(uuid.uuid4()),
            display_name="registered before 0006",
            sign_in_audience="AzureADMyOrg",
            created_at=now,
            redirect_uris=redirect_uris,
            **lists,
        )
    )
    return app_id


_SERVICE_PRINCIPALS_0005 = table(
    "service_principals",
    column("id", String),
    column("tenant_id", String),
    column("app_id", String),
    column("application_id", String),
    column("display_name", String),
    column("created_at", DateTime(timezone=True)),
    column("app_roles", JSON),
    column("oauth2_permission_scopes", JSON),
    column("is_builtin", Boolean),
    column("account_enabled", Boolean),
)


def test_upgrades_keep_the_rows_that_refer_to_altered_tables(
    data_dir: Path, store_url: str
) -> None:
    """Altering a table on SQLite copies it into a new one; the drop of the old one must not
    cascade to the rows that refer to it (service principals of applications, applications of
    tenants)."""
    data_dir.mkdir(parents=True)
    store = Store(store_url)
    try:
        upgrade(store, "0005")
        with store.engine.begin() as connection:
            app_id = _insert_application(connection, redirect_uris=[])
            tenant_id = connection.scalar(
                select(_APPLICATIONS_0005.c.tenant_id).where(_APPLICATIONS_0005.c.id == app_id)
            )
            connection.execute(
                insert(_SERVICE_PRINCIPALS_0005).values(
                    id=str(uuid.uuid4()),
                    tenant_id=tenant_id,
                    app_id=str(uuid.uuid4()),
                    application_id=app_id,
                    display_name="its principal",
                    created_at=datetime.now(UTC),
                    app_roles=[],
                    oauth2_permission_scopes=[],
                    is_builtin=False,
                    account_enabled=True,
                )
            )
        upgrade(store)
        with store.engine.begin() as connection:
            counts = [
                connection.scalar(select(func.count()).select_from(t))
                for t in (_TENANTS, _APPLICATIONS_0005, _SERVICE_PRINCIPALS_0005)
            ]
    finally:
        store.dispose()
    assert counts == [1, 1, 1]


def test_an_upgrade_leaving_a_dangling_row_commits_nothing(data_dir: Path) -> None:
    """On SQLite the whole upgrade is one transaction, checked before it commits: a row whose
    foreign key refers to nothing rolls every migration back (and another process waiting on
    the write lock sees all of an upgrade or none of it)."""
    data_dir.mkdir(parents=True)
    store = Store(sqlite_url(data_dir))
    try:
        upgrade(store, "0005")
        with store.engine.connect() as connection:
            sqlite_foreign_keys(connection, enforced=False)
            connection.execute(
                insert(_SERVICE_PRINCIPALS_0005).values(
                    id=str(uuid.uuid4()),
                    tenant_id=str(uuid.uuid4()),  # no such tenant
                    app_id=str(uuid.uuid4()),
                    application_id=None,
                    display_name="dangling",
                    created_at=datetime.now(UTC),
                    app_roles=[],
                    oauth2_permission_scopes=[],
                    is_builtin=False,
                    account_enabled=True,
                )
            )
            connection.commit()
            sqlite_foreign_keys(connection, enforced=True)
        with pytest.raises(RuntimeError, match="service_principals"):
            upgrade(store)
        with store.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_heads()
    finally:
        store.dispose()
    assert current == ("0005",)


_STUDIES_0010 = table(
    "dicom_studies",
    column("pk", Integer),
    column("study_uid", String),
    column("attributes", String),
    column("updated_at", DateTime(timezone=True)),
)
_SERIES_0010 = table(
    "dicom_series",
    column("study_pk", Integer),
    column("series_uid", String),
    column("attributes", String),
    column("updated_at", DateTime(timezone=True)),
)


def test_0011_puts_the_existing_studies_in_microsoft_default(
    data_dir: Path, store_url: str
) -> None:
    """Data stored before partitions is partition 1's, its series kept; afterwards a study UID
    is unique per partition only."""
    data_dir.mkdir(parents=True)
    store = Store(store_url)
    now = datetime.now(UTC)
    try:
        upgrade(store, "0010")
        with store.engine.begin() as connection:
            row = {"study_uid": "1.2.3", "attributes": "{}", "updated_at": now}
            pk = connection.execute(insert(_STUDIES_0010).values(row).returning(column("pk")))
            series = {"series_uid": "1.2.3.4", "attributes": "{}", "updated_at": now}
            connection.execute(insert(_SERIES_0010).values(study_pk=pk.scalar_one(), **series))
        upgrade(store)
        with store.engine.begin() as connection:
            partitions = connection.execute(select(DicomPartition.key, DicomPartition.name)).all()
            keys = connection.scalars(select(DicomStudy.partition_key)).all()
            series_count = connection.scalar(select(func.count()).select_from(DicomSeries))
            connection.execute(insert(DicomPartition).values(key=2, name="p2", created_at=now))
            connection.execute(insert(DicomStudy).values(partition_key=2, **row))
        with pytest.raises(IntegrityError), store.engine.begin() as connection:
            connection.execute(insert(DicomStudy).values(partition_key=2, **row))
    finally:
        store.dispose()
    assert (partitions, keys, series_count) == ([(1, "Microsoft.Default")], [1], 1)


def test_0013_gives_existing_studies_their_modalities(data_dir: Path, store_url: str) -> None:
    """Studies stored before 0013 get ModalitiesInStudy from their series; a study without a
    modality keeps none."""
    data_dir.mkdir(parents=True)
    store = Store(store_url)
    now = datetime.now(UTC)
    series = table(
        "dicom_series",
        column("study_pk", Integer),
        column("series_uid", String),
        column("modality", String),
        column("attributes", String),
        column("updated_at", DateTime(timezone=True)),
    )
    try:
        upgrade(store, "0012")
        with store.engine.begin() as connection:
            pks = []
            for uid in ("1.2.3", "1.2.4"):
                row = {"study_uid": uid, "attributes": "{}", "updated_at": now}
                inserted = insert(_STUDIES_0010).values(row).returning(column("pk"))
                pks.append(connection.execute(inserted).scalar_one())
            rows = [
                (pks[0], f"1.2.3.{n}", modality) for n, modality in enumerate(["MR", "CT", "MR"])
            ]
            rows.append((pks[1], "1.2.4.1", None))
            for study_pk, uid, modality in rows:
                values = {"series_uid": uid, "attributes": "{}", "updated_at": now}
                connection.execute(
                    insert(series).values(study_pk=study_pk, modality=modality, **values)
                )
        upgrade(store)
        with store.engine.begin() as connection:
            rows = connection.execute(select(DicomStudy.study_uid, DicomStudy.modalities))
            found = dict(rows.all())
    finally:
        store.dispose()
    assert sorted(found["1.2.3"].split(",")) == ["CT", "MR"]
    assert found["1.2.4"] is None


def test_0014_keeps_finer_statistics_on_the_searched_study_columns(
    data_dir: Path, store_url: str
) -> None:
    """PostgreSQL keeps 1000 buckets on the study columns searched by range or prefix (its
    default of 100 misjudged one-week StudyDate ranges at a million instances); downgrading
    gives them the server's default back. SQLite has no such setting and is left as it is."""
    data_dir.mkdir(parents=True)
    store = Store(store_url)
    try:
        upgrade(store)
        targets = _statistics_targets(store)
        with store.engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0013")
        defaults = _statistics_targets(store)
    finally:
        store.dispose()
    if store_url.startswith("sqlite"):
        assert targets == defaults == {}
        return
    searched = {
        "study_date",
        "patient_name",
        "patient_name_words",
        "referring_physician_name",
        "referring_physician_name_words",
    }
    assert {name for name, target in targets.items() if target == 1000} == searched
    assert all(target in (-1, None) for target in defaults.values())


def _statistics_targets(store: Store) -> dict[str, int | None]:
    """pg_attribute's per-column target of dicom_studies' columns ({} on SQLite); -1 or NULL
    (PostgreSQL 17) is the default."""
    if store.engine.dialect.name != "postgresql":
        return {}
    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT attname, attstattarget FROM pg_attribute"
            " WHERE attrelid = 'dicom_studies'::regclass AND attnum > 0 AND NOT attisdropped"
        )
        return {str(name): target for name, target in rows}
