"""Long-running operations in the store, and their JSON (``GET /v{n}/operations/{id}``, the
Azure DICOM service's "Operation": camelCase, ``completed`` in v1 where v2 says ``succeeded``).

Durable: an operation is a row with its checkpoint (``state``). A runner takes a lease on it
(``lease_owner`` until ``lease_until``) and renews it with every step it commits, so one process
of the deployment runs each step. A lease lapses when its holder stops renewing it; a holder
that died on this host (a crashed or killed process) is seen at once, and its lease taken over.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select, update

from dicomite.store.db import Store
from dicomite.store.tables import DicomOperation

OPERATIONS = cast(Table, DicomOperation.__table__)
NOT_STARTED, RUNNING, SUCCEEDED, FAILED, CANCELED = (
    "notStarted",
    "running",
    "succeeded",
    "failed",
    "canceled",
)
ACTIVE = (NOT_STARTED, RUNNING)
LEASE = timedelta(seconds=30)
_GUID = re.compile(r"^[0-9a-fA-F]{32}$")
_COLUMNS = (
    OPERATIONS.c.id,
    OPERATIONS.c.type,
    OPERATIONS.c.status,
    OPERATIONS.c.percent_complete,
    OPERATIONS.c.resources,
    OPERATIONS.c.results,
    OPERATIONS.c.created_at,
    OPERATIONS.c.updated_at,
)


@dataclass(frozen=True)
class Operation:
    id: str
    type: str
    status: str
    percent_complete: int
    resources: list[str]  # paths below /v{n}/
    results: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime

    @property
    def running(self) -> bool:
        return self.status in ACTIVE

    def as_json(self, base_url: str, version: int) -> dict[str, Any]:
        """``base_url``: ``{public_url}/dicom/v{version}``."""
        status = "completed" if version == 1 and self.status == SUCCEEDED else self.status
        found: dict[str, Any] = {
            "operationId": self.id,
            "type": self.type,
            "createdTime": _time(self.created_at),
            "lastUpdatedTime": _time(self.updated_at),
            "status": status,
            "percentComplete": self.percent_complete,
            "resources": [f"{base_url}/{path}" for path in self.resources],
        }
        if self.results is not None:
            found["results"] = self.results
        return found


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_id() -> str:
    return uuid.uuid4().hex


def parse_id(text: str) -> str | None:
    """An operation id as the service writes it (32 hexadecimal digits) from any GUID form."""
    compact = text.strip("{}").replace("-", "")
    return compact.lower() if _GUID.match(compact) else None


def create(
    db: Connection, kind: str, resources: Sequence[str], state: dict[str, Any], now: datetime
) -> str:
    operation_id = new_id()
    db.execute(
        insert(OPERATIONS).values(
            id=operation_id,
            type=kind,
            status=NOT_STARTED,
            percent_complete=0,
            resources=list(resources),
            state=state,
            created_at=now,
            updated_at=now,
        )
    )
    return operation_id


def get(db: Connection, operation_id: str) -> Operation | None:
    row = db.execute(select(*_COLUMNS).where(OPERATIONS.c.id == operation_id)).first()
    return None if row is None else Operation(*row)


def active(db: Connection, kind: str) -> Operation | None:
    statement = select(*_COLUMNS).where(OPERATIONS.c.type == kind, OPERATIONS.c.status.in_(ACTIVE))
    row = db.execute(statement.limit(1)).first()
    return None if row is None else Operation(*row)


def recent(db: Connection, limit: int) -> list[Operation]:
    statement = select(*_COLUMNS).order_by(OPERATIONS.c.created_at.desc()).limit(limit)
    return [Operation(*row) for row in db.execute(statement)]


# ---- leases ----------------------------------------------------------------------------------


def owner_id() -> str:
    """This process, as a lease holder: host, process id, and a nonce (process ids recur)."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def _holder_gone(owner: str | None) -> bool:
    """Whether the lease holder was a process of this host that no longer runs."""
    host, _, rest = (owner or "").partition("/")
    pid = rest.partition("/")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True)
class Claimed:
    """An operation this process holds the lease of, at its checkpoint."""

    id: str
    type: str
    state: dict[str, Any]


_CLAIMABLE = (
    select(
        OPERATIONS.c.id,
        OPERATIONS.c.type,
        OPERATIONS.c.state,
        OPERATIONS.c.lease_owner,
        OPERATIONS.c.lease_until,
    )
    .where(OPERATIONS.c.status.in_(ACTIVE))
    .order_by(OPERATIONS.c.created_at)
)


def any_active(store: Store) -> bool:
    with store.transaction() as db:
        return (
            db.execute(
                select(OPERATIONS.c.id).where(OPERATIONS.c.status.in_(ACTIVE)).limit(1)
            ).first()
            is not None
        )


def claim(store: Store, owner: str, now: datetime) -> Claimed | None:
    """The oldest running operation whose lease is free, lapsed, held by a dead process of this
    host or by ``owner``, now leased to ``owner``; rows another host is claiming are skipped
    (PostgreSQL ``FOR UPDATE SKIP LOCKED``; SQLite's write lock orders claims)."""
    with store.transaction(write=True) as db:
        for found, kind, state, holder, until in db.execute(
            _CLAIMABLE.with_for_update(skip_locked=True)
        ):
            if holder in (None, owner) or until is None or until < now or _holder_gone(holder):
                _lease(db, found, owner, now, status=RUNNING)
                return Claimed(found, kind, dict(state))
    return None


def _lease(db: Connection, operation_id: str, owner: str, now: datetime, **values: Any) -> None:
    db.execute(
        update(OPERATIONS)
        .where(OPERATIONS.c.id == operation_id)
        .values(lease_owner=owner, lease_until=now + LEASE, updated_at=now, **values)
    )


def hold(db: Connection, claimed: Claimed, owner: str) -> bool:
    """In a step's write transaction: whether ``owner`` still holds the lease and the checkpoint
    is the one the step started from (the row stays locked until the step commits)."""
    row = db.execute(
        select(OPERATIONS.c.lease_owner, OPERATIONS.c.state)
        .where(OPERATIONS.c.id == claimed.id)
        .with_for_update()
    ).first()
    return row is not None and row[0] == owner and dict(row[1]) == claimed.state


def save(db: Connection, claimed: Claimed, owner: str, now: datetime, **values: Any) -> None:
    """A step's progress (``state``, ``percent_complete``, ``status``, ``results``), renewing
    the lease; a finished operation's lease is released."""
    if values.get("status") in (None, *ACTIVE):
        _lease(db, claimed.id, owner, now, **values)
        return
    finished = update(OPERATIONS).where(OPERATIONS.c.id == claimed.id)
    db.execute(finished.values(lease_owner=None, lease_until=None, updated_at=now, **values))
