"""Where instance files live: the ``BlobStore`` protocol and the default folder store.

Rules every store keeps (ARCHITECTURE.md, storage rules):
- a blob is written under a temporary name and becomes visible under its key only when
  ``BlobWriter.commit`` returns, after the bytes are durable (fsync, then atomic rename);
- nothing is ever visible half-written: an aborted or crashed writer leaves at most a temporary
  file that ``sweep_temporary`` removes later;
- keys are chosen by the caller (``new_blob_key``), never derived from request input, so a
  hostile UID cannot reach outside the store.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol, Self

from dicomite.ids import time_ordered_uuid

CHUNK = 1024 * 1024
_TEMPORARY_SUFFIX = ".partial"


def new_blob_key() -> str:
    """A fresh key: time-ordered, so listing and sweeping visit blobs in write order."""
    name = time_ordered_uuid()
    return f"instances/{name[:8]}/{name}.dcm"


class BlobWriter(Protocol):
    def write(self, data: bytes) -> None: ...
    def commit(self) -> int:
        """Make the blob durable and visible; returns its size in bytes."""
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
    def writer(self, key: str) -> BlobWriter: ...
    def open(self, key: str) -> BinaryIO:
        """A seekable, readable stream of the whole blob."""
        ...

    def size(self, key: str) -> int | None: ...
    def delete(self, key: str) -> None: ...
    def keys(self) -> Iterator[str]: ...
    def sweep_temporary(self, older_than_seconds: float) -> int: ...


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


class _FileWriter(AbortOnExit):
    def __init__(self, final: Path) -> None:
        self._final = final
        final.parent.mkdir(parents=True, exist_ok=True)
        self._temporary = final.with_name(f"{final.name}.{os.getpid()}{_TEMPORARY_SUFFIX}")
        self._handle: BinaryIO | None = self._temporary.open("xb")
        self._size = 0

    def write(self, data: bytes) -> None:
        assert self._handle is not None, "writer already finished"
        self._handle.write(data)
        self._size += len(data)

    def commit(self) -> int:
        assert self._handle is not None, "writer already finished"
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        self._handle = None
        os.replace(self._temporary, self._final)
        _fsync_directory(self._final.parent)
        return self._size

    def abort(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            self._temporary.unlink(missing_ok=True)


def _fsync_directory(path: Path) -> None:
    """The rename itself is durable only once the directory entry is (POSIX rename(2))."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileSystemBlobStore:
    """Blobs as files under one folder (the embedded default: ``DATA_DIR/blobs``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()) or key.endswith(_TEMPORARY_SUFFIX):
            raise ValueError(f"invalid blob key {key!r}")
        return path

    def writer(self, key: str) -> BlobWriter:
        return _FileWriter(self._path(key))

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self) -> Iterator[str]:
        for path in sorted(self.root.rglob("*.dcm")):
            yield path.relative_to(self.root).as_posix()

    def sweep_temporary(self, older_than_seconds: float) -> int:
        """Remove temporary files of writers that crashed before committing."""
        cutoff = time.time() - older_than_seconds
        removed = 0
        for path in self.root.rglob(f"*{_TEMPORARY_SUFFIX}"):
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
