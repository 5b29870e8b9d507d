"""Index writes: one writer, ``index_write.store``; a batch leaves exactly the rows and change
feed that storing its instances one at a time (batches of one) leaves."""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import Connection, Table, func, select

from dicomite.bootstrap import Context
from dicomite.clock import utcnow
from dicomite.dicom.blobs.folder import FileSystemBlobStore
from dicomite.dicom.index import write as index_write
from dicomite.dicom.index.write import NewInstance, Stored
from dicomite.dicom.stow import instance as stow_instance
from dicomite.dicom.stow import validation
from dicomite.dicom.stow.results import Result
from dicomite.dicom.stow.service import Part, StowRequest, StowService
from dicomite.dicom.stow.service import Stored as StoredPart
from dicomite.store.db import Store
from dicomite.store.tables import DicomChange, DicomInstance, DicomSeries, DicomStudy
from tests.fixtures.dicom import make_dataset, to_bytes

_KEYS = {"pk", "version", "sequence"}  # generated afresh by every write


def replace_file(new: NewInstance, name: str) -> NewInstance:
    """The same instance in another blob, as a second upload of it is."""
    return dataclasses.replace(new, blob_key=f"{new.blob_key}.{name}")


def _new(study: str, series: str, **attributes: Any) -> NewInstance:
    data = to_bytes(make_dataset(study, series, **attributes))
    instance = stow_instance.from_header(data, True, len(data))
    checked = validation.check(instance.values)
    sop = instance.uid("SOPInstanceUID")
    assert sop is not None
    return NewInstance(
        study_uid=study,
        series_uid=series,
        sop_uid=sop,
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        transfer_syntax_uid=instance.transfer_syntax_uid,
        number_of_frames=2,
        blob_key=f"instances/test/{sop}.dcm",
        size=len(data),
        metadata=instance.fragments,
        columns=checked.columns,
    )


def _rows(db: Connection) -> dict[str, list[dict[str, Any]]]:
    """Every index row, with the generated keys replaced by the UIDs they stand for; change
    feed rows in the order written."""
    study_uid = dict(db.execute(select(DicomStudy.pk, DicomStudy.study_uid)).all())
    series_uid = dict(db.execute(select(DicomSeries.pk, DicomSeries.series_uid)).all())
    found = {}
    for model in (DicomStudy, DicomSeries, DicomInstance, DicomChange):
        table: Table = model.__table__  # type: ignore[assignment]
        rows = []
        for row in db.execute(select(table).order_by(*table.primary_key)).mappings():
            values = {k: v for k, v in row.items() if k not in _KEYS}
            if "study_pk" in values:
                values["study_pk"] = study_uid[values["study_pk"]]
            if "series_pk" in values:
                values["series_pk"] = series_uid[values["series_pk"]]
            rows.append(values)
        found[table.name] = rows if model is DicomChange else sorted(rows, key=repr)
    return found


class _RolledBack(Exception):
    pass


def _written(context: Context, write: Any) -> dict[str, list[dict[str, Any]]]:
    """The rows after ``write(connection)``, which is then undone."""
    try:
        with context.store.transaction(write=True) as db:
            write(db)
            rows = _rows(db)
            raise _RolledBack
    except _RolledBack:
        return rows


def _one_at_a_time(db: Connection, batch: list[NewInstance], now: Any, replace: bool) -> list[Any]:
    return [index_write.store(db, [new], now, replace=replace)[0] for new in batch]


def test_a_batch_leaves_the_rows_one_at_a_time_leaves(context: Context) -> None:
    old_study, old_series = generate_uid(), generate_uid()
    now = utcnow()
    with context.store.transaction(write=True) as db:  # a study and series already indexed
        first = _new(old_study, old_series, PatientName="Old^Name")
        index_write.store(db, [first], now - timedelta(days=1), replace=False)
    new_study = generate_uid()
    batch = [
        _new(old_study, old_series, PatientName="Müller^Jürgen", StudyDescription="Chest"),
        _new(old_study, generate_uid(), Modality="MR"),
        _new(new_study, generate_uid(), PatientName="Doe^Jane"),
        _new(new_study, generate_uid(), AccessionNumber="A-1"),
    ]
    batch.append(_new(new_study, batch[-1].series_uid, StudyDate="20250102"))

    def in_one_batch(db: Connection) -> None:
        assert index_write.store(db, batch, now, replace=False) == [Stored()] * len(batch)

    def one_at_a_time(db: Connection) -> None:
        assert _one_at_a_time(db, batch, now, replace=False) == [Stored()] * len(batch)

    batched = _written(context, in_one_batch)
    assert batched == _written(context, one_at_a_time)
    assert len(batched["dicom_instances"]) == 6
    assert len(batched["dicom_studies"]) == 2
    # the study's last instance in the batch speaks for it
    dates = {r["study_uid"]: r["study_date"] for r in batched["dicom_studies"]}
    assert dates == {old_study: "20240115", new_study: "20250102"}


@pytest.mark.parametrize("replace", [False, True], ids=["post", "put"])
def test_a_batch_storing_instances_again_leaves_the_rows_one_at_a_time_leaves(
    context: Context, replace: bool
) -> None:
    """The v1 POST refuses an instance already stored (45070); the v2 PUT replaces it, and its
    change feed rows become ``replaced``: whether it was stored before the batch or earlier in
    the same batch."""
    study, series = generate_uid(), generate_uid()
    now = utcnow()
    stored = _new(study, series)
    with context.store.transaction(write=True) as db:
        index_write.store(db, [stored], now - timedelta(days=1), replace=False)
    fresh = _new(study, series)
    again = replace_file(stored, "again")
    batch = [again, fresh, replace_file(fresh, "twice"), _new(study, series)]
    outcomes: list[list[Any]] = []

    def in_one_batch(db: Connection) -> None:
        outcomes.append(index_write.store(db, batch, now, replace=replace))

    def one_at_a_time(db: Connection) -> None:
        outcomes.append(_one_at_a_time(db, batch, now, replace))

    batched = _written(context, in_one_batch)
    assert batched == _written(context, one_at_a_time)
    assert outcomes[0] == outcomes[1]
    if replace:
        assert outcomes[0] == [Stored(stored.blob_key), Stored(), Stored(fresh.blob_key), Stored()]
        assert [c["state"] for c in batched["dicom_changes"]] == [
            "replaced",  # the first store
            "current",  # again
            "replaced",  # fresh, then replaced by twice
            "current",
            "current",
        ]
        blobs = {i["sop_uid"]: i["blob_key"] for i in batched["dicom_instances"]}
        assert blobs[stored.sop_uid] == again.blob_key
        assert blobs[fresh.sop_uid] == batch[2].blob_key
    else:
        assert outcomes[0] == [None, Stored(), None, Stored()]
        assert [c["state"] for c in batched["dicom_changes"]] == ["current"] * 3
    assert len(batched["dicom_instances"]) == 3


def test_a_batch_meeting_a_concurrent_writer_of_its_new_study_is_stored(
    context: Context, tmp_path: Path
) -> None:
    """Another writer (another worker process) inserts the batch's new study while the batch
    is being written: on PostgreSQL the batch's insert waits, then violates the unique study
    UID. That must reach the service as SQLAlchemy's IntegrityError, so that it stores the
    batch one instance at a time, finding the other writer's study."""
    study, series = generate_uid(), generate_uid()
    batch = [_new(study, series) for _ in range(3)]
    service = StowService(context.store, FileSystemBlobStore(tmp_path), 2**30)
    request = StowRequest(version=2, study_uid=None, replace=False, base_url="http://x/dicom/v2")
    parts = [Part(Result(), new) for new in batch]
    other_began = threading.Event()
    other = Store(context.store.url)  # its own connections, as another process has

    def other_writer() -> None:
        with other.transaction(write=True) as db:
            index_write.store(db, [_new(study, series)], utcnow(), replace=False)
            other_began.set()
            time.sleep(1.0)  # holds the new study's row, uncommitted

    with ThreadPoolExecutor(1) as pool:
        done = pool.submit(other_writer)
        assert other_began.wait(30)
        stored: list[StoredPart] = []
        service._index(request, parts, stored)
        done.result(timeout=60)
    other.dispose()
    assert [part for part, _, _ in stored] == parts
    with context.store.read() as session:
        count = session.execute(
            select(func.count())
            .select_from(DicomInstance)
            .join(DicomStudy)
            .where(DicomStudy.study_uid == study)
        ).scalar_one()
    assert count == 4
