"""The STOW core in-process: what the wire cannot show deterministically."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from dicomite.bootstrap import Context
from dicomite.dicom.blobs.folder import FileSystemBlobStore
from dicomite.dicom.blobs.protocol import BlobWriter
from dicomite.dicom.errors import InsufficientStorage
from dicomite.dicom.index.extended_tags import Indexed
from dicomite.dicom.stow.results import Reason
from dicomite.dicom.stow.service import StowRequest, StowService, out_of_space
from dicomite.dicom.stow.upload import PartUpload
from dicomite.store.db import Store
from dicomite.store.tables import DicomInstance
from tests.fixtures.dicom import make_dataset, multipart, stow_headers, to_bytes
from tests.fixtures.loops import run_async

REQUEST = StowRequest(1, None, False, "https://localhost/dicom/v1")


def started(service: StowService, request: StowRequest = REQUEST) -> StowRequest:
    """``request`` as ``StowService.handle`` starts it: with the query tags its parts are
    checked against."""
    return replace(request, indexed=service.tags.current())


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
    part = service.commit_part(started(service), upload, mine)
    assert (part.result.failure, part.new) == (Reason.PENDING, None)
    assert blobs.size(upload.key) is None  # the refused blob is gone
    service.in_flight.release(uids, other)
    upload = _received(blobs, data)
    part = service.commit_part(started(service), upload, mine)
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


def test_a_request_reads_the_extended_query_tags_once(
    context: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once when it starts, not once per part: parts are checked in several threads at once."""
    service = StowService(context.store, FileSystemBlobStore(tmp_path / "blobs"), 1024**3)
    reads: list[Indexed] = []
    read = service.tags.current
    monkeypatch.setattr(service.tags, "current", lambda: reads.append(read()) or reads[-1])
    body = multipart(*(to_bytes(make_dataset()) for _ in range(3)))
    headers = {name.lower(): value for name, value in stow_headers().items()}
    outcome = run_async(service.handle, REQUEST, headers, _body(body))
    assert [result.failure for result in outcome.results] == [None] * 3
    assert len(reads) == 1
    assert REQUEST.indexed is None  # the caller's request is left as it was


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


class _SlowNames(FileSystemBlobStore):
    """Records whether the index showed an instance while the blobs' names were being synced
    (slowly); optionally fails the sync."""

    def __init__(self, root: Path, store: Store, sop: str, *, fail: bool = False) -> None:
        super().__init__(root)
        self.store, self.sop, self.fail = store, sop, fail
        self.seen_while_syncing: list[bool] = []

    def sync_names(self, keys: Iterable[str]) -> None:
        time.sleep(0.3)
        with self.store.read() as session:
            found = session.execute(select(DicomInstance).filter_by(sop_uid=self.sop)).first()
        self.seen_while_syncing.append(found is not None)
        if self.fail:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        super().sync_names(keys)


def _indexed(store: Store, sop: str) -> bool:
    with store.read() as session:
        return session.execute(select(DicomInstance).filter_by(sop_uid=sop)).first() is not None


@pytest.mark.parametrize("fail", [False, True])
def test_the_index_commits_only_once_the_names_are_durable(
    context: Context, tmp_path: Path, fail: bool
) -> None:
    dataset = make_dataset()
    blobs = _SlowNames(tmp_path / "blobs", context.store, dataset.SOPInstanceUID, fail=fail)
    service = StowService(context.store, blobs, 1024**3)
    owner = object()
    part = service.commit_part(started(service), _received(blobs, to_bytes(dataset)), owner)
    assert part.new is not None
    if fail:
        with pytest.raises(OSError, match="Input/output error"):
            service.index_batch(REQUEST, [part], owner)
    else:
        service.index_batch(REQUEST, [part], owner)
    assert blobs.seen_while_syncing == [False]
    assert _indexed(context.store, dataset.SOPInstanceUID) is not fail
    assert (blobs.size(part.new.blob_key) is None) is fail  # a blob not indexed is deleted
