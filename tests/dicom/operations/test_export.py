"""The export step: a batch ends at ``BATCH_BYTES`` and the next step starts after it; what it
copied is reported at each checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import Dataset

from dicomite.bootstrap import Context
from dicomite.clock import utcnow
from dicomite.dicom.blobs.folder import FileSystemBlobStore
from dicomite.dicom.operations import export, records
from dicomite.dicom.operations.export_request import ExportRequest
from dicomite.dicom.stow.service import StowService
from tests.dicom.stow.test_stow_service import REQUEST, _received, started
from tests.fixtures.dicom import make_dataset, to_bytes


def _stored(context: Context, blobs: FileSystemBlobStore, count: int) -> list[Dataset]:
    service = StowService(context.store, blobs, 1024**3)
    datasets = [make_dataset(frames=1) for _ in range(count)]
    owner = object()
    request = started(service)
    parts = [service.commit_part(request, _received(blobs, to_bytes(d)), owner) for d in datasets]
    service.index_batch(REQUEST, parts, owner)
    return datasets


def test_each_step_copies_up_to_its_byte_budget_and_the_next_goes_on_from_there(
    context: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = FileSystemBlobStore(tmp_path / "blobs")
    datasets = _stored(context, blobs, 3)
    monkeypatch.setattr(export, "BATCH_BYTES", 1)  # one instance a step
    root = tmp_path / "exports"
    wanted = ExportRequest(None, {"type": "folder", "path": "steps"})
    operation_id = export.start(context.store, wanted, root)
    exporter, owner = export.Exporter(blobs, root), records.owner_id()
    progress = []
    while True:
        claimed = records.claim(context.store, owner, utcnow())
        if claimed is None:
            break
        exporter.step(context.store, claimed, owner)
        with context.store.transaction() as db:
            found = records.get(db, operation_id)
        assert found is not None and found.results is not None
        progress.append((found.status, found.percent_complete, found.results["exported"]))
    assert progress == [
        (records.RUNNING, 33, 1),
        (records.RUNNING, 66, 2),
        (records.SUCCEEDED, 100, 3),
    ]
    results = root / "steps" / operation_id / "results"
    assert sorted(p.name for p in results.rglob("*.dcm")) == sorted(
        f"{d.SOPInstanceUID}.dcm" for d in datasets
    )
