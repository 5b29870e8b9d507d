"""The folder store's writes around the page cache: whole blocks direct, the tail plain, and
plain writes wherever the file system refuses O_DIRECT."""

from __future__ import annotations

import errno
import os
import random
import sys
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomite.dicom.blobs import direct_io
from dicomite.dicom.blobs import folder as blobs
from dicomite.dicom.blobs.direct_io import BLOCK, STAGE_BYTES, DirectIO
from dicomite.dicom.blobs.folder import DIRECT_MIN_BYTES, FileSystemBlobStore
from dicomite.dicom.blobs.protocol import new_blob_key

pytestmark = pytest.mark.skipif(
    not hasattr(os, "O_DIRECT"), reason="O_DIRECT is a Linux (and FreeBSD) open flag"
)
MIB = 1024 * 1024


def read_blob(store: FileSystemBlobStore, key: str) -> bytes:
    with store.open(key) as stream:
        return stream.read()


def store_in_chunks(store: FileSystemBlobStore, data: bytes, cuts: list[int]) -> str:
    """Write ``data`` split at ``cuts`` (views, as STOW hands them over) and commit it."""
    key = new_blob_key()
    view = memoryview(data)
    edges = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    with store.writer(key) as writer:
        writer.write_all([view[a:b] for a, b in pairwise(edges)])
        assert writer.commit() == len(data)
    return key


def open_flags(path_suffix: str) -> int:
    """The status flags of this process's descriptor on the file ending in ``path_suffix``."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.endswith(path_suffix):
            fdinfo = Path(f"/proc/self/fdinfo/{fd}").read_text()
            flags = next(line for line in fdinfo.splitlines() if line.startswith("flags:"))
            return int(flags.split()[1], 8)
    raise AssertionError(f"no descriptor open on *{path_suffix}")


SIZES = [
    0,
    1,
    BLOCK - 1,
    BLOCK,
    BLOCK + 1,
    STAGE_BYTES - 1,
    STAGE_BYTES,
    STAGE_BYTES + 1,
    3 * STAGE_BYTES + BLOCK + 17,
]


@pytest.mark.parametrize("size", SIZES)
def test_byte_identical_at_block_and_buffer_edges(tmp_path: Path, size: int) -> None:
    store = FileSystemBlobStore(tmp_path)
    data = random.Random(size).randbytes(size)
    key = store_in_chunks(store, data, [size // 3, size // 2])
    assert read_blob(store, key) == data
    assert store.size(key) == size


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(0, 2 * STAGE_BYTES + 3 * BLOCK),
    cuts=st.lists(st.integers(0, 1 << 30), max_size=12),
)
def test_byte_identical_however_the_chunks_fall(
    tmp_path_factory: pytest.TempPathFactory, size: int, cuts: list[int]
) -> None:
    store = FileSystemBlobStore(tmp_path_factory.mktemp("blobs"))
    data = random.Random(size).randbytes(size)
    key = store_in_chunks(store, data, cuts)
    assert read_blob(store, key) == data


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux's /proc")
def test_whole_blocks_are_written_direct_while_the_blob_is_open(tmp_path: Path) -> None:
    store = FileSystemBlobStore(tmp_path)
    key = new_blob_key()
    with store.writer(key) as writer:
        writer.write(bytes(STAGE_BYTES + 10))  # one staged buffer already written
        assert open_flags(".partial") & os.O_DIRECT
        writer.commit()
    plain = FileSystemBlobStore(tmp_path / "plain", direct_io=False)
    with plain.writer(new_blob_key()) as writer:
        writer.write(b"x")
        assert not open_flags(".partial") & os.O_DIRECT
        writer.abort()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux's /proc")
@pytest.mark.parametrize(
    ("size", "direct"), [(DIRECT_MIN_BYTES - 1, False), (DIRECT_MIN_BYTES, True)]
)
def test_a_small_blob_of_known_size_goes_through_the_page_cache(
    tmp_path: Path, size: int, direct: bool
) -> None:
    store = FileSystemBlobStore(tmp_path)
    key = new_blob_key()
    with store.writer(key, size) as writer:
        writer.write(bytes(size))
        assert bool(open_flags(".partial") & os.O_DIRECT) is direct
        assert writer.commit() == size
    assert read_blob(store, key) == bytes(size)


def test_reused_buffers_carry_nothing_into_the_next_blob(tmp_path: Path) -> None:
    store = FileSystemBlobStore(tmp_path)
    big = store_in_chunks(store, b"\xff" * (STAGE_BYTES - 5), [])
    aborted = store.writer(new_blob_key())
    aborted.write(b"\xee" * (BLOCK * 3 + 1))
    aborted.abort()
    small = store_in_chunks(store, b"\x01" * (BLOCK + 3), [])
    assert read_blob(store, small) == b"\x01" * (BLOCK + 3)
    assert read_blob(store, big) == b"\xff" * (STAGE_BYTES - 5)


def test_buffers_are_reused_not_reallocated() -> None:
    pool = DirectIO()
    first = pool.take()
    pool.give(first)
    assert pool.take() is first


def refusing(call: Callable[..., Any], refused: Callable[..., bool]) -> Callable[..., Any]:
    def wrapped(*args: Any) -> Any:
        if refused(*args):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return call(*args)

    return wrapped


@pytest.mark.parametrize("creates_first", [False, True])
def test_a_file_system_refusing_o_direct_gets_plain_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, creates_first: bool
) -> None:
    """open(O_DIRECT) fails with EINVAL where the file system has no direct I/O, on some
    kernels after creating the file."""
    opened: list[int] = []
    real_open = os.open

    def open_refusing_direct(path: str, flags: int, mode: int = 0o777) -> int:
        opened.append(flags)
        if flags & os.O_DIRECT:
            if creates_first:
                os.close(real_open(path, flags & ~os.O_DIRECT, mode))
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return real_open(path, flags, mode)

    monkeypatch.setattr(blobs.os, "open", open_refusing_direct)
    store = FileSystemBlobStore(tmp_path)
    data = random.Random(3).randbytes(STAGE_BYTES + 5)
    first = store_in_chunks(store, data, [7])
    second = store_in_chunks(store, data[::-1], [])
    assert read_blob(store, first) == data
    assert read_blob(store, second) == data[::-1]
    writes = [flags for flags in opened if flags & os.O_CREAT]
    assert [bool(flags & os.O_DIRECT) for flags in writes] == [True, False, False]
    assert not list(tmp_path.rglob("*.partial"))


def test_a_refused_direct_write_is_written_plain_and_not_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A device whose logical blocks are larger than ``BLOCK`` refuses the aligned writes."""
    attempts: list[int] = []

    def direct(fd: int, data: Any) -> bool:
        is_direct = bool(direct_io.fcntl.fcntl(fd, direct_io.fcntl.F_GETFL) & os.O_DIRECT)
        attempts.append(is_direct)
        return is_direct

    monkeypatch.setattr(direct_io.os, "write", refusing(os.write, direct))
    store = FileSystemBlobStore(tmp_path)
    data = random.Random(4).randbytes(2 * STAGE_BYTES + 100)
    first = store_in_chunks(store, data, [STAGE_BYTES // 2])
    tried = attempts.count(True)
    second = store_in_chunks(store, data, [])
    assert read_blob(store, first) == data
    assert read_blob(store, second) == data
    assert tried == 1
    assert attempts.count(True) == 1  # the second blob went plain from its start


def test_a_writer_that_cannot_get_a_staging_buffer_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_memory(self: DirectIO) -> Any:
        raise MemoryError

    monkeypatch.setattr(DirectIO, "take", no_memory)
    store = FileSystemBlobStore(tmp_path)
    with pytest.raises(MemoryError):
        store.writer(new_blob_key())
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
