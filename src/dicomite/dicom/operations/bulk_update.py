"""The bulk update operation (Azure DICOM service, "Update DICOM files"): every instance of each
study gets a new version, its file rewritten with the changed attributes (``rewrite``), indexed
as a STOW replacing it would be, with an ``update`` row in the change feed; the first update
of an instance keeps its original version (``index.originals``), a later one drops the
intermediate version. One bulk update runs at a time (409 while one is running).

The studies are taken in the order given, each in batches of its instances in the order they
were stored: a step rewrites a batch outside any transaction, then indexes it and commits the
checkpoint (study, last instance) if it still holds the lease and the batch's rows are as it
read them (an instance replaced meanwhile keeps the replacement). A process killed in between
leaves new blobs no row points at, which the sweep removes; the step is done again from the
checkpoint. A study without instances, or with an instance that cannot be rewritten, is
``studyFailed``; the operation is ``failed`` when any study failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from pydicom.errors import InvalidDicomError
from sqlalchemy import Connection, Table, bindparam, select

from dicomite.clock import utcnow
from dicomite.dicom.blobs.protocol import BlobStore
from dicomite.dicom.errors import ActiveOperation
from dicomite.dicom.index import originals
from dicomite.dicom.index import write as index_write
from dicomite.dicom.index.partitions import UNPARTITIONED, Partition
from dicomite.dicom.index.write import NewInstance
from dicomite.dicom.operations import records
from dicomite.dicom.operations.bulk_update_request import UpdateRequest
from dicomite.dicom.operations.records import Claimed
from dicomite.dicom.operations.rewrite import Changes, rewrite
from dicomite.dicom.stow import instance as stow_instance
from dicomite.dicom.stow import validation
from dicomite.dicom.stow.upload import HEAD_BYTES
from dicomite.store.compiled import select_rows
from dicomite.store.db import Store
from dicomite.store.tables import DicomInstance, DicomSeries, DicomStudy

UPDATE = "update"
BATCH = 50
# A step must end well within the lease (``records.LEASE``, 30 s): each instance is read and
# written once, so 64 MiB is 30 s at about 4 MB/s (as ``export.BATCH_BYTES``).
BATCH_BYTES = 64 * 1024 * 1024
_INSTANCES = cast(Table, DicomInstance.__table__)
_SERIES = cast(Table, DicomSeries.__table__)
_STUDIES = cast(Table, DicomStudy.__table__)
_READ = (
    select(
        _INSTANCES.c.pk,
        _SERIES.c.series_uid,
        _INSTANCES.c.sop_uid,
        _INSTANCES.c.sop_class_uid,
        _INSTANCES.c.blob_key,
        _INSTANCES.c.size,
        _INSTANCES.c.version,
        _INSTANCES.c.metadata_json,
    )
    .join(_SERIES, _SERIES.c.pk == _INSTANCES.c.series_pk)
    .join(_STUDIES, _STUDIES.c.pk == _INSTANCES.c.study_pk)
    .where(
        _STUDIES.c.study_uid == bindparam("study"),
        # without partitions, every study is in partition 1 (``partitions.UNPARTITIONED``)
        _STUDIES.c.partition_key == bindparam("partition"),
        _INSTANCES.c.pk > bindparam("cursor"),
    )
    .order_by(_INSTANCES.c.pk)
    .limit(bindparam("limit"))
)
_VERSIONS = select(_INSTANCES.c.pk, _INSTANCES.c.version).where(
    _INSTANCES.c.pk.in_(bindparam("pks", expanding=True))
)
STUDY_FAILED = "Failed to update instances for study {}"


def start(
    store: Store, request: UpdateRequest, base_url: str, partition: Partition = UNPARTITIONED
) -> str:
    """The new update operation's id, updating studies of ``partition``; 409 with its
    ``Location`` while another one is not finished ("only one bulk update operation can be
    performed at a time")."""
    state = {
        "partition": [partition.key, partition.name, partition.scoped],
        "studies": request.study_uids,
        "changes": request.change_dataset,
        "study": 0,  # the position of the study being updated
        "cursor": 0,  # its last instance updated
        "studyFailing": False,
        "studyUpdated": 0,
        "studyFailed": 0,
        "instanceUpdated": 0,
        "errors": [],
    }
    with store.transaction(write=True, exclusive=True) as db:
        running = records.active(db, UPDATE)
        if running is not None:
            raise ActiveOperation(
                f"There is already an active bulk update operation with ID '{running.id}'.",
                f"{base_url}/operations/{running.id}",
            )
        return records.create(db, UPDATE, [], state, utcnow())


@dataclass(frozen=True)
class _Row:
    pk: int
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    blob_key: str
    size: int
    version: str
    metadata_json: str


@dataclass
class _Batch:
    updated: list[tuple[_Row, NewInstance]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    last: int = 0


class Updater:
    """The update step, with the blob store it rewrites instances in."""

    def __init__(self, blobs: BlobStore, max_inflated_bytes: int) -> None:
        self._blobs = blobs
        self._max_inflated = max_inflated_bytes

    def step(self, store: Store, claimed: Claimed, owner: str) -> None:
        state = claimed.state
        study = state["studies"][state["study"]]
        partition = Partition(*state["partition"])
        with store.transaction() as db:
            params = {"study": study, "partition": partition.key}
            params |= {"cursor": state["cursor"], "limit": BATCH}
            found = [_Row(*row) for row in select_rows(db, _READ, params)]
        rows = _within_budget(found)
        more = len(rows) < len(found) or len(found) == BATCH
        changes = UpdateRequest(state["studies"], state["changes"]).values()
        batch = self._rewrite(study, rows, changes)
        indexed: list[str] = []  # new blobs the index points at
        replaced: list[str] = []  # intermediate versions no longer pointed at
        try:
            with store.transaction(write=True) as db:
                if records.hold(db, claimed, owner):
                    indexed, replaced = _index(db, batch, partition)
                    _advance(db, claimed, owner, study, batch, len(indexed), more)
        finally:
            for _, new in batch.updated:
                if new.blob_key not in indexed:
                    self._blobs.delete(new.blob_key)
        for key in replaced:
            self._blobs.delete(key)

    def _rewrite(self, study: str, rows: list[_Row], changes: Changes) -> _Batch:
        batch = _Batch(last=rows[-1].pk if rows else 0)
        for row in rows:
            try:
                key, size = rewrite(self._blobs, row.blob_key, changes)
            except (OSError, ValueError, InvalidDicomError) as error:
                batch.errors.append(f"{_uids(study, row)}: {type(error).__name__}")
                continue
            try:
                batch.updated.append((row, self._new_instance(study, row, key, size)))
            except (OSError, ValueError) as error:
                self._blobs.delete(key)
                batch.errors.append(f"{_uids(study, row)}: {type(error).__name__}")
        return batch

    def _new_instance(self, study: str, row: _Row, key: str, size: int) -> NewInstance:
        """The new version as STOW would index it (its header read as STOW reads it)."""
        with self._blobs.open(key) as handle:
            head = handle.read(HEAD_BYTES)
        read = stow_instance.read(
            head, len(head) == size, size, lambda: self._blobs.open(key), self._max_inflated
        )
        return NewInstance(
            study_uid=study,
            series_uid=row.series_uid,
            sop_uid=row.sop_uid,
            sop_class_uid=row.sop_class_uid,
            transfer_syntax_uid=read.transfer_syntax_uid,
            number_of_frames=read.number_of_frames,
            blob_key=key,
            size=size,
            metadata=read.fragments,
            columns=validation.check(read.values).columns,
            action=UPDATE,
        )


def _within_budget(rows: list[_Row]) -> list[_Row]:
    """The first rows up to ``BATCH_BYTES`` (at least one)."""
    total = 0
    for count, row in enumerate(rows):
        total += row.size
        if total > BATCH_BYTES and count:
            return rows[:count]
    return rows


def _uids(study: str, row: _Row) -> str:
    """As Azure names an instance in ``errors``."""
    return (
        f"Instance UIDs - StudyInstanceUID: {study}, SeriesInstanceUID: {row.series_uid}, "
        f"SOPInstanceUID: {row.sop_uid}"
    )


def _index(db: Connection, batch: _Batch, partition: Partition) -> tuple[list[str], list[str]]:
    """Index the batch's new versions whose rows are as read (an instance replaced meanwhile
    keeps its replacement): their blob keys, and the blobs to delete once committed (the
    intermediate versions replaced; a first update keeps the version replaced as original)."""
    pks = [row.pk for row, _ in batch.updated]
    current: dict[int, str] = {row[0]: row[1] for row in select_rows(db, _VERSIONS, {"pks": pks})}
    kept = [(row, new) for row, new in batch.updated if current.get(row.pk) == row.version]
    if not kept:
        return [], []
    index_write.store(db, [new for _, new in kept], utcnow(), replace=True, partition=partition)
    replaced = [
        row.blob_key
        for row, _ in kept
        if not originals.keep(db, row.pk, row.blob_key, row.size, row.metadata_json)
    ]
    return [new.blob_key for _, new in kept], replaced


def _advance(
    db: Connection,
    claimed: Claimed,
    owner: str,
    study: str,
    batch: _Batch,
    updated: int,
    more: bool,
) -> None:
    state = dict(claimed.state)
    state["instanceUpdated"] += updated
    state["errors"] = state["errors"] + batch.errors
    # a study without instances fails, as one with an instance that could not be updated
    empty = state["cursor"] == 0 and batch.last == 0
    state["studyFailing"] = state["studyFailing"] or bool(batch.errors) or empty
    if more:
        state["cursor"] = batch.last
    else:
        _end_study(state, study)
    values: dict[str, Any] = {"state": state}
    if state["study"] == len(state["studies"]):
        status = records.FAILED if state["studyFailed"] else records.SUCCEEDED
        values |= {"status": status, "percent_complete": 100, "results": _results(state)}
    else:
        values["percent_complete"] = state["study"] * 100 // len(state["studies"])
    records.save(db, claimed, owner, utcnow(), **values)


def _end_study(state: dict[str, Any], study: str) -> None:
    if state["studyFailing"]:
        state["studyFailed"] += 1
        state["errors"] = [*state["errors"], STUDY_FAILED.format(study)]
    else:
        state["studyUpdated"] += 1
    state.update(study=state["study"] + 1, cursor=0, studyFailing=False)


def _results(state: dict[str, Any]) -> dict[str, Any]:
    """As the document shows them: ``studyFailed`` and ``errors`` only when something failed."""
    results = {"studyUpdated": state["studyUpdated"], "instanceUpdated": state["instanceUpdated"]}
    if state["studyFailed"]:
        results |= {"studyFailed": state["studyFailed"], "errors": state["errors"]}
    return results
