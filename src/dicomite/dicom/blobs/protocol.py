"""The ``BlobStore`` protocol: where instance files live, whatever the store.

Rules every store keeps (ARCHITECTURE.md, storage rules):
- a blob is written under a temporary name and becomes visible under its key only when
  ``BlobWriter.commit`` returns, after the bytes are durable (fsync, then atomic rename);
- nothing is ever visible half-written: an aborted or crashed writer leaves at most a temporary
  file that ``sweep_temporary`` removes later;
- keys are chosen by the caller (``new_blob_key``), never derived from request input, so a
  hostile UID cannot reach outside the store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import BinaryIO, Protocol, Self

from dicomite.ids import time_ordered_uuid

CHUNK = 1024 * 1024


def new_blob_key() -> str:
    """A fresh key: time-ordered, so listing and sweeping visit blobs in write order."""
    name = time_ordered_uuid()
    return f"instances/{name[:8]}/{name}.dcm"


class BlobWriter(Protocol):
    def write(self, data: bytes | memoryview) -> None: ...
    def write_all(self, chunks: Sequence[bytes | memoryview]) -> None:
        """``write`` each chunk, in as few system calls as the store can."""
        ...

    def commit(self, *, sync_name: bool = True) -> int:
        """Make the blob durable and visible; returns its size in bytes. With ``sync_name``
        false the blob's name may still be lost in a crash until ``BlobStore.sync_names`` of
        its key returns (one directory sync for many blobs)."""
        ...

    def abort(self) -> None: ...
    def __enter__(self) -> BlobWriter: ...
    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class BlobStore(Protocol):
    def writer(self, key: str, size: int | None = None) -> BlobWriter:
        """A writer of ``key``; ``size`` is the blob's size when known before it is written."""
        ...

    def sync_names(self, keys: Iterable[str]) -> None:
        """Make the names of blobs committed with ``sync_name=False`` durable."""
        ...

    def open(self, key: str) -> BinaryIO:
        """A seekable, readable stream of the whole blob."""
        ...

    def local_path(self, key: str) -> str | None:
        """The blob's file on this machine, for a server to send it without copying it through
        Python; None when the store keeps blobs elsewhere (a remote service)."""
        ...

    def size(self, key: str) -> int | None: ...
    def delete(self, key: str) -> None: ...
    def keys(self) -> Iterator[str]: ...
    def sweep_temporary(self, older_than_seconds: float) -> int: ...


def check_key(key: str) -> str:
    """Keys are relative paths without ``.``/``..`` segments: checked as text, so that no key
    reaches outside the store and no check costs a system call."""
    segments = key.split("/")
    if (
        not key
        or len(key) > 1024
        or "\\" in key
        or "\x00" in key
        or any(s in ("", ".", "..") for s in segments)
    ):
        raise ValueError(f"invalid blob key {key!r}")
    return key


class WriterFinished(RuntimeError):
    """A write or commit on a writer that has committed or aborted: a caller's mistake."""


class AbortOnExit(ABC):
    """``with writer:`` aborts whatever was not committed when the block ends."""

    @abstractmethod
    def abort(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()  # a no-op after commit
