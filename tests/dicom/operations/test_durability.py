"""Operations are durable: a server killed (SIGKILL) in the middle of a reindex or an export
leaves it at its last checkpoint, and the server started again takes it up and finishes it, on
folder+SQLite and on Azurite+PostgreSQL."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select

from dicomite.bootstrap import open_context
from dicomite.dicom.operations import records
from dicomite.settings import Settings
from dicomite.store.db import Store
from dicomite.store.tables import DicomOperation
from tests.dicom.conftest import DEPLOYMENTS
from tests.dicom.http.test_management import wait_done
from tests.fixtures.azurite import Azurite
from tests.fixtures.dicom import (
    dicom_client,
    make_dataset,
    multipart,
    stow_headers,
    to_bytes,
    token_for,
)
from tests.fixtures.directory import Admin
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.server import Server, make_server

# Steps of this many instances (DICOMITE_DICOM_OPERATION_BATCH_SIZE, its least): a few hundred
# instances take tens of steps, long enough together for the test to halt one midway.
BATCH = 10
INSTANCES = 60 * BATCH  # six instances of each PatientAge: 60 steps, margin for a slow poller


@pytest.fixture(params=DEPLOYMENTS)
def killable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    environment = {"DICOMITE_DICOM_OPERATION_BATCH_SIZE": str(BATCH)}
    if request.param == "postgresql":
        postgres: PostgresServer = request.getfixturevalue("postgres_server")
        azurite: Azurite = request.getfixturevalue("azurite")
        environment["DICOMITE_DATABASE_URL"] = postgres.create_database()
        environment["DICOMITE_BLOB_URL"] = azurite.new_url()
    server = make_server(tmp_path, extra_env=environment)
    server.start()
    yield server
    server.stop()


def _fill(client: httpx.Client, count: int) -> None:
    study = generate_uid()
    for start in range(0, count, 100):
        parts = [
            to_bytes(make_dataset(study=study, frames=1, PatientAge=f"{n % 100:03d}Y"))
            for n in range(start, min(count, start + 100))
        ]
        response = client.post("/studies", content=multipart(*parts), headers=stow_headers())
        assert response.status_code == 200, response.text


def _halted_midway(store: Store, operation_id: str, stack: ExitStack) -> dict[str, Any]:
    """Holds the operation's row locked (SQLite: the write lock) once a step has committed and
    before the last, so the runner's next step cannot commit; the checkpoint then."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with ExitStack() as attempt:
            db = attempt.enter_context(store.transaction(write=True))
            status, state = db.execute(
                select(DicomOperation.status, DicomOperation.state)
                .where(DicomOperation.id == operation_id)
                .with_for_update()
            ).one()
            if status == records.RUNNING and state["cursor"] > 0:
                stack.push(attempt.pop_all())
                return dict(state)
            assert status in records.ACTIVE, status
        time.sleep(0.001)
    raise AssertionError("the reindex never passed its first step")


def test_a_reindex_killed_midway_resumes_after_a_restart(killable: Server) -> None:
    url = killable.env.get("DICOMITE_DATABASE_URL")
    settings = Settings(data_dir=killable.data_dir, tenant_id=killable.tenant_id, database_url=url)
    context = open_context(settings)
    app = Admin(context).register(roles=("Dicom.ReadWrite",))
    assert app.secret is not None
    tag = [{"path": "PatientAge", "level": "Instance"}]
    try:
        with dicom_client(killable, token_for(killable, app.app_id, app.secret)) as client:
            _fill(client, INSTANCES)
            href = client.post("/extendedquerytags", json=tag).json()["href"]
            with ExitStack() as held:
                checkpoint = _halted_midway(context.store, href.rsplit("/", 1)[1], held)
                killable.stop(signal.SIGKILL)
        assert 0 < checkpoint["done"] < INSTANCES
        killable.start()
        with dicom_client(killable, token_for(killable, app.app_id, app.secret)) as client:
            done = wait_done(client, href)
            assert (done["status"], done["percentComplete"]) == ("completed", 100)
            found = client.get("/instances", params={"PatientAge": "042Y", "limit": "200"})
            assert len(found.json()) == INSTANCES // 100
    finally:
        context.store.dispose()


EXPORTED = 20 * BATCH + 5


def _inodes(folder: Path) -> dict[Path, int]:
    return {path: path.stat().st_ino for path in folder.rglob("*.dcm")}


def test_an_export_killed_midway_resumes_without_copying_again_what_it_had(
    killable: Server,
) -> None:
    url = killable.env.get("DICOMITE_DATABASE_URL")
    settings = Settings(data_dir=killable.data_dir, tenant_id=killable.tenant_id, database_url=url)
    context = open_context(settings)
    app = Admin(context).register(roles=("Dicom.ReadWrite",))
    assert app.secret is not None
    body = {"destination": {"type": "folder", "settings": {"path": "all"}}}
    try:
        with dicom_client(killable, token_for(killable, app.app_id, app.secret)) as client:
            _fill(client, EXPORTED)
            href = client.post("/export", json=body).json()["href"]
            operation_id = href.rsplit("/", 1)[1]
            with ExitStack() as held:
                checkpoint = _halted_midway(context.store, operation_id, held)
                killable.stop(signal.SIGKILL)
        results = killable.data_dir / "exports" / "all" / operation_id / "results"
        before = _inodes(results)
        assert 0 < checkpoint["exported"] < EXPORTED
        killable.start()
        with dicom_client(killable, token_for(killable, app.app_id, app.secret)) as client:
            done = wait_done(client, href)
        assert done["results"]["exported"] == EXPORTED
        after = _inodes(results)
        assert len(after) == EXPORTED
        kept = [path for path, inode in before.items() if after[path] == inode]
        assert len(kept) >= checkpoint["exported"]
    finally:
        context.store.dispose()
