"""The sign-in log: one row per token request, success or failure.

Rows are queued in memory and written in batches by a background thread (every quarter second,
or sooner when the batch fills), so logging never adds a database write to the token path.
Entra ID itself shows sign-ins minutes late; ours appear within a second. No secret value is
ever part of a row: only the credential's keyId.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, insert, or_, select
from sqlalchemy.orm import Session

from dicomite.ids import time_ordered_uuid
from dicomite.store.db import Store
from dicomite.store.tables import SignIn

log = logging.getLogger(__name__)
SIGN_INS = cast(Table, SignIn.__table__)
FLUSH_SECONDS = 0.25
BATCH = 500
_INSERT = insert(SIGN_INS)


@dataclass(frozen=True)
class SignInEvent:
    tenant_id: str
    created_at: datetime
    app_id: str | None
    app_display_name: str | None
    service_principal_id: str | None
    resource: str | None
    resource_display_name: str | None
    resource_id: str | None
    error_code: int
    failure_reason: str | None
    credential_type: str | None
    credential_key_id: str | None
    ip_address: str | None
    correlation_id: str | None


class SignInRecorder:
    """Buffers events in a list (appending is atomic under the GIL, so the token path takes
    no lock and wakes no thread) and writes them from a background thread."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: list[SignInEvent] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="sign-in-log", daemon=True)
            self._thread.start()

    def record(self, event: SignInEvent) -> None:
        self._pending.append(event)
        if self._thread is None:
            self.flush()

    def stop(self) -> None:
        if self._thread is not None:
            self._stopping.set()
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()

    def flush(self) -> None:
        batch, self._pending = self._pending, []
        for start in range(0, len(batch), BATCH):
            self._write(batch[start : start + BATCH])

    def _run(self) -> None:
        while not self._stopping.wait(FLUSH_SECONDS):
            self.flush()

    def _write(self, batch: Sequence[SignInEvent]) -> None:
        rows = [{"id": time_ordered_uuid(), **vars(event)} for event in batch]
        try:
            with self._store.transaction(write=True) as connection:
                connection.execute(_INSERT, rows)  # one executemany
        except Exception:  # a lost log row must never take the token service down
            log.exception("could not write %d sign-in log rows", len(batch))


def list_sign_ins(
    session: Session,
    tenant_id: str,
    *,
    app_id: str | None = None,
    app_ids: Collection[str] | None = None,
    app_contains: str | None = None,
    failures_only: bool = False,
    successes_only: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[SignIn]:
    """Newest first. ``app_ids`` keeps only those clients' rows (an empty set keeps none);
    ``app_contains`` matches part of the client's display name or appId, case-insensitively;
    ``since`` is inclusive, ``until`` exclusive."""
    query = select(SignIn).where(SignIn.tenant_id == tenant_id)
    if app_id:
        query = query.where(SignIn.app_id == app_id)
    if app_ids is not None:
        query = query.where(SignIn.app_id.in_(app_ids))
    if app_contains:
        pattern = _contains(app_contains)
        query = query.where(
            or_(
                func.lower(SignIn.app_display_name).like(pattern, escape="\\"),
                func.lower(SignIn.app_id).like(pattern, escape="\\"),
            )
        )
    if failures_only:
        query = query.where(SignIn.error_code != 0)
    if successes_only:
        query = query.where(SignIn.error_code == 0)
    if since:
        query = query.where(SignIn.created_at >= since)
    if until:
        query = query.where(SignIn.created_at < until)
    query = query.order_by(SignIn.created_at.desc(), SignIn.id).offset(offset).limit(limit)
    return session.scalars(query).all()


def _contains(text: str) -> str:
    """A LIKE pattern matching ``text`` literally (its ``%``, ``_`` and ``\\`` escaped)."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
