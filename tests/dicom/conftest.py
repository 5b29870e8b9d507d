"""The DICOM tests run twice (issue 3's acceptance): on the shared server (folder blob store,
SQLite), and on a server of their own with Azure Blob Storage (Azurite) on PostgreSQL (markers
``postgres`` and ``azurite``; ``-m "not postgres"`` skips it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dicomite.bootstrap import open_context
from dicomite.settings import Settings
from tests.fixtures.azurite import Azurite
from tests.fixtures.directory import Admin
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.server import Server, make_server

DEPLOYMENTS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql", id="postgresql-azurite", marks=[pytest.mark.postgres, pytest.mark.azurite]
    ),
]


@pytest.fixture(scope="session", params=DEPLOYMENTS)
def server(
    request: pytest.FixtureRequest, server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    if request.param == "sqlite":
        yield server
        return
    postgres: PostgresServer = request.getfixturevalue("postgres_server")
    azurite: Azurite = request.getfixturevalue("azurite")
    environment = {
        "DICOMITE_DATABASE_URL": postgres.create_database(),
        "DICOMITE_BLOB_URL": azurite.new_url(),
    }
    running = make_server(tmp_path_factory.mktemp("dicom-pg"), extra_env=environment)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def admin(server: Server) -> Iterator[Admin]:
    url = server.env.get("DICOMITE_DATABASE_URL")
    settings = Settings(data_dir=server.data_dir, tenant_id=server.tenant_id, database_url=url)
    context = open_context(settings)
    yield Admin(context)
    context.store.dispose()
