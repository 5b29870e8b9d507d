"""Writing the index: stored instances, in batches (one instance is a batch of one), and the
change feed rows written with them.

Core statements on the transaction's connection (no unit of work), built once, so each runs
from SQLAlchemy's compiled cache; rows of one table go in one ``executemany``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from dicomite.dicom.index import extended_tags, tag_index
from dicomite.dicom.index.partitions import UNPARTITIONED, Partition
from dicomite.dicom.index.schema import (
    INDEXED,
    LEVEL_KEYS,
    InstanceFile,
    Kind,
    Level,
    fold,
    name_words,
)
from dicomite.dicom.model import dicomjson
from dicomite.dicom.model.dicomjson import Fragments
from dicomite.store.functions import DistinctJoined
from dicomite.store.tables import DicomChange, DicomInstance, DicomSeries, DicomStudy

Uids = tuple[str, str, str]


@dataclass(frozen=True)
class NewInstance(InstanceFile):
    """A committed blob's instance, checked, on its way to the index.

    Its instance row's values are worked out when it is made (in the worker thread that checked
    it), so that the index transaction, which holds the database's write lock, only sends them.
    Its study's and series' values are worked out when asked for: a batch writes those of the
    last instance of each study and series only."""

    metadata: Fragments
    # Column values of searchable attributes that passed validation (others stay NULL).
    columns: dict[str, str]
    # Values of extended query tags that passed validation.
    tags: tag_index.InstanceTags = tag_index.NO_TAGS
    # The change feed's action: ``update`` for a bulk update's new version (Azure "Change Feed").
    action: str = "create"
    _levels: dict[Level, dict[str, Any]] = field(init=False, repr=False, compare=False)
    _row: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_levels", {})
        object.__setattr__(
            self,
            "_row",
            {
                "sop_class_uid": self.sop_class_uid,
                "transfer_syntax_uid": self.transfer_syntax_uid,
                "number_of_frames": self.number_of_frames,
                "blob_key": self.blob_key,
                "size": self.size,
                "attributes": dicomjson.join(self.metadata, LEVEL_KEYS[Level.INSTANCE]),
                "metadata_json": dicomjson.join(self.metadata),
            },
        )

    def _level_columns(self, level: Level) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for attribute in _LEVEL_COLUMNS[level]:
            value = self.columns.get(attribute.column)
            if attribute.kind is Kind.PERSON:
                values[f"{attribute.column}_words"] = name_words(value) if value else None
                value = fold(value) if value else None
            elif attribute.kind is Kind.TEXT:
                value = value.lower() if value else None
            values[attribute.column] = value
        return values

    def level_values(self, level: Level, now: datetime) -> dict[str, Any]:
        """A study's or series' columns as this instance says (the latest instance wins,
        conformance statement, QIDO "Additional Notes")."""
        values = self._levels.get(level)
        if values is None:
            values = self._levels[level] = self._level_columns(level)
            values["attributes"] = dicomjson.join(self.metadata, LEVEL_KEYS[level])
        return {**values, "updated_at": now}

    def row(self, now: datetime) -> dict[str, Any]:
        """The instance row's values but its keys (``study_pk``, ``series_pk``, ``sop_uid``)."""
        return {**self._row, "version": uuid.uuid4().hex, "created_at": now}

    @property
    def uids(self) -> Uids:
        return (self.study_uid, self.series_uid, self.sop_uid)

    def change(self, now: datetime, partition: Partition) -> dict[str, Any]:
        return {
            "partition_key": partition.key,
            "timestamp": now,
            "action": self.action,
            "state": "current",
            "study_uid": self.study_uid,
            "series_uid": self.series_uid,
            "sop_uid": self.sop_uid,
        }


_LEVEL_COLUMNS = {
    level: [a for a in INDEXED if a.level == level and a.kind is not Kind.UID] for level in Level
}


@dataclass(frozen=True)
class Stored:
    """An instance indexed; ``replaced``: the blob key of the instance it replaced (a PUT)."""

    replaced: str | None = None


@dataclass
class _Found:
    """An instance row met by a batch: its primary key (``None`` until it is inserted) and
    the blob it points at."""

    pk: int | None
    blob_key: str


_STUDIES = cast(Table, DicomStudy.__table__)
_SERIES = cast(Table, DicomSeries.__table__)
_INSTANCES = cast(Table, DicomInstance.__table__)
_CHANGES = cast(Table, DicomChange.__table__)
# Built once: each shape is compiled once, then runs from the engine's compiled cache (lists go
# in expanding parameters, so a batch's size is not a new shape).
_FIND_STUDIES = select(_STUDIES.c.study_uid, _STUDIES.c.pk).where(
    _STUDIES.c.partition_key == bindparam("partition"),
    _STUDIES.c.study_uid.in_(bindparam("uids", expanding=True)),
)
_FIND_SERIES = select(_SERIES.c.study_pk, _SERIES.c.series_uid, _SERIES.c.pk).where(
    _SERIES.c.study_pk.in_(bindparam("pks", expanding=True)),
    _SERIES.c.series_uid.in_(bindparam("uids", expanding=True)),
)
_FIND_INSTANCES = select(
    _INSTANCES.c.series_pk, _INSTANCES.c.sop_uid, _INSTANCES.c.pk, _INSTANCES.c.blob_key
).where(
    _INSTANCES.c.series_pk.in_(bindparam("pks", expanding=True)),
    _INSTANCES.c.sop_uid.in_(bindparam("uids", expanding=True)),
)
_INSERT_STUDY = insert(_STUDIES).returning(_STUDIES.c.pk)
_INSERT_SERIES = insert(_SERIES).returning(_SERIES.c.pk)
_INSERT_INSTANCES = insert(_INSTANCES)
_INSERT_CHANGES = insert(_CHANGES)
_UPDATE_STUDY = update(_STUDIES).where(_STUDIES.c.pk == bindparam("b_pk"))
_UPDATE_SERIES = update(_SERIES).where(_SERIES.c.pk == bindparam("b_pk"))
_UPDATE_INSTANCE = update(_INSTANCES).where(_INSTANCES.c.pk == bindparam("b_pk"))
_JOIN_MODALITIES = (
    update(_STUDIES)
    .where(_STUDIES.c.pk.in_(bindparam("pks", expanding=True)))
    .values(
        modalities=select(DistinctJoined(_SERIES.c.modality))
        .where(_SERIES.c.study_pk == _STUDIES.c.pk)
        .scalar_subquery()
    )
)
_MARK = (
    update(_CHANGES)
    .where(
        _CHANGES.c.sop_uid == bindparam("b_sop"),
        _CHANGES.c.series_uid == bindparam("b_series"),
        _CHANGES.c.study_uid == bindparam("b_study"),
        _CHANGES.c.partition_key == bindparam("b_partition"),
        _CHANGES.c.state == "current",
    )
    .values(state=bindparam("b_state"))
)


def store(
    db: Connection,
    batch: Sequence[NewInstance],
    now: datetime,
    *,
    replace: bool,
    partition: Partition = UNPARTITIONED,
) -> list[Stored | None]:
    """Index a batch, in order, in a handful of statements: per instance, how it was stored, or
    ``None`` when it was already stored and ``replace`` is false (45070). A replacing instance
    (the v2 ``PUT``) takes over the instance row and leaves its change feed rows ``replaced``;
    one instance stands for its study and series: the last of the batch (the latest instance
    wins, conformance statement, QIDO "Additional Notes"). A batch of one is the single case.
    Everything it meets and writes is in ``partition``."""
    studies, series, found = _lookup(db, batch, partition)
    indexed = {uids for uids, met in found.items() if met.pk is not None}
    outcomes: list[Stored | None] = []
    kept: list[NewInstance] = []
    for new in batch:
        uids = new.uids
        met = found.get(uids)
        if met is not None and not replace:
            outcomes.append(None)
            continue
        outcomes.append(Stored(None if met is None else met.blob_key))
        found[uids] = _Found(None if met is None else met.pk, new.blob_key)
        kept.append(new)
    if kept:
        _write_levels(db, kept, studies, series, now, partition)
        _write_instances(db, kept, studies, series, found, now)
        _write_tags(db, kept, studies, series)
        _mark(db, sorted(indexed & {n.uids for n in kept}), "replaced", partition)
        _write_changes(db, kept, now, partition)
    return outcomes


def _lookup(
    db: Connection, batch: Sequence[NewInstance], partition: Partition
) -> tuple[dict[str, int], dict[tuple[str, str], int], dict[Uids, _Found]]:
    """The batch's studies, series and instances already indexed in ``partition``."""
    uids = sorted({n.study_uid for n in batch})
    studies: dict[str, int] = {}
    for uid, pk in db.execute(_FIND_STUDIES, {"uids": uids, "partition": partition.key}):
        studies[uid] = pk
    series: dict[tuple[str, str], int] = {}
    if studies:
        uid_of = {pk: uid for uid, pk in studies.items()}
        wanted = {"pks": list(studies.values()), "uids": sorted({n.series_uid for n in batch})}
        for study_pk, uid, pk in db.execute(_FIND_SERIES, wanted):
            series[(uid_of[study_pk], uid)] = pk
    found: dict[Uids, _Found] = {}
    if series:
        keys = {pk: key for key, pk in series.items()}
        wanted = {"pks": list(series.values()), "uids": sorted({n.sop_uid for n in batch})}
        for series_pk, uid, pk, blob_key in db.execute(_FIND_INSTANCES, wanted):
            found[(*keys[series_pk], uid)] = _Found(pk, blob_key)
    return studies, series, found


def _write_levels(
    db: Connection,
    kept: Sequence[NewInstance],
    studies: dict[str, int],
    series: dict[tuple[str, str], int],
    now: datetime,
    partition: Partition,
) -> None:
    """Each study and series once, with the values of its last instance in ``kept``; new rows'
    keys are added to ``studies`` and ``series``."""
    last_of_study = {n.study_uid: n for n in kept}
    for uid in sorted(last_of_study):  # one lock order for every writer (PostgreSQL)
        values = last_of_study[uid].level_values(Level.STUDY, now)
        if uid in studies:
            db.execute(_UPDATE_STUDY, {**values, "b_pk": studies[uid]})
        else:
            values.update(study_uid=uid, partition_key=partition.key)
            studies[uid] = db.execute(_INSERT_STUDY, values).scalar_one()
    last_of_series = {(n.study_uid, n.series_uid): n for n in kept}
    for key in sorted(last_of_series):
        values = last_of_series[key].level_values(Level.SERIES, now)
        if key in series:
            db.execute(_UPDATE_SERIES, {**values, "b_pk": series[key]})
        else:
            values.update(study_pk=studies[key[0]], series_uid=key[1])
            series[key] = db.execute(_INSERT_SERIES, values).scalar_one()
    join_modalities(db, [studies[uid] for uid in sorted(last_of_study)])


def join_modalities(db: Connection, study_pks: Sequence[int]) -> None:
    """Each study's ``modalities`` (ModalitiesInStudy) from its series as they are now: after
    a series is written (its modality is its last instance's) or deleted."""
    db.execute(_JOIN_MODALITIES, {"pks": list(study_pks)})


def _write_instances(
    db: Connection,
    kept: Sequence[NewInstance],
    studies: dict[str, int],
    series: dict[tuple[str, str], int],
    found: dict[Uids, _Found],
    now: datetime,
) -> None:
    """One row per instance, with the values of the last of ``kept`` that stores it."""
    last = {n.uids: n for n in kept}
    inserted, updated = [], []
    for uids, new in last.items():
        pk = found[uids].pk
        if pk is None:
            keys = {"study_pk": studies[uids[0]], "series_pk": series[uids[:2]], "sop_uid": uids[2]}
            inserted.append({**new.row(now), **keys})
        else:
            updated.append({**new.row(now), "b_pk": pk})
    if inserted:
        db.execute(_INSERT_INSTANCES, inserted)
    if updated:
        db.execute(_UPDATE_INSTANCE, updated)


def _write_tags(
    db: Connection,
    kept: Sequence[NewInstance],
    studies: dict[str, int],
    series: dict[tuple[str, str], int],
) -> None:
    """The extended query tags' values of each study, series and instance, from its last
    instance in ``kept``. The set's version is read sharing its lock (``locked_version``):
    an instance checked against another set is indexed on the current one (values that cannot
    be indexed are left out: it was already accepted)."""
    version = extended_tags.locked_version(db)
    current = next((n.tags.indexed for n in kept if n.tags.indexed.version == version), None)
    if current is None:
        current = extended_tags.indexed(db)
    if not current.tags:
        return

    def tags_of(new: NewInstance) -> tag_index.InstanceTags:
        if new.tags.indexed.version == version:
            return new.tags
        return tag_index.extract(current, tag_index.fragments_lookup(new.metadata))

    resources: tag_index.Resources = {
        Level.STUDY: {studies[n.study_uid]: tags_of(n) for n in kept},
        Level.SERIES: {series[(n.study_uid, n.series_uid)]: tags_of(n) for n in kept},
    }
    if Level.INSTANCE in tag_index.levels_of(current.tags):
        pks = _instance_pks(db, kept, series)
        resources[Level.INSTANCE] = {pks[n.uids]: tags_of(n) for n in kept}
    tag_index.write(db, resources, current.tags)


def _instance_pks(
    db: Connection, kept: Sequence[NewInstance], series: dict[tuple[str, str], int]
) -> dict[Uids, int]:
    keys = {pk: key for key, pk in series.items()}
    wanted = {
        "pks": sorted({series[(n.study_uid, n.series_uid)] for n in kept}),
        "uids": sorted({n.sop_uid for n in kept}),
    }
    return {
        (*keys[series_pk], uid): pk for series_pk, uid, pk, _ in db.execute(_FIND_INSTANCES, wanted)
    }


def _write_changes(
    db: Connection, kept: Sequence[NewInstance], now: datetime, partition: Partition
) -> None:
    """A ``create`` row per instance stored, in order; of an instance stored twice, the
    earlier row is ``replaced`` (rows written before the batch are marked by :func:`_mark`)."""
    rows = [new.change(now, partition) for new in kept]
    latest: dict[Uids, dict[str, Any]] = {}
    for new, row in zip(kept, rows, strict=True):
        earlier = latest.get(new.uids)
        if earlier is not None:
            earlier["state"] = "replaced"
        latest[new.uids] = row
    db.execute(_INSERT_CHANGES, rows)


def record_deletes(
    db: Connection, deleted: Sequence[Uids], now: datetime, partition: Partition = UNPARTITIONED
) -> None:
    """A ``delete`` row per deleted instance of ``partition``; its earlier rows become
    ``deleted``."""
    if not deleted:
        return
    _mark(db, deleted, "deleted", partition)
    rows = [
        {
            "partition_key": partition.key,
            "timestamp": now,
            "action": "delete",
            "state": "deleted",
            "study_uid": study,
            "series_uid": series,
            "sop_uid": sop,
        }
        for study, series, sop in deleted
    ]
    db.execute(_INSERT_CHANGES, rows)


def _mark(db: Connection, instances: Sequence[Uids], state: str, partition: Partition) -> None:
    """Change feed rows of ``instances`` in ``partition`` that are ``current`` become ``state``."""
    if not instances:
        return
    db.execute(
        _MARK,
        [
            {
                "b_study": study,
                "b_series": series,
                "b_sop": sop,
                "b_state": state,
                "b_partition": partition.key,
            }
            for study, series, sop in instances
        ],
    )
