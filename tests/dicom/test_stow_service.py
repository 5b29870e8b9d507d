"""The STOW core in-process: what the wire cannot show deterministically."""

from __future__ import annotations

from pathlib import Path

import anyio

from dicomite.bootstrap import Context
from dicomite.dicom.blobs import FileSystemBlobStore
from dicomite.dicom.stow import StowRequest, StowService
from dicomite.dicom.stow_results import Reason
from dicomite.dicom.stow_upload import PartUpload
from tests.fixtures.dicom import make_dataset, to_bytes

REQUEST = StowRequest(1, None, False, "https://localhost/dicom/v1")


def _received(blobs: FileSystemBlobStore, data: bytes) -> PartUpload:
    upload = PartUpload(blobs, 1024**3)
    anyio.run(upload.write, data)
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
