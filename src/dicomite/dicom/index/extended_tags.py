"""Extended query tags in the store: the tags, their JSON (Azure's "Extended Query Tag"
definition, written as the service writes it: camelCase enum values, null fields left out), the
set's version, and what QIDO and STOW read of them.

A tag is added ``adding`` with its reindex operation (``dicom.operations.reindex``), becomes
``ready`` when that operation has indexed the instances stored before it, and is ``deleting``
while its values are removed. STOW indexes ``adding`` and ``ready`` tags at once; QIDO matches
``ready`` ones whose ``queryStatus`` is ``enabled``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, delete, func, insert, select, update

from dicomite.dicom.errors import BadRequest, Conflict, NotFound
from dicomite.dicom.index.schema import Level
from dicomite.dicom.index.tag_entries import LEVEL_NAMES, MAX_TAGS, TagEntry
from dicomite.store.compiled import select_rows
from dicomite.store.db import Store
from dicomite.store.tables import (
    DicomExtendedQueryTag,
    DicomIndexState,
    DicomInstanceTagValue,
    DicomSeriesTagValue,
    DicomStudyTagValue,
    DicomTagError,
)

ADDING, READY, DELETING = "adding", "ready", "deleting"
ENABLED, DISABLED = "enabled", "disabled"
TAGS = cast(Table, DicomExtendedQueryTag.__table__)
ERRORS = cast(Table, DicomTagError.__table__)
VALUES: dict[Level, Table] = {
    Level.STUDY: cast(Table, DicomStudyTagValue.__table__),
    Level.SERIES: cast(Table, DicomSeriesTagValue.__table__),
    Level.INSTANCE: cast(Table, DicomInstanceTagValue.__table__),
}
_STATE = cast(Table, DicomIndexState.__table__)


@dataclass(frozen=True)
class QueryTag:
    key: int
    path: str
    vr: str
    private_creator: str | None
    level: Level
    status: str
    query_status: str
    operation_id: str | None
    error_count: int

    @property
    def tag(self) -> int:
        return int(self.path, 16)

    def as_json(self, base_url: str) -> dict[str, Any]:
        """``base_url``: ``{public_url}/dicom/v{n}``."""
        found: dict[str, Any] = {"path": self.path, "vr": self.vr}
        if self.private_creator is not None:
            found["privateCreator"] = self.private_creator
        found |= {"level": LEVEL_NAMES[self.level], "status": self.status}
        found["queryStatus"] = self.query_status
        if self.error_count:
            href = f"{base_url}/extendedquerytags/{self.path}/errors"
            found["errors"] = {"count": self.error_count, "href": href}
        if self.operation_id is not None:
            href = f"{base_url}/operations/{self.operation_id}"
            found["operation"] = {"id": self.operation_id, "href": href}
        return found


_ERROR_COUNT = (
    select(func.count()).where(ERRORS.c.tag_key == TAGS.c.key).correlate(TAGS).scalar_subquery()
)
_COLUMNS = (
    TAGS.c.key,
    TAGS.c.path,
    TAGS.c.vr,
    TAGS.c.private_creator,
    TAGS.c.level,
    TAGS.c.status,
    TAGS.c.query_status,
    TAGS.c.operation_id,
    _ERROR_COUNT,
)
_BY_PATHS = select(*_COLUMNS).where(TAGS.c.path.in_(bindparam("paths", expanding=True)))
_VERSION = select(_STATE.c.tags_version).where(_STATE.c.id == 1)
_LOCKED_VERSION = _VERSION.with_for_update(read=True)


def _tag(row: Sequence[Any]) -> QueryTag:
    key, path, vr, creator, level, status, query_status, operation_id, errors = row
    return QueryTag(
        key, path, vr, creator, Level(level), status, query_status, operation_id, errors
    )


def list_tags(db: Connection, limit: int = MAX_TAGS, offset: int = 0) -> list[QueryTag]:
    statement = select(*_COLUMNS).order_by(TAGS.c.key).limit(limit).offset(offset)
    return [_tag(row) for row in db.execute(statement)]


def get_tag(db: Connection, path: str) -> QueryTag:
    found = by_paths(db, [path]).get(path)
    if found is None:
        raise NotFound(f"The specified extended query tag with tag path {path} cannot be found.")
    return found


def by_paths(db: Connection, paths: Sequence[str]) -> dict[str, QueryTag]:
    """The tags of ``paths`` (a QIDO request's): one compiled statement."""
    return {tag.path: tag for tag in map(_tag, select_rows(db, _BY_PATHS, {"paths": paths}))}


def of_operation(db: Connection, operation_id: str) -> list[QueryTag]:
    statement = select(*_COLUMNS).where(TAGS.c.operation_id == operation_id)
    return [_tag(row) for row in db.execute(statement.order_by(TAGS.c.key))]


def insert_tags(
    db: Connection, entries: Sequence[TagEntry], operation_id: str, now: datetime
) -> None:
    """Add ``entries`` (``adding``, queries enabled) for the reindex ``operation_id``: 409 when
    one exists, 400 past the limit. Run in an exclusive transaction: counts and checks hold."""
    paths = [entry.path for entry in entries]
    if db.scalar(select(func.count()).where(TAGS.c.path.in_(paths))):
        raise Conflict("One or more extended query tags already exist.")
    if (db.scalar(select(func.count()).select_from(TAGS)) or 0) + len(entries) > MAX_TAGS:
        raise BadRequest(f"Extended query tags exceeds max allowed count '{MAX_TAGS}'.")
    rows = [
        {
            "path": entry.path,
            "vr": entry.vr,
            "private_creator": entry.private_creator,
            "level": int(entry.level),
            "status": ADDING,
            "query_status": ENABLED,
            "operation_id": operation_id,
            "created_at": now,
        }
        for entry in entries
    ]
    db.execute(insert(TAGS), rows)
    bump_version(db)


def bump_version(db: Connection) -> None:
    """The set of indexed tags changed: STOWs read them again (see ``DicomIndexState``)."""
    db.execute(
        update(_STATE).where(_STATE.c.id == 1).values(tags_version=_STATE.c.tags_version + 1)
    )


def locked_version(db: Connection) -> int:
    """The set's version, read sharing its row's lock (PostgreSQL; SQLite's write lock already
    orders writers): a change of the set waits for this transaction, and this one for it."""
    return int(select_rows(db, _LOCKED_VERSION)[0][0])  # every STOW batch: compiled once


def set_query_status(db: Connection, path: str, status: str) -> QueryTag:
    get_tag(db, path)
    db.execute(update(TAGS).where(TAGS.c.path == path).values(query_status=status))
    return get_tag(db, path)


_DELETE_BATCH = 5_000


def delete_tag(store: Store, path: str) -> None:
    """Mark the tag ``deleting`` (STOW and QIDO drop it at once), remove its values a batch
    per transaction (no write lock held long), then the tag. A delete interrupted midway leaves
    it ``deleting``; deleting it again finishes."""
    with store.transaction(write=True) as db:
        key = get_tag(db, path).key
        db.execute(update(TAGS).where(TAGS.c.key == key).values(status=DELETING))
        bump_version(db)
    for table in (*VALUES.values(), ERRORS):
        _delete_rows(store, table, key)
    with store.transaction(write=True) as db:
        db.execute(delete(TAGS).where(TAGS.c.key == key))


def _delete_rows(store: Store, table: Table, key: int) -> None:
    pk = table.c.resource_pk if "resource_pk" in table.c else table.c.instance_pk
    batch = select(pk).where(table.c.tag_key == key).limit(_DELETE_BATCH).scalar_subquery()
    statement = delete(table).where(table.c.tag_key == key, pk.in_(batch))
    while True:
        with store.transaction(write=True) as db:
            if db.execute(statement).rowcount < _DELETE_BATCH:
                return


@dataclass(frozen=True)
class Indexed:
    """What STOW indexes at a version of the set: its ``adding`` and ``ready`` tags."""

    version: int
    tags: tuple[QueryTag, ...]


def indexed(db: Connection) -> Indexed:
    version = int(db.scalar(_VERSION) or 0)
    tags = tuple(tag for tag in list_tags(db) if tag.status != DELETING)
    return Indexed(version, tags)


class IndexedCache:
    """The tags STOW indexes, read again when the set's version moves: a one-value probe per
    STOW request (``Store.scalar``), the tags only after a change."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._found = Indexed(-1, ())
        self._lock = threading.Lock()

    def current(self) -> Indexed:
        version = int(self._store.scalar(_VERSION, {}) or 0)
        if version != self._found.version:
            with self._lock, self._store.transaction() as db:
                self._found = indexed(db)
        return self._found
