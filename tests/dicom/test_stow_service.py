"""The STOW core in-process: what the wire cannot show deterministically."""

from __future__ import annotations

from pathlib import Path

from dicomite.bootstrap import Context
from dicomite.dicom.blobs import FileSystemBlobStore, new_blob_key
from dicomite.dicom.stow import StowRequest, StowService
from dicomite.dicom.stow_results import Reason
from tests.fixtures.dicom import make_dataset, to_bytes


def _committed(blobs: FileSystemBlobStore, data: bytes) -> tuple[str, int]:
    key = new_blob_key()
    with blobs.writer(key) as writer:
        writer.write(data)
        return key, writer.commit()


def test_instance_being_indexed_elsewhere_is_45071(context: Context, tmp_path: Path) -> None:
    blobs = FileSystemBlobStore(tmp_path / "blobs")
    service = StowService(context.store, blobs, 1024**3)
    dataset = make_dataset()
    uids = (dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID)
    request = StowRequest(1, None, False, "https://localhost/dicom/v1")
    assert service._in_flight.claim(uids)  # another request is indexing this instance
    key, size = _committed(blobs, to_bytes(dataset))
    result = service._process(request, key, size)
    assert result.failure == Reason.PENDING
    assert blobs.size(key) is None  # the refused blob is gone
    service._in_flight.release(uids)
    key, size = _committed(blobs, to_bytes(dataset))
    assert service._process(request, key, size).failure is None
    assert blobs.size(key) == size
