"""The reindex operation (Azure's "Add extended query tags"): tags are added ``adding`` with the
operation in one transaction, then the instances stored before them are indexed on them, a
batch per step, in the order they were stored; STOW indexes the later ones itself.

A step reads a batch and its stored metadata (``metadata_json``: every element but bulk data,
so no blob is read) in a read transaction, works out the values outside any transaction, and
writes them in a short one, with the checkpoint, only if it still holds the lease and the batch
is as it read it: an instance replaced meanwhile (its row ``version`` moved) was indexed by its
STOW. A study's or series' value comes from its latest instance, as STOW writes it.
When the batch comes back short the tags become ``ready``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import BindParameter, Connection, Table, bindparam, func, select, update

from dicomite.clock import utcnow
from dicomite.dicom.errors import ActiveOperation
from dicomite.dicom.index import extended_tags, tag_errors, tag_index
from dicomite.dicom.index.extended_tags import ADDING, READY, TAGS, Indexed, QueryTag
from dicomite.dicom.index.schema import Level
from dicomite.dicom.index.tag_entries import TagEntry
from dicomite.dicom.model import dicomjson
from dicomite.dicom.operations import records
from dicomite.dicom.operations.records import Claimed
from dicomite.store.compiled import select_rows
from dicomite.store.db import Store
from dicomite.store.tables import DicomInstance

REINDEX = "reindex"
BATCH = 1_000  # instances a step indexes unless the deployment says (``Settings``)
_INSTANCES = cast(Table, DicomInstance.__table__)
_READ = (
    select(
        _INSTANCES.c.pk,
        _INSTANCES.c.study_pk,
        _INSTANCES.c.series_pk,
        _INSTANCES.c.version,
        _INSTANCES.c.metadata_json,
    )
    .where(_INSTANCES.c.pk > bindparam("cursor"))
    .order_by(_INSTANCES.c.pk)
    .limit(bindparam("limit"))
)
_PKS: BindParameter[int] = bindparam("pks", expanding=True)
_VERSIONS = select(_INSTANCES.c.pk, _INSTANCES.c.version).where(_INSTANCES.c.pk.in_(_PKS))
_LATEST = {
    Level.STUDY: select(_INSTANCES.c.study_pk, func.max(_INSTANCES.c.pk))
    .where(_INSTANCES.c.study_pk.in_(_PKS))
    .group_by(_INSTANCES.c.study_pk),
    Level.SERIES: select(_INSTANCES.c.series_pk, func.max(_INSTANCES.c.pk))
    .where(_INSTANCES.c.series_pk.in_(_PKS))
    .group_by(_INSTANCES.c.series_pk),
}


def start(store: Store, entries: Sequence[TagEntry], base_url: str) -> str:
    """Add the tags and their reindex operation, in one transaction; the operation's id.
    409 with its ``Location`` while another reindex runs (as Azure answers)."""
    now = utcnow()
    with store.transaction(write=True, exclusive=True) as db:
        running = records.active(db, REINDEX)
        if running is not None:
            raise ActiveOperation(
                f"There is already an active re-index operation with ID '{running.id}'.",
                f"{base_url}/operations/{running.id}",
            )
        total = db.scalar(select(func.count()).select_from(_INSTANCES)) or 0
        resources = [f"extendedquerytags/{entry.path}" for entry in entries]
        state = {"cursor": 0, "done": 0, "total": total}
        operation_id = records.create(db, REINDEX, resources, state, now)
        extended_tags.insert_tags(db, entries, operation_id, now)
    return operation_id


@dataclass(frozen=True)
class _Read:
    pk: int
    study_pk: int
    series_pk: int
    version: str
    tags: tag_index.InstanceTags


def step(store: Store, claimed: Claimed, owner: str, batch_size: int = BATCH) -> None:
    """Index the next ``batch_size`` instances on the operation's tags, or finish it."""
    with store.transaction() as db:
        tags = [t for t in extended_tags.of_operation(db, claimed.id) if t.status == ADDING]
        params = {"cursor": claimed.state["cursor"], "limit": batch_size}
        rows = select_rows(db, _READ, params) if tags else []  # none left: deleted
    indexed = Indexed(0, tuple(tags))
    batch = [
        _Read(pk, study, series, version, tag_index.extract(indexed, _lookup(text)))
        for pk, study, series, version, text in rows
    ]
    with store.transaction(write=True) as db:
        if not records.hold(db, claimed, owner):
            return  # another process took the lease over
        _write(db, batch, tags)
        last = batch[-1].pk if batch else None
        _advance(db, claimed, owner, tags, len(rows) == batch_size, len(rows), last)


def _lookup(text: str) -> tag_index.Lookup:
    return tag_index.metadata_lookup(dicomjson.decode(text))


def _write(db: Connection, batch: list[_Read], tags: list[QueryTag]) -> None:
    if not batch or not tags:
        return
    current = _pairs(select_rows(db, _VERSIONS, {"pks": [read.pk for read in batch]}))
    kept = [read for read in batch if current.get(read.pk) == read.version]
    resources: tag_index.Resources = {Level.INSTANCE: {read.pk: read.tags for read in kept}}
    levels = tag_index.levels_of(tags)
    for level in (Level.STUDY, Level.SERIES):
        if level in levels:
            resources[level] = _latest(db, level, kept)
    tag_index.write(db, resources, tags)
    found = [(tag.key, read.pk, message) for read in kept for tag, message in read.tags.problems]
    keys, pks = [tag.key for tag in tags], [read.pk for read in kept]
    tag_errors.record(db, keys, pks, found, utcnow())


def _latest(db: Connection, level: Level, kept: list[_Read]) -> dict[int, tag_index.InstanceTags]:
    """The values of each study (series) whose latest instance is in the batch."""
    keys = {read.pk: read.study_pk if level == Level.STUDY else read.series_pk for read in kept}
    wanted = {"pks": sorted(set(keys.values()))}
    latest = _pairs(select_rows(db, _LATEST[level], wanted))
    return {keys[read.pk]: read.tags for read in kept if latest.get(keys[read.pk]) == read.pk}


def _pairs(rows: Sequence[Sequence[Any]]) -> dict[Any, Any]:
    return {row[0]: row[1] for row in rows}


def _advance(
    db: Connection,
    claimed: Claimed,
    owner: str,
    tags: list[QueryTag],
    full: bool,
    count: int,
    last: int | None,
) -> None:
    state = dict(claimed.state)
    state["done"] += count
    if last is not None:
        state["cursor"] = last
    now = utcnow()
    if full:  # a short batch was the last
        percent = min(99, state["done"] * 100 // max(1, state["total"]))
        records.save(db, claimed, owner, now, state=state, percent_complete=percent)
        return
    if tags:
        ready = update(TAGS).where(TAGS.c.key.in_([tag.key for tag in tags]))
        db.execute(ready.values(status=READY, operation_id=None))
    status: dict[str, Any] = {"status": records.SUCCEEDED, "percent_complete": 100}
    records.save(db, claimed, owner, now, state=state, **status)
