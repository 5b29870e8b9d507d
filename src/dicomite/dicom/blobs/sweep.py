"""Removes what crashes leave behind (ARCHITECTURE.md, storage rules): temporary files of writers
that never committed, and committed blobs whose index row (an instance's, or an updated
instance's original version) never committed (a crash between the
two steps of a STOW) or whose row was deleted before the blob (a crash inside DELETE).

A blob's key starts with a UUIDv7 (``blobs.new_blob_key``), so its age is known without a
``stat``; only blobs older than the grace period are candidates, which leaves every STOW still
between "blob committed" and "row committed" alone.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from itertools import islice

from sqlalchemy import select

from dicomite.dicom.blobs.protocol import BlobStore
from dicomite.store.db import Store
from dicomite.store.tables import DicomInstance, DicomInstanceOriginal

GRACE_SECONDS = 3600.0
_BATCH = 500


def blob_age_seconds(key: str, now: float) -> float | None:
    name = key.rsplit("/", 1)[-1].removesuffix(".dcm")
    try:
        value = uuid.UUID(name)
    except ValueError:
        return None
    if value.version != 7:
        return None
    return now - (value.int >> 80) / 1000


def sweep(store: Store, blobs: BlobStore, grace_seconds: float = GRACE_SECONDS) -> tuple[int, int]:
    """``(temporary files removed, orphaned blobs removed)``."""
    temporary = blobs.sweep_temporary(grace_seconds)
    now = time.time()
    listed = blobs.keys()
    candidates = (k for k in listed if (blob_age_seconds(k, now) or 0) > grace_seconds)
    orphans = 0
    for batch in _batches(candidates):
        with store.transaction() as connection:
            indexed = set(
                connection.scalars(
                    select(DicomInstance.blob_key).where(DicomInstance.blob_key.in_(batch))
                )
            )
            indexed |= set(  # original versions of updated instances
                connection.scalars(
                    select(DicomInstanceOriginal.blob_key).where(
                        DicomInstanceOriginal.blob_key.in_(batch)
                    )
                )
            )
        for key in batch:
            if key not in indexed:
                blobs.delete(key)
                orphans += 1
    return temporary, orphans


def _batches(keys: Iterator[str]) -> Iterator[list[str]]:
    while batch := list(islice(keys, _BATCH)):
        yield batch
