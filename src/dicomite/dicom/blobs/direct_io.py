"""Blob files written around the page cache (O_DIRECT), from reused page-aligned buffers.

A stored instance is written once and read later, if at all soon. Written through the page
cache, every byte is copied into newly allocated cache pages, written back by the kernel and
then synced; on the benchmark's virtual machine, where the first touch of a new page costs
3 to 4.5 µs, that copy was the largest part of a STOW's kernel time (bench/README.md). With
O_DIRECT the device reads the bytes from a staging buffer that is reused, and ``fdatasync`` has
only the file's size and blocks left to write. Ingesting a large archive also no longer evicts
what readers have cached; the price is that a just-stored blob is read from the disk once.

O_DIRECT needs the buffer address, the file offset and the length aligned to the device's
logical block size (open(2), NOTES "O_DIRECT"); ``BLOCK`` covers 512-byte and 4K devices. A
blob file is opened with O_DIRECT; whole blocks go direct, and the tail of the file, under one
block, through the page cache once O_DIRECT is cleared with ``fcntl(F_SETFL)``. Where a file
system refuses O_DIRECT at ``open`` (tmpfs before Linux 6.6, some FUSE file systems) or a write
is refused for its alignment, the file is written the plain way, and the store does not try
again.
"""

from __future__ import annotations

import errno
import mmap
import os
import sys
import threading
from collections.abc import Sequence

if sys.platform != "win32":  # where O_DIRECT exists, so does fcntl
    import fcntl

BLOCK = 4096
STAGE_BYTES = 1024 * 1024  # a multiple of BLOCK; one direct write each time a buffer fills
_O_DIRECT: int = getattr(os, "O_DIRECT", 0)
_KEPT_BUFFERS = 32  # free staging buffers kept for reuse (32 MB at most)


class DirectIO:
    """Whether a store writes around the page cache, and its pool of staging buffers."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and _O_DIRECT != 0
        self._free: list[mmap.mmap] = []
        self._lock = threading.Lock()

    @property
    def open_flag(self) -> int:
        """What to add to the flags of ``open`` for a new blob file (0 once refused)."""
        return _O_DIRECT if self.enabled else 0

    def writes(self, fd: int, flags: int) -> DirectWrites | None:
        """The writer of ``fd``, opened with ``flags``: None unless they hold O_DIRECT."""
        return DirectWrites(self, fd) if flags & _O_DIRECT else None

    def take(self) -> mmap.mmap:
        with self._lock:
            if self._free:
                return self._free.pop()
        return mmap.mmap(-1, STAGE_BYTES)  # anonymous memory: page-aligned

    def give(self, buffer: mmap.mmap) -> None:
        with self._lock:
            if len(self._free) < _KEPT_BUFFERS:
                self._free.append(buffer)
                return
        buffer.close()

    def refused(self) -> None:
        """O_DIRECT was refused (at ``open`` by the file system, or a write for its
        alignment): plain writes from now on."""
        self.enabled = False


class DirectWrites:
    """The bytes of one file: staged, whole buffers written direct as they fill, the rest at
    ``finish``. ``release`` returns the buffer (call it in every case)."""

    def __init__(self, owner: DirectIO, fd: int) -> None:
        self._owner = owner
        self._fd = fd
        self._stage: mmap.mmap | None = owner.take()
        self._view = memoryview(self._stage)
        self._filled = 0
        self._direct = True

    def write_all(self, chunks: Sequence[bytes | memoryview]) -> None:
        for chunk in chunks:
            data = memoryview(chunk).cast("B")
            while data:
                taken = min(len(data), STAGE_BYTES - self._filled)
                self._view[self._filled : self._filled + taken] = data[:taken]
                self._filled += taken
                data = data[taken:]
                if self._filled == STAGE_BYTES:
                    self._write_staged(STAGE_BYTES)

    def finish(self) -> None:
        """Write what is staged: whole blocks direct, the tail through the page cache."""
        whole = self._filled - self._filled % BLOCK
        if whole:
            self._write_staged(whole)
        if self._filled:
            self._plain()
            self._write_staged(self._filled)

    def release(self) -> None:
        if self._stage is not None:
            self._view.release()
            self._owner.give(self._stage)
            self._stage = None

    def _write_staged(self, length: int) -> None:
        """Write the first ``length`` staged bytes and keep the rest at the buffer's start."""
        done = 0
        while done < length:
            try:
                done += os.write(self._fd, self._view[done:length])
            except OSError as error:
                if error.errno != errno.EINVAL or not self._direct:
                    raise
                self._owner.refused()
                self._plain()
        rest = self._filled - length
        if rest:
            self._view[:rest] = self._view[length : self._filled]
        self._filled = rest

    def _plain(self) -> None:
        if self._direct:
            # The file was opened without O_APPEND, O_ASYNC, O_NOATIME or O_NONBLOCK, the other
            # flags F_SETFL sets: 0 clears O_DIRECT alone, with no F_GETFL first.
            fcntl.fcntl(self._fd, fcntl.F_SETFL, 0)
            self._direct = False
