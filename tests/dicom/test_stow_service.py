"""The STOW core in-process: what the wire cannot show deterministically."""

from __future__ import annotations

import errno
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError

from dicomite.bootstrap import Context
from dicomite.dicom.blobs import BlobWriter, FileSystemBlobStore
from dicomite.dicom.errors import InsufficientStorage
from dicomite.dicom.stow import StowRequest, StowService, out_of_space
from dicomite.dicom.stow_results import Reason
from dicomite.dicom.stow_upload import PartUpload
from dicomite.store.db import Store
from tests.fixtures.dicom import make_dataset, multipart, stow_headers, to_bytes
from tests.fixtures.loops import run_async

REQUEST = StowRequest(1, None, False, "https://localhost/dicom/v1")


def _received(blobs: FileSystemBlobStore, data: bytes) -> PartUpload:
    upload = PartUpload(blobs, 1024**3)
    run_async(upload.write, data)
    return upload


def test_instance_claimed_by_another_request_is_45071(context: Context, tmp_path: Path) -> None:
    blobs = FileSystemBlobStore(tmp_path / "blobs")
    service = StowService(context.store, blobs, 1024**3)
    dataset = make_dataset()
    data = to_bytes(dataset)
    uids = (dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID)
    other, mine = object(), object()
    assert service.in_flight.claim(uids, other)  # another request is storing this instance
    upload = _received(blobs, data)
    part = service.commit_part(REQUEST, upload, mine)
    assert (part.result.failure, part.new) == (Reason.PENDING, None)
    assert blobs.size(upload.key) is None  # the refused blob is gone
    service.in_flight.release(uids, other)
    upload = _received(blobs, data)
    part = service.commit_part(REQUEST, upload, mine)
    assert part.result.failure is None
    assert service.in_flight.claim(uids, mine)  # a request's own claim does not refuse it
    assert not service.in_flight.claim(uids, other)
    service.index_batch(REQUEST, [part], mine)
    assert blobs.size(upload.key) == len(data)
    assert service.in_flight.claim(uids, other)  # released once indexed


class _FullFolder(FileSystemBlobStore):
    """A folder store on a file system that fills up once ``room`` blobs are written."""

    def __init__(self, root: Path, room: int) -> None:
        super().__init__(root)
        self.room = room

    def writer(self, key: str, size: int | None = None) -> BlobWriter:
        writer = super().writer(key, size)
        if self.room > 0:
            self.room -= 1
            return writer

        def full(*, sync_name: bool = True) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        writer.commit = full  # type: ignore[method-assign]
        return writer


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


def test_a_full_file_system_is_507_and_leaves_no_files(context: Context, tmp_path: Path) -> None:
    blobs = _FullFolder(tmp_path / "blobs", room=0)
    service = StowService(context.store, blobs, 1024**3)
    body = multipart(*(to_bytes(make_dataset()) for _ in range(3)))
    headers = {name.lower(): value for name, value in stow_headers().items()}
    with pytest.raises(InsufficientStorage) as raised:
        run_async(service.handle, REQUEST, headers, _body(body))
    assert raised.value.status == 507 and "out of storage space" in raised.value.message
    assert list(blobs.keys()) == []
    assert blobs.sweep_temporary(older_than_seconds=-1) == 0  # no partial file left behind


def test_a_full_database_is_out_of_space(tmp_path: Path) -> None:
    """SQLite answers SQLITE_FULL when the file may not grow (here: ``max_page_count``)."""
    store = Store(f"sqlite:///{tmp_path / 'full.db'}")
    with store.engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (v BLOB)")
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
        connection.exec_driver_sql(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(DBAPIError) as raised:
            connection.exec_driver_sql("INSERT INTO t VALUES (zeroblob(1000000))")
    assert out_of_space(raised.value)
    assert out_of_space(OSError(errno.EDQUOT, "quota"))
    assert not out_of_space(OSError(errno.EIO, "I/O error"))
    store.engine.dispose()
