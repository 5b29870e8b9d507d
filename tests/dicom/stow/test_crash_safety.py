"""Blob first, index second: SIGKILL during concurrent uploads loses nothing acknowledged and
leaves no index row without its blob; the sweep removes what a crash leaves behind."""

from __future__ import annotations

import io
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid
from sqlalchemy import select

from dicomite.bootstrap import Context, open_context
from dicomite.clock import utcnow
from dicomite.dicom.blobs.folder import FileSystemBlobStore
from dicomite.dicom.blobs.sweep import sweep
from dicomite.dicom.index import write as index_write
from dicomite.services import open_blob_store
from dicomite.settings import Settings
from dicomite.store.tables import DicomInstance, DicomSeries, DicomStudy
from tests.dicom.conftest import DEPLOYMENTS
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

SINGLE_PART = {"Content-Type": "application/dicom"}
AS_STORED = {"Accept": "application/dicom; transfer-syntax=*"}


def _old_key(seconds_ago: float) -> str:
    millis = int((time.time() - seconds_ago) * 1000)
    value = uuid.UUID(int=(millis << 80) | (0x7 << 76) | (0x2 << 62) | uuid.uuid4().int >> 68)
    return f"instances/{str(value)[:8]}/{value}.dcm"


def test_sweep_removes_only_old_orphans(context: Context, tmp_path: Path) -> None:
    blobs = FileSystemBlobStore(tmp_path / "blobs")
    old_orphan, young_orphan, old_indexed = _old_key(7200), _old_key(10), _old_key(7200)
    for key in (old_orphan, young_orphan, old_indexed):
        with blobs.writer(key) as writer:
            writer.write(b"x")
            writer.commit()
    new = index_write.NewInstance(
        study_uid=generate_uid(),
        series_uid=generate_uid(),
        sop_uid=generate_uid(),
        sop_class_uid="1.2.3",
        transfer_syntax_uid="1.2.840.10008.1.2.1",
        number_of_frames=1,
        blob_key=old_indexed,
        size=1,
        metadata={},
        columns={},
    )
    with context.store.transaction(write=True) as db:
        index_write.store(db, [new], utcnow(), replace=False)
    assert sweep(context.store, blobs) == (0, 1)
    assert set(blobs.keys()) == {young_orphan, old_indexed}


@pytest.fixture(params=DEPLOYMENTS)
def crashing(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, Settings]]:
    """A server of the test's own, on the folder store with SQLite or on Azurite with PostgreSQL
    (``--blob-url`` and ``--database-url``), and the settings to inspect what it left behind."""
    environment: dict[str, str] = {}
    if request.param != "sqlite":
        postgres: PostgresServer = request.getfixturevalue("postgres_server")
        azurite: Azurite = request.getfixturevalue("azurite")
        environment = {
            "DICOMITE_DATABASE_URL": postgres.create_database(),
            "DICOMITE_BLOB_URL": azurite.new_url(),
        }
    running = make_server(tmp_path, extra_env=environment)
    settings = Settings(
        data_dir=running.data_dir,
        tenant_id=running.tenant_id,
        database_url=environment.get("DICOMITE_DATABASE_URL"),
        blob_url=environment.get("DICOMITE_BLOB_URL"),
    )
    running.start()
    yield running, settings
    running.stop()


def test_sigkill_during_concurrent_uploads(crashing: tuple[Server, Settings]) -> None:
    server, settings = crashing
    context = open_context(settings)
    app = Admin(context).register(roles=("Dicom.ReadWrite",))
    assert app.secret is not None
    token = token_for(server, app.app_id, app.secret)
    acknowledged: dict[str, tuple[str, str, bytes]] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def upload(parts: int) -> None:
        """Single-part requests, or multipart ones indexed as a batch (one name sync, one
        transaction for their instances)."""
        with dicom_client(server, token) as client:
            while not stop.is_set():
                datasets = [make_dataset(frames=20) for _ in range(parts)]
                data = [to_bytes(dataset) for dataset in datasets]
                try:
                    if parts == 1:
                        response = client.post("/studies", content=data[0], headers=SINGLE_PART)
                    else:
                        body = multipart(*data)
                        response = client.post("/studies", content=body, headers=stow_headers())
                except httpx.HTTPError:
                    return
                if response.status_code == 200:
                    with lock:
                        for dataset, content in zip(datasets, data, strict=True):
                            acknowledged[dataset.SOPInstanceUID] = (
                                dataset.StudyInstanceUID,
                                dataset.SeriesInstanceUID,
                                content,
                            )

    threads = [threading.Thread(target=upload, args=(n,)) for n in (1, 1, 3, 5)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    server.stop(signal.SIGKILL)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert acknowledged

    blobs = open_blob_store(settings.blob_dir, settings.blob_url)
    with context.store.read() as session:
        rows = session.execute(
            select(
                DicomStudy.study_uid,
                DicomSeries.series_uid,
                DicomInstance.sop_uid,
                DicomInstance.blob_key,
                DicomInstance.size,
            )
            .join(DicomSeries, DicomInstance.series_pk == DicomSeries.pk)
            .join(DicomStudy, DicomInstance.study_pk == DicomStudy.pk)
        ).all()
    assert set(acknowledged) <= {row.sop_uid for row in rows}
    for row in rows:  # no row without its blob, and no row pointing at a partial blob
        assert blobs.size(row.blob_key) == row.size
    close = getattr(blobs, "close", None)
    if close is not None:
        close()
    context.store.dispose()

    server.start()
    with dicom_client(server, token) as client:
        for sop, (study, series, data) in acknowledged.items():
            path = f"/studies/{study}/series/{series}/instances/{sop}"
            got = client.get(path, headers=AS_STORED)
            assert got.status_code == 200 and got.content == data
        for row in rows:  # indexed but never acknowledged: still whole, never a partial file
            if row.sop_uid not in acknowledged:
                path = f"/studies/{row.study_uid}/series/{row.series_uid}/instances/{row.sop_uid}"
                got = client.get(path, headers=AS_STORED)
                assert got.status_code == 200 and len(got.content) == row.size
                assert dcmread(io.BytesIO(got.content)).SOPInstanceUID == row.sop_uid
