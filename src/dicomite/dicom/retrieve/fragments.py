"""One frame of encapsulated pixel data (PS3.5 §A.4), found by reading item headers and the
offset tables' entries for that frame alone: nothing is held per frame or per fragment,
whatever NumberOfFrames or the tables declare (pydicom's ``get_frame`` unpacks a whole table
into Python integers, ~36 bytes per 4-byte entry, for every frame it reads).

``handle`` is at the Basic Offset Table's item, the first item of the Pixel Data value. The
Extended Offset Table (PS3.3 §C.7.6.3.1.8) and the Basic Offset Table give each frame's
offset from the first fragment's item; without either, a frame is its fragments when there is
one frame or one fragment per frame, and ``None`` tells the caller to ask pydicom.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

ITEM = (0xFFFE, 0xE000)
UNDEFINED = 0xFFFFFFFF


class FrameMissing(ValueError):
    """The pixel data does not hold the frame asked for."""


def item_length(handle: BinaryIO) -> int | None:
    """The length of the item ``handle`` is at, read past its header; None at the sequence
    delimiter, the end of the data or anything else."""
    head = handle.read(8)
    if len(head) < 8:
        return None
    group, element, length = struct.unpack("<HHL", head)
    return length if (group, element) == ITEM and length != UNDEFINED else None


def frames_held(handle: BinaryIO, extended: tuple[bytes, bytes] | None, wanted: int) -> int:
    """How many frames the pixel data can hold, counted up to ``wanted``: the entries of an
    offset table, else its fragments (a frame has one or more)."""
    if extended:
        return min(len(extended[0]), len(extended[1])) // 8
    basic = item_length(handle)
    if basic is None:
        return 0
    if basic:
        return basic // 4
    fragments = 0
    while fragments < wanted and (length := item_length(handle)) is not None:
        fragments += 1
        handle.seek(length, 1)
    return fragments


@dataclass
class Walk:
    """Where a walk through pixel data without offset tables has got to, so that reading the
    frames in order (transcoding) reads each item header once, not once per frame."""

    one_per_frame: bool | None = None  # one fragment per frame: not known until counted
    number: int = 1  # the frame whose item ``position`` is at
    position: int = -1


def frame(
    handle: BinaryIO,
    number: int,
    count: int,
    extended: tuple[bytes, bytes] | None,
    walk: Walk | None = None,
) -> bytes | None:
    """Frame ``number`` (from 1) of ``count``; None when only pydicom can tell where it is."""
    end = _end(handle)
    basic = item_length(handle)
    if basic is None:
        raise FrameMissing("the pixel data has no Basic Offset Table item")
    table, first = handle.tell(), handle.tell() + basic
    if extended:
        return _by_extended_table(handle, first, number, extended, end)
    if basic:
        return _by_basic_table(handle, table, first, number, basic // 4, end)
    if count == 1:
        return b"".join(_fragments(handle, end, end))
    walk = walk or Walk()
    if walk.one_per_frame is None:
        walk.one_per_frame = frames_held(_at(handle, first - 8), None, count + 1) == count
    return _walked_to(handle, number, first, end, walk) if walk.one_per_frame else None


def _walked_to(handle: BinaryIO, number: int, first: int, end: int, walk: Walk) -> bytes:
    """Fragment ``number``, walking on from where ``walk`` stopped (from the first fragment
    when that is past it)."""
    if walk.position < 0 or walk.number > number:
        walk.number, walk.position = 1, first
    handle.seek(walk.position)
    for _ in range(number - walk.number):
        handle.seek(_fragment_length(handle, number), 1)
    found = _read(handle, _fragment_length(handle, number), end)
    walk.number, walk.position = number + 1, handle.tell()
    return found


def _by_extended_table(
    handle: BinaryIO, first: int, number: int, extended: tuple[bytes, bytes], end: int
) -> bytes:
    if 8 * number > min(len(extended[0]), len(extended[1])):
        raise FrameMissing(f"the Extended Offset Table has no entry for frame {number}")
    offset = struct.unpack_from("<Q", extended[0], 8 * (number - 1))[0]
    length = struct.unpack_from("<Q", extended[1], 8 * (number - 1))[0]
    handle.seek(first + offset + 8)
    return _read(handle, length, end)


def _by_basic_table(
    handle: BinaryIO, table: int, first: int, number: int, entries: int, end: int
) -> bytes:
    if number > entries:
        raise FrameMissing(f"the Basic Offset Table has no entry for frame {number}")
    handle.seek(table + 4 * (number - 1))
    own_and_next = 2 if number < entries else 1
    offsets = struct.unpack(f"<{own_and_next}L", _read(handle, 4 * own_and_next, first))
    stop = first + offsets[1] if len(offsets) > 1 else end
    handle.seek(first + offsets[0])
    return b"".join(_fragments(handle, stop, end))


def _fragment_length(handle: BinaryIO, number: int) -> int:
    length = item_length(handle)
    if length is None:
        raise FrameMissing(f"there is no fragment for frame {number}")
    return length


def _fragments(handle: BinaryIO, stop: int, end: int) -> list[bytes]:
    """The fragments from where ``handle`` is up to ``stop`` (or the delimiter)."""
    found: list[bytes] = []
    while handle.tell() < stop and (length := item_length(handle)) is not None:
        found.append(_read(handle, length, end))
    return found


def _read(handle: BinaryIO, length: int, end: int) -> bytes:
    """``length`` bytes, refused when they would run past the end of the data: a length
    read from the file is never trusted with an allocation."""
    if handle.tell() + length > end:
        raise FrameMissing("a fragment runs past the end of the pixel data")
    return handle.read(length)


def _end(handle: BinaryIO) -> int:
    here = handle.tell()
    end = handle.seek(0, 2)
    handle.seek(here)
    return end


def _at(handle: BinaryIO, position: int) -> BinaryIO:
    handle.seek(position)
    return handle
