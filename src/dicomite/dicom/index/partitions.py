"""Data partitions (Azure DICOM service, "Enable data partitioning"): the same Study, Series and
SOP Instance UIDs may be stored once per partition, and nothing crosses partitions.

A deployment turns partitions on at a start with ``--data-partitions``; it is recorded in the
index and never turned off ("After data partitioning is turned on, it can't be turned off").
Data stored before lives in ``Microsoft.Default`` (key 1). A partition is created by the first
STOW naming it, and is never renamed or deleted, so a process may remember partitions it found.

Every transaction of the index takes a :class:`Partition`: writes store its key, and reads of a
partitioned deployment match it. :data:`UNPARTITIONED` is the whole index of a deployment
without partitions, where everything is in partition 1 and reads need no partition condition.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from dicomite.clock import utcnow
from dicomite.dicom.errors import BadRequest
from dicomite.store.db import Store
from dicomite.store.tables import DicomIndexState, DicomPartition

DEFAULT_KEY = 1
DEFAULT_NAME = "Microsoft.Default"
# "Up to 64 characters long", "any combination of alphanumeric characters, ., -, and _"
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_TABLE = cast(Table, DicomPartition.__table__)
_STATE = cast(Table, DicomIndexState.__table__)


@dataclass(frozen=True)
class Partition:
    key: int
    name: str
    scoped: bool = True  # False: partitions are off; the index is all partition 1


UNPARTITIONED = Partition(DEFAULT_KEY, DEFAULT_NAME, scoped=False)


class PartitionRefused(BadRequest):
    """A request the deployment's partitions refuse, with the messages of data partitions' "New
    responses" table (400 each)."""


DISABLED = "Data partitions feature is disabled."
MISSING = "PartitionName value is missing in the route segment."
NOT_FOUND = "Specified PartitionName {} does not exist."
INVALID = (
    "The PartitionName '{}' is invalid: up to 64 characters, each a letter, a digit, '.', '-' "
    "or '_'."
)


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise PartitionRefused(INVALID.format(name[:80]))
    return name


def enabled(db: Connection) -> bool:
    return bool(db.execute(select(_STATE.c.data_partitions)).scalar())


def enable(db: Connection) -> None:
    """Turn partitions on for good."""
    db.execute(update(_STATE).values(data_partitions=True))


def find(db: Connection, name: str) -> Partition | None:
    row = db.execute(select(_TABLE.c.key).where(_TABLE.c.name == name)).first()
    return None if row is None else Partition(row.key, name)


def listed(db: Connection) -> list[dict[str, Any]]:
    """All partitions in the REST shape of Microsoft's ``Partition`` (its client's model)."""
    rows = db.execute(select(_TABLE).order_by(_TABLE.c.key))
    return [
        {"partitionKey": r.key, "partitionName": r.name, "createdDate": _date(r.created_at)}
        for r in rows
    ]


def _date(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class Partitions:
    """One process's view of the deployment's partitions: whether they are on, and the
    partitions it has met (they are never renamed or deleted)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        with store.transaction() as db:
            self.on = enabled(db)
        self._known: dict[str, Partition] = {}
        self._lock = threading.Lock()

    def resolve(self, name: str | None, create: bool = False) -> Partition:
        """The partition a request names (``None``: none named); ``create``: a STOW, which
        creates it when new. Blocking on a miss: call it in a worker thread then."""
        if not self.on:
            if name is not None:
                raise PartitionRefused(DISABLED)
            return UNPARTITIONED
        if name is None:
            raise PartitionRefused(MISSING)
        found = self._known.get(name)
        if found is None:
            found = self._load(check_name(name), create)
            with self._lock:
                self._known[name] = found
        return found

    @property
    def default(self) -> Partition:
        """Where the portal and the viewer work: ``Microsoft.Default`` when partitions are on."""
        return Partition(DEFAULT_KEY, DEFAULT_NAME) if self.on else UNPARTITIONED

    def known(self, name: str | None) -> bool:
        """Whether :meth:`resolve` answers without the database."""
        return not self.on or name is None or name in self._known

    def _load(self, name: str, create: bool) -> Partition:
        with self._store.transaction() as db:
            found = find(db, name)
        if found is not None:
            return found
        if not create:
            raise PartitionRefused(NOT_FOUND.format(name))
        try:
            with self._store.transaction(write=True) as db:
                key = db.execute(
                    insert(_TABLE).values(name=name, created_at=utcnow()).returning(_TABLE.c.key)
                ).scalar_one()
            return Partition(key, name)
        except IntegrityError:  # another request created it first
            with self._store.transaction() as db:
                raced = find(db, name)
            if raced is None:
                raise
            return raced
