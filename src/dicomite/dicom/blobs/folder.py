"""The default blob store: instance files in a local folder (``FileSystemBlobStore``).

It keeps the rules of :mod:`dicomite.dicom.blobs.protocol` with fsync and atomic rename.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from dicomite.dicom.blobs.direct_io import DirectIO, DirectWrites
from dicomite.dicom.blobs.protocol import AbortOnExit, BlobWriter, WriterFinished, check_key

_TEMPORARY_SUFFIX = ".partial"


class _FileWriter(AbortOnExit):
    """Unbuffered: parts arrive in large chunks, each written with one system call."""

    def __init__(self, final: str, directories: _Directories, direct: DirectIO) -> None:
        self._final = final
        self._temporary = f"{final}.{os.getpid()}{_TEMPORARY_SUFFIX}"
        flags = direct.open_flag
        try:
            self._fd: int | None = directories.create(self._temporary, flags)
        except OSError as error:
            if not flags or error.errno != errno.EINVAL:
                raise
            direct.refused()  # this file system has no direct I/O
            with suppress(FileNotFoundError):  # some kernels create the file before refusing
                os.unlink(self._temporary)
            flags = 0
            self._fd = directories.create(self._temporary, flags)
        self._size = 0
        self._direct: DirectWrites | None = None
        try:
            self._direct = direct.writes(self._fd, flags)
        except BaseException:  # no staging buffer (memory): no file left open or behind
            self.abort()
            raise

    def write(self, data: bytes | memoryview) -> None:
        self.write_all([data])

    def _open_fd(self) -> int:
        if self._fd is None:
            raise WriterFinished(f"the writer of {self._final} has finished")
        return self._fd

    def write_all(self, chunks: Sequence[bytes | memoryview]) -> None:
        fd = self._open_fd()
        views = [memoryview(chunk) for chunk in chunks if len(chunk)]
        self._size += sum(len(view) for view in views)
        if self._direct is not None:
            self._direct.write_all(views)
            return
        while views:
            written = os.writev(fd, views[:_IOV_MAX])
            while views and written >= len(views[0]):
                written -= len(views.pop(0))
            if written:
                views[0] = views[0][written:]

    def commit(self, *, sync_name: bool = True) -> int:
        fd = self._open_fd()
        if self._direct is not None:
            self._direct.finish()
            self._direct.release()
        _data_sync(fd)
        os.close(fd)
        self._fd = None
        os.replace(self._temporary, self._final)
        if sync_name:
            _fsync_directory(os.path.dirname(self._final))
        return self._size

    def abort(self) -> None:
        if self._direct is not None:
            self._direct.release()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            with suppress(FileNotFoundError):
                os.unlink(self._temporary)


# fdatasync: a new file's data and size, without the timestamps fsync would also write.
_data_sync = getattr(os, "fdatasync", os.fsync)


def _fsync_directory(path: str) -> None:
    """The rename itself is durable only once the directory entry is (POSIX rename(2))."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Directories:
    """Blob folders known to exist; a new one is made durable in its parent at once."""

    def __init__(self) -> None:
        self._known: set[str] = set()

    def create(self, path: str, flags: int = 0) -> int:
        """Create ``path`` exclusively (and its folder when needed), adding ``flags`` to the
        ``open``; its descriptor."""
        folder = os.path.dirname(path)
        if folder not in self._known:
            _make_durable_folder(folder)
            if len(self._known) > 1024:  # a new folder every 65 s (``new_blob_key``)
                self._known.clear()
            self._known.add(folder)
        try:
            return os.open(path, _CREATE | flags, 0o666)
        except FileNotFoundError:  # removed behind our back
            _make_durable_folder(folder)
            return os.open(path, _CREATE | flags, 0o666)


def _make_durable_folder(folder: str) -> None:
    if os.path.isdir(folder):
        return
    parent = os.path.dirname(folder)
    _make_durable_folder(parent)
    with suppress(FileExistsError):  # another writer made it first
        os.mkdir(folder)
    _fsync_directory(parent)


DIRECT_MIN_BYTES = 128 * 1024
_PLAIN = DirectIO(enabled=False)
_IOV_MAX = 1024  # buffers per writev (POSIX: at least 16; Linux: 1024)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


class FileSystemBlobStore:
    """Blobs as files under one folder (the embedded default: ``DATA_DIR/blobs``)."""

    def __init__(self, root: Path, *, direct_io: bool = True) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._prefix = str(root.resolve()) + os.sep
        self._directories = _Directories()
        self._direct = DirectIO(enabled=direct_io)

    def local_path(self, key: str) -> str:
        """The file of ``key`` (which need not exist)."""
        if key.endswith(_TEMPORARY_SUFFIX):
            raise ValueError(f"invalid blob key {key!r}")
        return self._prefix + check_key(key)

    def writer(self, key: str, size: int | None = None) -> BlobWriter:
        # A small blob written at once goes through the page cache: for a few blocks, switching
        # to O_DIRECT costs more system calls than the copy it saves.
        direct = self._direct if size is None or size >= DIRECT_MIN_BYTES else _PLAIN
        return _FileWriter(self.local_path(key), self._directories, direct)

    def sync_names(self, keys: Iterable[str]) -> None:
        for folder in sorted({os.path.dirname(self.local_path(key)) for key in keys}):
            _fsync_directory(folder)

    def open(self, key: str) -> BinaryIO:
        return open(self.local_path(key), "rb")

    def append(self, key: str, data: bytes) -> None:
        """Add ``data`` durably at the end of the file ``key`` (created when missing): a log."""
        path = self.local_path(key)
        _make_durable_folder(os.path.dirname(path))
        with open(path, "ab") as log:
            log.write(data)
            log.flush()
            os.fsync(log.fileno())

    def href(self, key: str) -> str:
        return Path(self.local_path(key)).as_uri()

    def close(self) -> None:
        """Nothing to release: files are opened and closed by each call."""

    def size(self, key: str) -> int | None:
        try:
            return os.stat(self.local_path(key)).st_size
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        with suppress(FileNotFoundError):
            os.unlink(self.local_path(key))

    def keys(self) -> Iterator[str]:
        for path in sorted(self.root.rglob("*.dcm")):
            yield path.relative_to(self.root).as_posix()

    def temporary_files(self) -> Iterator[Path]:
        """The temporary files of writers, as listed: each may be gone by the time it is seen
        (committed, that is renamed, or aborted)."""
        return self.root.rglob(f"*{_TEMPORARY_SUFFIX}")

    def sweep_temporary(self, older_than_seconds: float) -> int:
        """Remove temporary files of writers that crashed before committing."""
        cutoff = time.time() - older_than_seconds
        removed = 0
        for path in self.temporary_files():
            try:
                modified = path.stat().st_mtime
            except FileNotFoundError:  # committed or aborted since it was listed: not a leftover
                continue
            if modified < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
