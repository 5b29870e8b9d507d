"""One STOW part on its way to a blob: written in 1 MB slices off the event loop, committed
(durable, renamed) in one worker-thread hop when the part ends."""

from __future__ import annotations

import anyio.to_thread

from dicomite.dicom.blobs import BlobStore, BlobWriter, new_blob_key
from dicomite.dicom.errors import PayloadTooLarge

WRITE_CHUNK = 1024 * 1024
PART10_PREFIX = bytes(128) + b"DICM"  # PS3.10 §7.1: preamble and prefix


class PartUpload:
    """One part on its way to a blob, written in 1 MB slices off the event loop."""

    def __init__(self, blobs: BlobStore, limit: int) -> None:
        self._blobs = blobs
        self._limit = limit
        self._size = 0
        self._key = new_blob_key()
        self._writer: BlobWriter | None = None
        self._pending = bytearray()

    async def write(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._limit:
            raise PayloadTooLarge(f"The request exceeds the limit of {self._limit} bytes.")
        self._pending += data
        if len(self._pending) >= WRITE_CHUNK:
            await self._flush()

    async def _flush(self) -> None:
        await anyio.to_thread.run_sync(self._flush_sync)

    def _flush_sync(self) -> None:
        if self._writer is None:
            self._writer = self._blobs.writer(self._key)
            if self._pending[:2] == b"\x02\x00":
                # File Meta Information without the preamble and prefix (what pydicom writes
                # for a plain Dataset): stored as a PS3.10 file, so every reader accepts it.
                self._pending[:0] = PART10_PREFIX
        data, self._pending = bytes(self._pending), bytearray()
        self._writer.write(data)

    def commit_sync(self) -> tuple[str, int]:
        """Write what is pending, make the blob durable and visible (in a worker thread: one
        hop per part); on failure nothing is left but what the sweeper removes."""
        try:
            self._flush_sync()
            assert self._writer is not None
            size = self._writer.commit()
            self._writer = None
            return self._key, size
        finally:
            self.abort_sync()

    def abort_sync(self) -> None:
        if self._writer is not None:
            self._writer.abort()
            self._writer = None

    async def abort(self) -> None:
        if self._writer is not None:
            await anyio.to_thread.run_sync(self.abort_sync)
