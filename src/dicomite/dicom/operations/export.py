"""The export operation (Azure's "Export DICOM files"): the instances of the source's
identifiers (all when there is no source) are copied, in the order they were stored, to
``{operationId}/results/{study}/{series}/{sop}.dcm`` in the destination; instances that cannot
be read and identifiers that match nothing are ``skipped`` and told in ``{operationId}/
errors.log``, one JSON object a line (``Timestamp``, ``Identifier``, ``Error``).

A step copies a batch (``BATCH`` instances, or the deployment's batch size, or ``BATCH_BYTES``,
whichever comes first) outside any transaction, makes the files durable, appends the batch's
errors, then commits the checkpoint (the last instance copied) if it still holds the lease. A
process killed in between copies the batch again from the checkpoint: writes replace files
whole, so that is harmless.
A destination that refuses a write fails the step (the runner retries it, then fails the
operation with the error); only the source's problems are an instance's.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    false,
    func,
    or_,
    select,
    true,
)

from dicomite.clock import utcnow
from dicomite.dicom.blobs.protocol import CHUNK, BlobStore
from dicomite.dicom.index.partitions import UNPARTITIONED, Partition
from dicomite.dicom.operations import records
from dicomite.dicom.operations.export_destinations import (
    Destination,
    folder_below,
    open_destination,
)
from dicomite.dicom.operations.export_request import FOLDER, ExportRequest
from dicomite.dicom.operations.records import Claimed
from dicomite.store.db import Store
from dicomite.store.tables import DicomInstance, DicomSeries, DicomStudy

EXPORT = "export"
BATCH = 500  # instances a step copies unless the deployment says (``Settings``)
# A step must end well within the lease (``records.LEASE``, 30 s), or another process of the
# deployment takes the operation over and copies the batch again: 64 MiB is 30 s at 2 MB/s.
BATCH_BYTES = 64 * 1024 * 1024
_INSTANCES = cast(Table, DicomInstance.__table__)
_SERIES = cast(Table, DicomSeries.__table__)
_STUDIES = cast(Table, DicomStudy.__table__)
_UIDS = (_STUDIES.c.study_uid, _SERIES.c.series_uid, _INSTANCES.c.sop_uid)
_JOINED = _INSTANCES.join(_SERIES, _SERIES.c.pk == _INSTANCES.c.series_pk).join(
    _STUDIES, _STUDIES.c.pk == _INSTANCES.c.study_pk
)
_ROWS = select(_INSTANCES.c.pk, *_UIDS, _INSTANCES.c.blob_key, _INSTANCES.c.size).select_from(
    _JOINED
)
NOT_FOUND = "No instance matches the identifier."
UNREADABLE = "The instance could not be read: {}"


def errors_name(operation_id: str) -> str:
    return f"{operation_id}/errors.log"


def start(
    store: Store, request: ExportRequest, export_root: Path, partition: Partition = UNPARTITIONED
) -> str:
    """The new export operation's id: it exports from ``partition``."""
    if request.destination["type"] == FOLDER:
        folder_below(export_root, request.destination["path"])
    scoped = partition.key if partition.scoped else None
    with store.transaction() as db:
        missing = _missing(db, request.sources, scoped)
        matching = _matching(request.sources, scoped)
        total = db.scalar(select(func.count()).select_from(_JOINED).where(matching)) or 0
    with store.transaction(write=True) as db:
        state = {
            "destination": request.destination,
            "sources": request.sources,
            "partition": scoped,
            "missing": missing,
            "total": total + len(missing),
            "cursor": 0,
            "exported": 0,
            "skipped": 0,
        }
        return records.create(db, EXPORT, [], state, utcnow())


def _matching(sources: list[list[str]] | None, partition: int | None) -> ColumnElement[bool]:
    """A superset of the instances of ``sources`` (``_wanted`` keeps the exact ones) in
    ``partition`` (None: partitions are off): one ``IN`` per level, as a thousand ORed
    conditions would exceed SQLite's expression depth."""
    if partition is not None:
        return and_(_STUDIES.c.partition_key == partition, _matching(sources, None))
    if sources is None:
        return true()
    by_level: list[set[str]] = [set(), set(), set()]
    for uids in sources:
        by_level[len(uids) - 1].add(uids[-1])
    found = [column.in_(sorted(uids)) for column, uids in zip(_UIDS, by_level, strict=True) if uids]
    return or_(false(), *found)


def _wanted(uids: Sequence[str], sources: list[list[str]] | None) -> bool:
    return sources is None or any(list(uids[: len(path)]) == path for path in sources)


def _missing(db: Connection, sources: list[list[str]] | None, partition: int | None) -> list[str]:
    if sources is None:
        return []
    rows = db.execute(select(*_UIDS).select_from(_JOINED).where(_matching(sources, partition)))
    present = {tuple(row[:depth]) for row in rows for depth in (1, 2, 3)}
    return ["/".join(uids) for uids in sources if tuple(uids) not in present]


@dataclass
class _Batch:
    exported: list[str] = field(default_factory=list)  # destination names
    errors: list[dict[str, str]] = field(default_factory=list)
    position: int = 0  # the last instance pk looked at
    finished: bool = False


class Exporter:
    """The export step, with what it reads from and where folder destinations may be."""

    def __init__(self, blobs: BlobStore, export_root: Path, batch_size: int = BATCH) -> None:
        self._blobs = blobs
        self._export_root = export_root
        self._batch_size = batch_size

    def step(self, store: Store, claimed: Claimed, owner: str) -> None:
        state = claimed.state
        with store.transaction() as db:
            sources, partition = state["sources"], state.get("partition")
            statement = _next_rows(sources, partition, state["cursor"], self._batch_size)
            rows = db.execute(statement).all()
        destination = open_destination(state["destination"], self._export_root)
        try:
            batch = self._copy(destination, claimed.id, rows, state)
            destination.sync_names(batch.exported)
            if batch.errors:
                lines = "".join(json.dumps(error) + "\n" for error in batch.errors)
                destination.append(errors_name(claimed.id), lines.encode())
            href = destination.href(errors_name(claimed.id))
        finally:
            destination.close()
        with store.transaction(write=True) as db:
            if records.hold(db, claimed, owner):
                _advance(db, claimed, owner, batch, href)

    def _copy(
        self, destination: Destination, operation_id: str, rows: Sequence[Any], state: Any
    ) -> _Batch:
        batch = _Batch(position=state["cursor"], finished=len(rows) < self._batch_size)
        batch.errors = [_error(path, NOT_FOUND) for path in state["missing"]]
        copied = 0
        for pk, study, series, sop, key, size in rows:
            if copied >= BATCH_BYTES:
                batch.finished = False
                break
            batch.position = pk
            if not _wanted((study, series, sop), state["sources"]):
                continue
            name = f"{operation_id}/results/{study}/{series}/{sop}.dcm"
            problem = self._copy_one(destination, key, name, size)
            if problem is None:
                batch.exported.append(name)
                copied += size
            else:
                batch.errors.append(_error(f"{study}/{series}/{sop}", problem))
        return batch

    def _copy_one(self, destination: Destination, key: str, name: str, size: int) -> str | None:
        """None once copied; what went wrong when the instance's file cannot be read."""
        try:
            source = self._blobs.open(key)
        except OSError as error:
            return UNREADABLE.format(type(error).__name__)
        with source, destination.writer(name, size) as writer:
            for chunk in iter(functools.partial(source.read, CHUNK), b""):
                writer.write(chunk)
            writer.commit(sync_name=False)
        return None


def _next_rows(
    sources: list[list[str]] | None, partition: int | None, cursor: int, limit: int
) -> Select[Any]:
    statement = _ROWS.where(_INSTANCES.c.pk > cursor, _matching(sources, partition))
    return statement.order_by(_INSTANCES.c.pk).limit(limit)


def _error(identifier: str, message: str) -> dict[str, str]:
    return {"Timestamp": utcnow().isoformat(), "Identifier": identifier, "Error": message}


def _advance(db: Connection, claimed: Claimed, owner: str, batch: _Batch, href: str) -> None:
    state = dict(claimed.state)
    state["cursor"] = batch.position
    state["missing"] = []
    state["exported"] += len(batch.exported)
    state["skipped"] += len(batch.errors)
    results = {"exported": state["exported"], "skipped": state["skipped"], "errorHref": href}
    values: dict[str, Any] = {"state": state, "results": results}
    if batch.finished:
        values |= {"status": records.SUCCEEDED, "percent_complete": 100}
    else:
        done = state["exported"] + state["skipped"]
        values["percent_complete"] = min(99, done * 100 // max(1, state["total"]))
    records.save(db, claimed, owner, utcnow(), **values)
