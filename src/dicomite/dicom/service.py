"""The DICOM service's long-lived objects, one per process and shared by both API versions:
the index (``store``), the blob store, the STOW service, token checks, the blob sweeper and the
runner of long-running operations."""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path

from dicomite.dicom.auth import DicomAuth
from dicomite.dicom.blobs.protocol import BlobStore
from dicomite.dicom.blobs.sweep import sweep
from dicomite.dicom.index.partitions import Partitions
from dicomite.dicom.operations import export, reindex
from dicomite.dicom.operations.bulk_update import UPDATE, Updater
from dicomite.dicom.operations.export import EXPORT, Exporter
from dicomite.dicom.operations.reindex import REINDEX
from dicomite.dicom.operations.runner import OperationRunner, Step
from dicomite.dicom.stow.service import StowService
from dicomite.store.db import Store

logger = logging.getLogger(__name__)


def _steps(
    blobs: BlobStore, export_root: Path, max_inflated_bytes: int, batch_size: int | None
) -> dict[str, Step]:
    """The operations' steps; reindexes and exports in steps of the deployment's batch size
    (None: each its own default)."""
    return {
        REINDEX: functools.partial(reindex.step, batch_size=batch_size or reindex.BATCH),
        EXPORT: Exporter(blobs, export_root, batch_size or export.BATCH).step,
        UPDATE: Updater(blobs, max_inflated_bytes).step,
    }


class DicomService:
    """What every route needs; one per process, shared by both API versions."""

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        auth: DicomAuth,
        public_url: str,
        max_request_bytes: int,
        *,
        max_inflated_bytes: int,
        export_root: Path,
        operation_batch_size: int | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.auth = auth
        self.public_url = public_url
        self.stow = StowService(store, blobs, max_request_bytes, max_inflated_bytes)
        self.partitions = Partitions(store)
        self.max_inflated_bytes = max_inflated_bytes  # what one retrieval may inflate
        self.export_root = export_root  # the only folder exports may write to
        steps = _steps(blobs, export_root, max_inflated_bytes, operation_batch_size)
        self.operations = OperationRunner(store, self.stow.write_lock, steps=steps)
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._sweeper_first = True

    def start_sweeper(self, every_seconds: float = 3600.0) -> None:
        """Sweep crash leftovers shortly after start, then hourly (see ``dicom.blobs.sweep``)."""

        def run() -> None:
            while not self._stop.wait(60.0 if self._sweeper_first else every_seconds):
                self._sweeper_first = False
                try:
                    temporary, orphans = sweep(self.store, self.blobs)
                except Exception:  # a sweep must never take the server down; retried later
                    logger.exception("blob sweep failed")
                    continue
                if temporary or orphans:
                    logger.info("blob sweep: %d temporary, %d orphaned", temporary, orphans)

        self._sweeper = threading.Thread(target=run, name="dicom-blob-sweeper", daemon=True)
        self._sweeper.start()

    def stop_sweeper(self) -> None:
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)
