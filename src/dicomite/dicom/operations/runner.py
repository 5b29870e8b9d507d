"""The operations runner: one long-lived thread per server process (like the blob sweeper)
that runs the steps of durable operations (``records``), one step at a time, whichever
process of the deployment holds an operation's lease. Started with the app, it takes up the
operations a stopped or killed process left, from their last checkpoint.

An operation whose step fails ``MAX_FAILURES`` times in a row is ``failed``, with the error.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext

from dicomite.clock import utcnow
from dicomite.dicom.operations import records, reindex
from dicomite.dicom.operations.records import Claimed
from dicomite.store.db import Store

logger = logging.getLogger(__name__)
Step = Callable[[Store, Claimed, str], None]
STEPS: dict[str, Step] = {reindex.REINDEX: reindex.step}
MAX_FAILURES = 3


class OperationRunner:
    def __init__(
        self,
        store: Store,
        write_lock: AbstractContextManager[object] | None = None,
        poll_seconds: float = 1.0,
        steps: Mapping[str, Step] = STEPS,
    ) -> None:
        self._store = store
        self._steps = steps
        # This process's index writers queue on it rather than in SQLite's busy handler.
        self._write_lock = write_lock or nullcontext()
        self._poll = poll_seconds
        self.owner = records.owner_id()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures: dict[str, int] = {}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dicom-operations", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """An operation was started here: run it now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception:  # the database away: the runner must outlive it; retried later
                logger.exception("operations runner")
                worked = False
            if not worked:
                self._wake.wait(self._poll)
                self._wake.clear()

    def run_once(self) -> bool:
        """One step of the oldest operation this process may run; whether there was one."""
        if not records.any_active(self._store):
            return False
        with self._write_lock:
            claimed = records.claim(self._store, self.owner, utcnow())
        if claimed is None:
            return False
        try:
            self._steps[claimed.type](self._store, claimed, self.owner)
        except Exception as error:
            self._failed(claimed, error)
        else:
            self._failures.pop(claimed.id, None)
        return True

    def _failed(self, claimed: Claimed, error: Exception) -> None:
        count = self._failures[claimed.id] = self._failures.get(claimed.id, 0) + 1
        logger.exception("operation %s (%s) step failed", claimed.id, claimed.type)
        if count < MAX_FAILURES:
            return
        del self._failures[claimed.id]
        results = {"errors": [f"{type(error).__name__}: {_reason(error)}"[:1000]]}
        with self._store.transaction(write=True) as db:
            if records.hold(db, claimed, self.owner):
                records.save(
                    db, claimed, self.owner, utcnow(), status=records.FAILED, results=results
                )


def _reason(error: Exception) -> str:
    """What the caller may read: an OS error without the server's own file names."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)
