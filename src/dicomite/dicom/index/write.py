"""Writing the index: stored instances (a batch of new ones in a few statements, or one at a
time) and the change feed rows written with them.

One instance at a time: Core statements (no unit of work), built once, so each runs from
SQLAlchemy's cache. A batch: a few statements on the DBAPI cursor.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

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
from dicomite.store.db import DriverCursor, insert_sql, placeholders
from dicomite.store.tables import DicomChange, DicomInstance, DicomSeries, DicomStudy


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

    def change(self, now: datetime) -> dict[str, Any]:
        return {
            "timestamp": now,
            "action": "create",
            "state": "current",
            "study_uid": self.study_uid,
            "series_uid": self.series_uid,
            "sop_uid": self.sop_uid,
        }


_LEVEL_COLUMNS = {
    level: [a for a in INDEXED if a.level == level and a.kind is not Kind.UID] for level in Level
}


class Duplicate(Exception):
    """The instance is already stored and the request does not replace it."""


class Known:
    """Primary keys of the studies and series already looked up or created in one write
    transaction, so that the instances of one request find them without a query."""

    def __init__(self) -> None:
        self.studies: dict[str, int] = {}
        self.series: dict[tuple[str, str], int] = {}

    def clear(self) -> None:
        """After a rolled back savepoint: rows it added are gone."""
        self.studies.clear()
        self.series.clear()


_STUDIES = cast(Table, DicomStudy.__table__)
_SERIES = cast(Table, DicomSeries.__table__)
_INSTANCES = cast(Table, DicomInstance.__table__)
_CHANGES = cast(Table, DicomChange.__table__)
_FIND_STUDY = select(_STUDIES.c.pk).where(_STUDIES.c.study_uid == bindparam("b_uid"))
_FIND_SERIES = select(_SERIES.c.pk).where(
    _SERIES.c.study_pk == bindparam("b_study"), _SERIES.c.series_uid == bindparam("b_uid")
)
_FIND_INSTANCE = select(_INSTANCES.c.pk, _INSTANCES.c.blob_key).where(
    _INSTANCES.c.series_pk == bindparam("b_series"), _INSTANCES.c.sop_uid == bindparam("b_uid")
)
_UPDATE_STUDY = update(_STUDIES).where(_STUDIES.c.pk == bindparam("b_pk"))
_UPDATE_SERIES = update(_SERIES).where(_SERIES.c.pk == bindparam("b_pk"))
_UPDATE_INSTANCE = update(_INSTANCES).where(_INSTANCES.c.pk == bindparam("b_pk"))


def store_new(
    db: DriverCursor, batch: Sequence[NewInstance], now: datetime, *, replace: bool
) -> list[bool] | None:
    """Index a batch in a handful of statements: per instance, whether it was stored (``False``:
    already stored, 45070). ``None``, having written nothing, when the batch needs
    :func:`store_instance` one by one: it replaces an instance, or holds one twice.

    On a DBAPI cursor (``Store.write_cursor``): this runs once per STOW request, holding the
    database's write lock, and SQLAlchemy's bookkeeping took most of its time."""
    if len({(n.study_uid, n.series_uid, n.sop_uid) for n in batch}) < len(batch):
        return None
    study_uids = sorted({n.study_uid for n in batch})
    studies: dict[str, int] = dict(_select_in(db, _STUDIES, "study_uid, pk", study_uid=study_uids))
    series: dict[tuple[str, str], int] = {}
    if studies:
        uid_of = {pk: uid for uid, pk in studies.items()}
        rows = _select_in(
            db,
            _SERIES,
            "study_pk, series_uid, pk",
            study_pk=list(studies.values()),
            series_uid=sorted({n.series_uid for n in batch}),
        )
        series = {(uid_of[study_pk], uid): pk for study_pk, uid, pk in rows}
    existing: set[tuple[int, str]] = set()
    if series:
        rows = _select_in(
            db,
            _INSTANCES,
            "series_pk, sop_uid",
            series_pk=list(series.values()),
            sop_uid=[n.sop_uid for n in batch],
        )
        existing = {(series_pk, uid) for series_pk, uid in rows}
    stored = [(series.get((n.study_uid, n.series_uid)), n.sop_uid) not in existing for n in batch]
    if replace and not all(stored):
        return None
    kept = [n for n, ok in zip(batch, stored, strict=True) if ok]
    stamp = db.timestamp(now)
    _write_levels(db, kept, studies, series, now, stamp)
    if kept:
        instances = [
            {
                **n.row(now),
                "created_at": stamp,
                "study_pk": studies[n.study_uid],
                "series_pk": series[(n.study_uid, n.series_uid)],
                "sop_uid": n.sop_uid,
            }
            for n in kept
        ]
        _insert_many(db, _INSTANCES, instances)
        _insert_many(db, _CHANGES, [{**n.change(now), "timestamp": stamp} for n in kept])
    return stored


def _write_levels(
    db: DriverCursor,
    kept: Sequence[NewInstance],
    studies: dict[str, int],
    series: dict[tuple[str, str], int],
    now: datetime,
    stamp: Any,
) -> None:
    """Each study and series once, with the values of its last instance in ``kept``; new rows'
    keys are added to ``studies`` and ``series``."""
    last_of_study = {n.study_uid: n for n in kept}
    for uid in sorted(last_of_study):  # one lock order for every writer (PostgreSQL)
        values = {**last_of_study[uid].level_values(Level.STUDY, now), "updated_at": stamp}
        if uid in studies:
            _update(db, _STUDIES, studies[uid], values)
        else:
            studies[uid] = _insert_one(db, _STUDIES, {**values, "study_uid": uid})
    last_of_series = {(n.study_uid, n.series_uid): n for n in kept}
    for key in sorted(last_of_series):
        values = {**last_of_series[key].level_values(Level.SERIES, now), "updated_at": stamp}
        if key in series:
            _update(db, _SERIES, series[key], values)
        else:
            values.update(study_pk=studies[key[0]], series_uid=key[1])
            series[key] = _insert_one(db, _SERIES, values)


# The statements below name tables and columns from the table definitions; every value is a
# bound parameter.
def _select_in(db: DriverCursor, table: Table, columns: str, **wanted: list[Any]) -> list[Any]:
    """Rows whose every named column has one of the values given for it."""
    where = " AND ".join(
        f"{column} IN ({placeholders(len(values))})" for column, values in wanted.items()
    )
    params = [value for values in wanted.values() for value in values]
    return db.rows(f"SELECT {columns} FROM {table.name} WHERE {where}", params)  # noqa: S608


def _insert_one(db: DriverCursor, table: Table, values: dict[str, Any]) -> int:
    """Insert a row; its primary key."""
    (row,) = db.rows(insert_sql(table.name, list(values), returning="pk"), list(values.values()))
    return int(row[0])


def _insert_many(db: DriverCursor, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows that all have the same keys."""
    columns = list(rows[0])
    db.executemany(insert_sql(table.name, columns), [[row[c] for c in columns] for row in rows])


def _update(db: DriverCursor, table: Table, pk: int, values: dict[str, Any]) -> None:
    assignments = ",".join(f"{column}=?" for column in values)
    db.execute(f"UPDATE {table.name} SET {assignments} WHERE pk=?", [*values.values(), pk])  # noqa: S608


def store_instance(
    session: Session, new: NewInstance, now: datetime, *, replace: bool, known: Known | None = None
) -> str | None:
    """Index one stored blob; returns the blob key a replaced instance leaves behind.

    A handful of statements per instance, and none to find a study or series already met in
    the same transaction (``known``)."""
    known = known if known is not None else Known()
    study_pk = known.studies.get(new.study_uid)
    if study_pk is None:
        study_pk = session.execute(_FIND_STUDY, {"b_uid": new.study_uid}).scalar()
    series_key = (new.study_uid, new.series_uid)
    series_pk = known.series.get(series_key)
    if series_pk is None and study_pk is not None:
        series_pk = session.execute(
            _FIND_SERIES, {"b_study": study_pk, "b_uid": new.series_uid}
        ).scalar()
    instance: Any = None
    if series_pk is not None:
        instance = session.execute(
            _FIND_INSTANCE, {"b_series": series_pk, "b_uid": new.sop_uid}
        ).first()
    if instance is not None and not replace:
        raise Duplicate()
    study_values = new.level_values(Level.STUDY, now)
    if study_pk is None:
        study_values["study_uid"] = new.study_uid
        study_pk = _inserted(session.execute(insert(_STUDIES), study_values))
    else:
        session.execute(_UPDATE_STUDY, {"b_pk": study_pk, **study_values})
    series_values = new.level_values(Level.SERIES, now)
    if series_pk is None:
        series_values.update(study_pk=study_pk, series_uid=new.series_uid)
        series_pk = _inserted(session.execute(insert(_SERIES), series_values))
    else:
        session.execute(_UPDATE_SERIES, {"b_pk": series_pk, **series_values})
    known.studies[new.study_uid] = study_pk
    known.series[series_key] = series_pk
    values = new.row(now)
    replaced: str | None = None
    if instance is None:
        values.update(study_pk=study_pk, series_pk=series_pk, sop_uid=new.sop_uid)
        session.execute(insert(_INSTANCES), values)
    else:
        replaced = instance.blob_key
        _mark(session, new.study_uid, new.series_uid, new.sop_uid, "replaced")
        session.execute(_UPDATE_INSTANCE, {"b_pk": instance.pk, **values})
    session.execute(insert(_CHANGES), new.change(now))
    return replaced


def _inserted(result: Any) -> int:
    """The primary key of the row a Core INSERT added."""
    key = cast(CursorResult[Any], result).inserted_primary_key
    assert key is not None
    return int(key[0])


def record_change(
    session: Session, action: str, study: str, series: str, sop: str, now: datetime
) -> None:
    state = "current" if action == "create" else "deleted"
    if action == "delete":
        _mark(session, study, series, sop, "deleted")
    session.add(
        DicomChange(
            timestamp=now,
            action=action,
            state=state,
            study_uid=study,
            series_uid=series,
            sop_uid=sop,
        )
    )


def _mark(session: Session, study: str, series: str, sop: str, state: str) -> None:
    session.execute(
        update(DicomChange)
        .where(
            DicomChange.sop_uid == sop,
            DicomChange.series_uid == series,
            DicomChange.study_uid == study,
            DicomChange.state == "current",
        )
        .values(state=state)
    )
