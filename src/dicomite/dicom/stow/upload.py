"""One STOW part on its way to a blob: held in memory up to 1 MB, then written in slices of about
1 MB off the event loop, committed (durable, renamed) in one worker-thread hop when the part
ends. Its first bytes stay at hand, so that the header is read without reading the blob back."""

from __future__ import annotations

from dicomite.blocking import run_blocking
from dicomite.dicom.blobs.protocol import BlobStore, BlobWriter, new_blob_key
from dicomite.dicom.errors import PayloadTooLarge

WRITE_CHUNK = 1024 * 1024
HEAD_BYTES = 64 * 1024  # at least this much of the part is kept for reading its header
PART10_PREFIX = bytes(128) + b"DICM"  # PS3.10 §7.1: preamble and prefix


class PartUpload:
    """One part on its way to a blob. The chunks are the multipart reader's, not copies."""

    def __init__(self, blobs: BlobStore, limit: int) -> None:
        self._blobs = blobs
        self._limit = limit
        self._size = 0
        self.key = new_blob_key()
        self._writer: BlobWriter | None = None
        self._pending: list[bytes | memoryview] = []
        self._held = 0
        self.head = b""  # the blob's first bytes: HEAD_BYTES or more, or all of it
        self.complete = False  # whether ``head`` is the whole blob

    async def write(self, data: bytes | memoryview) -> None:
        self._size += len(data)
        if self._size > self._limit:
            raise PayloadTooLarge(f"The request exceeds the limit of {self._limit} bytes.")
        self._pending.append(data)
        self._held += len(data)
        if self._held >= WRITE_CHUNK:
            await run_blocking(self._flush_sync)

    def _flush_sync(self, *, last: bool = False) -> BlobWriter:
        """Write what is pending (opening the blob at the first call); the blob's writer."""
        chunks, self._pending, self._held = self._pending, [], 0
        writer = self._writer
        if writer is None:
            writer = self._writer = self._blobs.writer(self.key, self._size if last else None)
            self.head, chunks = self._head(chunks)
            self.complete = last and not chunks
            chunks.insert(0, self.head)
        writer.write_all(chunks)
        return writer

    def _head(self, chunks: list[bytes | memoryview]) -> tuple[bytes, list[bytes | memoryview]]:
        """The first HEAD_BYTES joined (all, when there are fewer), and the chunks after them:
        views, so that only the head is copied."""
        taken, held = 0, 0
        while taken < len(chunks) and held < HEAD_BYTES:
            held += len(chunks[taken])
            taken += 1
        first, rest = chunks[:taken], chunks[taken:]
        if held > HEAD_BYTES:  # the last chunk taken is split: its tail stays a view
            last = memoryview(first[-1])
            cut = len(last) - (held - HEAD_BYTES)
            first[-1] = last[:cut]
            rest.insert(0, last[cut:])
        head = b"".join(first)
        if head[:2] == b"\x02\x00":
            # File Meta Information without the preamble and prefix (what pydicom writes for a
            # plain Dataset): stored as a PS3.10 file, so every reader accepts it.
            head = PART10_PREFIX + head
        return head, rest

    def commit_sync(self, *, sync_name: bool = True) -> tuple[str, int]:
        """Write what is pending, make the blob durable and visible (in a worker thread: one
        hop per part); on failure nothing is left but what the sweeper removes. With
        ``sync_name`` false the caller calls ``BlobStore.sync_names`` before relying on it."""
        try:
            size = self._flush_sync(last=True).commit(sync_name=sync_name)
            self._writer = None
            return self.key, size
        finally:
            self.abort_sync()

    def abort_sync(self) -> None:
        if self._writer is not None:
            self._writer.abort()
            self._writer = None

    async def abort(self) -> None:
        if self._writer is not None:
            await run_blocking(self.abort_sync)
