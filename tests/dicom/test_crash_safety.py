"""Blob first, index second: SIGKILL during concurrent uploads loses nothing acknowledged and
leaves no index row without its blob; the sweep removes what a crash leaves behind."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from pathlib import Path

import httpx
from pydicom.uid import generate_uid
from sqlalchemy import select

from dicomite.bootstrap import Context, open_context
from dicomite.clock import utcnow
from dicomite.dicom import index
from dicomite.dicom.blobs import FileSystemBlobStore
from dicomite.dicom.sweep import sweep
from dicomite.settings import Settings
from dicomite.store.tables import DicomInstance
from tests.fixtures.dicom import dicom_client, make_dataset, to_bytes, token_for
from tests.fixtures.directory import Admin
from tests.fixtures.server import Server

SINGLE_PART = {"Content-Type": "application/dicom"}


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
    new = index.NewInstance(
        study_uid=generate_uid(), series_uid=generate_uid(), sop_uid=generate_uid(),
        sop_class_uid="1.2.3", transfer_syntax_uid="1.2.840.10008.1.2.1", number_of_frames=1,
        blob_key=old_indexed, size=1, metadata={}, columns={},
    )  # fmt: skip
    with context.store.write() as session:
        index.store_instance(session, new, utcnow(), replace=False)
    assert sweep(context.store, blobs) == (0, 1)
    assert set(blobs.keys()) == {young_orphan, old_indexed}


def test_sigkill_during_concurrent_uploads(fresh_server: Server, tmp_path: Path) -> None:
    context = open_context(
        Settings(data_dir=fresh_server.data_dir, tenant_id=fresh_server.tenant_id)
    )
    app = Admin(context).register(roles=("Dicom.ReadWrite",))
    assert app.secret is not None
    token = token_for(fresh_server, app.app_id, app.secret)
    acknowledged: dict[str, tuple[str, str, bytes]] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def upload() -> None:
        with dicom_client(fresh_server, token) as client:
            while not stop.is_set():
                dataset = make_dataset(frames=20)
                data = to_bytes(dataset)
                try:
                    response = client.post("/studies", content=data, headers=SINGLE_PART)
                except httpx.HTTPError:
                    return
                if response.status_code == 200:
                    with lock:
                        acknowledged[dataset.SOPInstanceUID] = (
                            dataset.StudyInstanceUID, dataset.SeriesInstanceUID, data,
                        )  # fmt: skip

    threads = [threading.Thread(target=upload) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    fresh_server.stop(signal.SIGKILL)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert acknowledged

    blobs = FileSystemBlobStore(fresh_server.data_dir / "blobs")
    with context.store.read() as session:
        keys = session.scalars(select(DicomInstance.blob_key)).all()
    assert all(blobs.size(key) is not None for key in keys)  # no row without its blob
    context.store.dispose()

    fresh_server.start()
    with dicom_client(fresh_server, token) as client:
        for sop, (study, series, data) in acknowledged.items():
            path = f"/studies/{study}/series/{series}/instances/{sop}"
            got = client.get(path, headers={"Accept": "application/dicom; transfer-syntax=*"})
            assert got.status_code == 200 and got.content == data
