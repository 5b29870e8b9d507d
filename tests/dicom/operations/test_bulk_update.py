"""The bulk update step: new versions in batches from the checkpoint, the original kept and
intermediate versions dropped, the pixel data copied as stored, every version deleted with the
instance, and the orphans of a step that never committed swept."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset, dcmread
from pydicom.uid import generate_uid
from sqlalchemy import select, update

from dicomite.bootstrap import Context
from dicomite.clock import utcnow
from dicomite.dicom.blobs.folder import FileSystemBlobStore
from dicomite.dicom.blobs.sweep import sweep
from dicomite.dicom.index import delete, schema
from dicomite.dicom.index.partitions import UNPARTITIONED
from dicomite.dicom.index.schema import Level
from dicomite.dicom.index.tag_entries import TagEntry
from dicomite.dicom.operations import bulk_update, records, reindex
from dicomite.dicom.operations.bulk_update_request import parse
from dicomite.dicom.stow.service import StowService
from dicomite.store.db import Store
from dicomite.store.tables import DicomOperation, DicomStudy, DicomStudyTagValue
from tests.dicom.stow.test_stow_service import REQUEST, _received, started
from tests.fixtures.dicom import make_dataset, to_bytes


def _stored(context: Context, blobs: FileSystemBlobStore, datasets: list[Dataset]) -> None:
    service = StowService(context.store, blobs, 1024**3)
    owner = object()
    request = started(service)
    parts = [service.commit_part(request, _received(blobs, to_bytes(d)), owner) for d in datasets]
    service.index_batch(REQUEST, parts, owner)


def _update(
    context: Context, blobs: FileSystemBlobStore, name: str, *studies: str, **more: Any
) -> str:
    """Run a bulk update setting PatientName to ``name`` (and ``more`` elements), one step at a
    time, to its end."""
    change = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": name}]}, **more}
    request = parse({"studyInstanceUids": list(studies), "changeDataset": change})
    operation_id = bulk_update.start(context.store, request, "https://x/dicom/v2")
    _run(context, bulk_update.Updater(blobs, 1024**3).step)
    return operation_id


def _run(context: Context, step: Callable[[Store, records.Claimed, str], None]) -> int:
    """Steps run, one at a time, until no operation is left: how many."""
    owner, steps = records.owner_id(), 0
    while (claimed := records.claim(context.store, owner, utcnow())) is not None:
        step(context.store, claimed, owner)
        steps += 1
    return steps


def _result(context: Context, operation_id: str) -> records.Operation:
    with context.store.transaction() as db:
        found = records.get(db, operation_id)
    assert found is not None
    return found


def _files(context: Context, study: str, *, original: bool) -> list[schema.StoredInstance]:
    with context.store.transaction() as db:
        return schema.find_instances(db, study, partition=UNPARTITIONED, original=original)


@pytest.fixture
def blobs(tmp_path: Path) -> FileSystemBlobStore:
    return FileSystemBlobStore(tmp_path / "blobs")


@pytest.mark.parametrize(
    ("batch", "batch_bytes", "steps"),
    [(2, 1024**3, 2), (50, 1, 3)],
    ids=["by-count", "by-bytes"],
)
def test_each_instance_gets_a_new_version_in_batches_and_keeps_its_original(
    context: Context,
    blobs: FileSystemBlobStore,
    monkeypatch: pytest.MonkeyPatch,
    batch: int,
    batch_bytes: int,
    steps: int,
) -> None:
    study = generate_uid()
    datasets = [make_dataset(study=study, frames=1) for _ in range(3)]
    _stored(context, blobs, datasets)
    before = {
        i.sop_uid: blobs.open(i.blob_key).read() for i in _files(context, study, original=False)
    }
    monkeypatch.setattr(bulk_update, "BATCH", batch)
    monkeypatch.setattr(bulk_update, "BATCH_BYTES", batch_bytes)
    change = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Roe^Jane"}]}}
    request = parse({"studyInstanceUids": [study], "changeDataset": change})
    operation_id = bulk_update.start(context.store, request, "https://x/dicom/v2")

    assert _run(context, bulk_update.Updater(blobs, 1024**3).step) == steps
    found = _result(context, operation_id)

    assert (found.status, found.results) == (
        records.SUCCEEDED,
        {"studyUpdated": 1, "instanceUpdated": 3},
    )
    for latest in _files(context, study, original=False):
        dataset = dcmread(blobs.open(latest.blob_key))
        assert str(dataset.PatientName) == "Roe^Jane"
        original = dcmread(io.BytesIO(before[latest.sop_uid]))
        assert dataset.PixelData == original.PixelData
        assert dataset.PatientID == original.PatientID
    originals = {
        i.sop_uid: blobs.open(i.blob_key).read() for i in _files(context, study, original=True)
    }
    assert originals == before


def test_a_second_update_drops_the_intermediate_version_and_delete_removes_every_version(
    context: Context, blobs: FileSystemBlobStore
) -> None:
    dataset = make_dataset(frames=1)
    study = dataset.StudyInstanceUID
    _stored(context, blobs, [dataset])
    [first] = _files(context, study, original=False)
    _update(context, blobs, "Roe^Jane", study)
    [intermediate] = _files(context, study, original=False)
    _update(context, blobs, "Poe^Edgar", study)
    [latest] = _files(context, study, original=False)
    [original] = _files(context, study, original=True)

    assert original.blob_key == first.blob_key
    assert sorted(blobs.keys()) == sorted([first.blob_key, latest.blob_key])
    assert intermediate.blob_key not in set(blobs.keys())
    with context.store.transaction() as db:
        [(_, text)] = schema.metadata_of(db, study, partition=UNPARTITIONED)
        [(_, first_text)] = schema.metadata_of(db, study, partition=UNPARTITIONED, original=True)
    assert json.loads(text)["00100010"]["Value"] == [{"Alphabetic": "Poe^Edgar"}]
    assert json.loads(first_text)["00100010"]["Value"] == [{"Alphabetic": "Doe^John"}]

    delete.delete_resource(context.store, blobs, study)
    assert list(blobs.keys()) == []


def test_an_unknown_study_fails_and_the_others_are_updated(
    context: Context, blobs: FileSystemBlobStore
) -> None:
    dataset, missing = make_dataset(frames=1), generate_uid()
    _stored(context, blobs, [dataset])

    found = _result(context, _update(context, blobs, "Roe^Jane", missing, dataset.StudyInstanceUID))

    assert found.status == records.FAILED
    assert found.results == {
        "studyUpdated": 1,
        "studyFailed": 1,
        "instanceUpdated": 1,
        "errors": [f"Failed to update instances for study {missing}"],
    }


def test_the_sweep_keeps_original_versions(context: Context, blobs: FileSystemBlobStore) -> None:
    dataset = make_dataset(frames=1)
    _stored(context, blobs, [dataset])
    _update(context, blobs, "Roe^Jane", dataset.StudyInstanceUID)

    assert sweep(context.store, blobs, grace_seconds=-1) == (0, 0)
    assert len(list(blobs.keys())) == 2


def test_a_step_that_lost_its_lease_leaves_nothing_and_the_next_holder_goes_on(
    context: Context, blobs: FileSystemBlobStore
) -> None:
    dataset = make_dataset(frames=1)
    _stored(context, blobs, [dataset])
    change = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Roe^Jane"}]}}
    request = parse({"studyInstanceUids": [dataset.StudyInstanceUID], "changeDataset": change})
    operation_id = bulk_update.start(context.store, request, "https://x/dicom/v2")
    updater, first, second = bulk_update.Updater(blobs, 1024**3), "gone/1/a", "here/2/b"
    claimed = records.claim(context.store, first, utcnow())
    assert claimed is not None
    with context.store.transaction(write=True) as db:  # the lease passed to another process
        db.execute(
            update(DicomOperation)
            .where(DicomOperation.id == operation_id)
            .values(lease_owner=second)
        )
    updater.step(context.store, claimed, first)
    assert len(list(blobs.keys())) == 1  # its new version deleted, nothing indexed

    while (again := records.claim(context.store, second, utcnow())) is not None:
        updater.step(context.store, again, second)
    assert _result(context, operation_id).results == {"studyUpdated": 1, "instanceUpdated": 1}
    assert len(list(blobs.keys())) == 2


def test_extended_query_tag_values_follow_the_update(
    context: Context, blobs: FileSystemBlobStore
) -> None:
    dataset = make_dataset(frames=1, PatientSex="M")
    _stored(context, blobs, [dataset])
    entry = TagEntry("00100040", "CS", None, Level.STUDY)
    reindex.start(context.store, [entry], "https://x/dicom/v2")
    _run(context, reindex.step)

    sex = {"00100040": {"vr": "CS", "Value": ["F"]}}
    _update(context, blobs, "Roe^Jane", dataset.StudyInstanceUID, **sex)

    with context.store.transaction() as db:
        values = db.execute(
            select(DicomStudyTagValue.text_value)
            .join(DicomStudy, DicomStudy.pk == DicomStudyTagValue.resource_pk)
            .where(DicomStudy.study_uid == dataset.StudyInstanceUID)
        ).scalars()
        assert list(values) == ["f"]  # stored folded for matching; it was "m"
