"""A Part 10 header read straight from its bytes: the raw elements before the pixel data.

STOW reads the header of every instance it stores. pydicom builds a ``Dataset`` and converts
each value on access, which costs several times more than walking the bytes once; this reader
only walks them, in the one encoding almost every instance uses: Explicit VR Little Endian,
the encoding of that transfer syntax and of every encapsulated one (PS3.5 §A.2, §A.4), and of a
deflated dataset once inflated (:class:`Deflated`). What it declines, raising
:class:`Unsupported` with the reason, is left to pydicom (``stow_instance.read`` logs and counts
it); these are the cases, each rare in what is stored today:

- Implicit VR Little Endian and the retired Explicit VR Big Endian (PS3.5 §A.1, §A.3): the VRs
  of implicit elements come from the data dictionary, which pydicom has;
- no Part 10 prefix or File Meta Information, or none naming the transfer syntax;
- shapes the standard does not allow but pydicom tolerates: an unknown VR, a UN or other
  non-sequence value of undefined length, a delimiter out of place, a tag given twice, items
  overrunning their sequence, a command set;
- a header reaching past the first bytes read (``stow_upload.HEAD_BYTES``).

The reader stops where ``dcmread(stop_before_pixels=True)`` stops.

A value, sequence or item whose defined length reaches past the end of the file (PS3.5 §7.1.1)
cannot be read by anyone: :class:`Unreadable`, whose message names the element; so is a file
whose sequences nest deeper than :data:`MAX_SEQUENCE_DEPTH` (:func:`too_deep`), and one whose
elements after the pixel data overrun it (:func:`check_after_pixels`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from dicomite.dicom.model.inflate import DEFLATED

# PS3.5 §7.1.2: these VRs have two reserved bytes and a 32-bit length.
LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
VRS = LONG_VRS | {
    "AE",
    "AS",
    "AT",
    "CS",
    "DA",
    "DS",
    "DT",
    "FD",
    "FL",
    "IS",
    "LO",
    "LT",
    "PN",
    "SH",
    "SL",
    "SS",
    "ST",
    "TM",
    "UI",
    "UL",
    "US",
}
_VR_OF = {vr.encode(): vr for vr in VRS}
PREFIX_END = 132  # PS3.10 §7.1: 128-byte preamble and "DICM"
PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})  # where pydicom stops too
# Syntaxes whose dataset is not Explicit VR Little Endian: implicit VR, big endian.
OTHER_ENCODINGS = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.2"})
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_HEAD = struct.Struct("<HH2sH")
_LENGTH = struct.Struct("<L")
_ITEM_HEAD = struct.Struct("<HHL")
# Sequences within sequences, a top-level sequence being level 1. Real instances rarely exceed
# 6 levels; SR documents, whose Content Sequences nest once per level of the content tree, go
# deepest. Every reader here, and pydicom, reads sequences recursively, a few stack frames a
# level: 64 levels stay far below Python's recursion limit (1000 frames), at which pydicom
# raises RecursionError (a few hundred levels) and the instance could be neither read nor
# rendered.
MAX_SEQUENCE_DEPTH = 64
# At most this many top-level elements after the pixel data have their lengths checked; real
# instances have none or a few (Data Set Trailing Padding, private elements).
MAX_ELEMENTS_AFTER_PIXELS = 256


class Unsupported(Exception):
    """Declined, for the reason in the message: not read here; pydicom reads it."""


class Deflated(Unsupported):
    """Deflated Explicit VR Little Endian (PS3.5 §A.5): read here once inflated."""


class Unreadable(ValueError):
    """No reader can read this file; the message says why, in words for the client."""


def overrun(tag: int, length: int, remaining: int, what: str = "a value") -> Unreadable:
    """An element whose defined length reaches past the end of the file."""
    return Unreadable(
        f"The element ({tag >> 16:04X},{tag & 0xFFFF:04X}) declares {what} of {length} bytes, "
        f"but only {remaining} bytes of the file follow it: the file is corrupt or cut short."
    )


def too_deep(tag: int) -> Unreadable:
    """Sequences nested deeper than :data:`MAX_SEQUENCE_DEPTH` in the top-level ``tag``."""
    return Unreadable(
        f"The sequence ({tag >> 16:04X},{tag & 0xFFFF:04X}) holds sequences nested more than "
        f"{MAX_SEQUENCE_DEPTH} levels deep, the most this server reads."
    )


@dataclass(slots=True)  # not frozen: one is made per element of every instance stored
class Element:
    tag: int
    vr: str
    value: bytes  # b"" for a sequence
    offset: int  # of the value in the file, as pydicom's ``value_tell``
    items: tuple[tuple[Element, ...], ...] = ()  # a sequence's items


@dataclass(frozen=True)
class Header:
    meta: dict[int, bytes]  # File Meta Information values (group 0002)
    elements: tuple[Element, ...]  # in file order
    # The (7FE0,xxxx) element the header stops at: its offset, VR and defined length (or None).
    pixels: tuple[int, int, str, int | None] | None


def read_header(data: bytes, complete: bool, size: int) -> Header:
    """The header in ``data``, the first bytes of the file (all of them when ``complete``);
    ``size``: the length of the whole file."""
    if data[128:PREFIX_END] != b"DICM":
        raise Unsupported("no DICM prefix")
    meta, position = _file_meta(data)
    syntax = meta_uid(meta, 0x00020010)
    if syntax == DEFLATED:
        raise Deflated(f"transfer syntax {syntax!r}")
    if not syntax or syntax in OTHER_ENCODINGS:
        raise Unsupported(f"transfer syntax {syntax!r}")
    reader = _Reader(data, complete, size)
    elements = reader.dataset(position, len(data), top=True)
    if not elements or elements[0].tag >> 16 <= 2:
        raise Unsupported("an empty dataset, a command set or misplaced meta elements")
    return Header(meta, elements, reader.pixels)


def meta_uid(meta: dict[int, bytes], tag: int) -> str | None:
    """A File Meta UID as pydicom reads it (``convert_UI``, then ``UID()`` strips blanks)."""
    raw = meta.get(tag)
    if raw is None:
        return None
    text = raw.decode("latin-1").rstrip("\x00 ")
    if "\\" in text:
        raise Unsupported("a multi-valued File Meta UID")
    return text.strip()


def _file_meta(data: bytes) -> tuple[dict[int, bytes], int]:
    meta: dict[int, bytes] = {}
    position = PREFIX_END
    while len(data) >= position + 8 and data[position : position + 2] == b"\x02\x00":
        group, element, raw_vr, length = _HEAD.unpack_from(data, position)
        vr = _VR_OF.get(raw_vr)
        if vr is None:
            raise Unsupported("meta element without an explicit VR")
        position += 8
        if vr in LONG_VRS:
            if len(data) < position + 4:
                raise Unsupported("meta cut short")
            (length,) = _LENGTH.unpack_from(data, position)
            position += 4
        if length == _UNDEFINED or len(data) < position + length:
            raise Unsupported("meta element cut short or of undefined length")
        meta[group << 16 | element] = data[position : position + length]
        position += length
    return meta, position


class _Reader:
    def __init__(self, data: bytes, complete: bool, size: int) -> None:
        self.data = data
        self.complete = complete
        self.size = size  # of the whole file
        self.pixels: tuple[int, int, str, int | None] | None = None
        self.end = 0  # where the last item of undefined length ended
        self.depth = 0  # of the sequence being read, a top-level one being 1
        self.outermost = 0  # the tag of the top-level sequence being read

    def _fits(self, tag: int, position: int, length: int, what: str = "a value") -> None:
        """Unreadable when ``length`` bytes from ``position`` reach past the end of the file."""
        if position + length > self.size:
            raise overrun(tag, length, self.size - position, what)

    def _short(self, what: str) -> Unsupported:
        return Unsupported(
            f"{what} reaches past the bytes read" if not self.complete else f"{what} is cut short"
        )

    def dataset(self, position: int, end: int, *, top: bool = False) -> tuple[Element, ...]:
        """Elements from ``position`` to ``end``, or to an item delimiter when ``end`` is
        unknown (``-1``)."""
        data, elements = self.data, list[Element]()
        limit = len(data) if end < 0 else end
        while position < limit:
            if limit - position < 8:
                raise self._short("an element")
            group, number, raw_vr, length = _HEAD.unpack_from(data, position)
            tag = group << 16 | number
            if group == 0xFFFE:
                if tag == _ITEM_END and end < 0 and not top:
                    self.end = position + 8
                    return tuple(elements)
                raise Unsupported(f"delimiter {tag:08X} out of place")
            vr = _VR_OF.get(raw_vr)
            if vr is None:
                raise Unsupported(f"unknown VR {raw_vr!r} at {position}")
            value_at = position + 8
            if vr in LONG_VRS:
                if limit - position < 12:
                    raise self._short("an element")
                (length,) = _LENGTH.unpack_from(data, value_at)
                value_at += 4
            if top and tag in PIXEL_TAGS:
                self.pixels = (position, tag, vr, None if length == _UNDEFINED else length)
                return tuple(elements)
            if vr == "SQ":
                items, position = self._nested(tag, value_at, length, top)
                elements.append(Element(tag, vr, b"", value_at, items))
                continue
            if length == _UNDEFINED:
                raise Unsupported(f"undefined length {vr} value")
            position = value_at + length
            if position > limit:
                self._fits(tag, value_at, length)
                raise self._short("a value")
            elements.append(Element(tag, vr, data[value_at:position], value_at))
        if end < 0 and not top:
            raise self._short("an item of undefined length")
        if position != limit and not top:
            raise Unsupported("an item's elements overrun it")
        if top and not self.complete:
            raise self._short("the header")
        return tuple(elements)

    def _nested(
        self, tag: int, position: int, length: int, top: bool
    ) -> tuple[tuple[tuple[Element, ...], ...], int]:
        """:meth:`_sequence` one level deeper; :func:`too_deep` past the limit."""
        if top:
            self.outermost = tag
        if self.depth == MAX_SEQUENCE_DEPTH:
            raise too_deep(self.outermost)
        self.depth += 1
        found = self._sequence(tag, position, length)
        self.depth -= 1
        return found

    def _sequence(
        self, tag: int, position: int, length: int
    ) -> tuple[tuple[tuple[Element, ...], ...], int]:
        """The items of sequence ``tag`` (PS3.5 §7.5) and the position after it."""
        data = self.data
        end = -1 if length == _UNDEFINED else position + length
        if end > len(data):
            self._fits(tag, position, length)
            raise self._short("a sequence")
        items: list[tuple[Element, ...]] = []
        while end < 0 or position < end:
            if len(data) - position < 8:
                raise self._short("a sequence")
            group, number, item_length = _ITEM_HEAD.unpack_from(data, position)
            item_tag = group << 16 | number
            position += 8
            if item_tag == _SEQUENCE_END and end < 0:
                return tuple(items), position
            if item_tag != _ITEM:
                raise Unsupported(f"{item_tag:08X} inside a sequence")
            if item_length == _UNDEFINED:
                items.append(self.dataset(position, -1))
                position = self.end
            else:
                if position + item_length > len(data):
                    self._fits(tag, position, item_length, "an item")
                    raise self._short("an item")
                items.append(self.dataset(position, position + item_length))
                position += item_length
        if position != end:
            raise Unsupported("a sequence's items overrun it")
        return tuple(items), position


def check_after_pixels(
    handle: BinaryIO, start: int, size: int, *, implicit: bool, little: bool = True
) -> None:
    """:class:`Unreadable` when a top-level element after the pixel data element, which is at
    ``start`` in ``handle`` (a file of ``size`` bytes), declares more bytes than follow it.

    Only headers are read; values, and the items of the encapsulated pixel data (PS3.5 §A.4),
    are sought over. The walk stops at the end of the file, after
    :data:`MAX_ELEMENTS_AFTER_PIXELS` elements, and at what it cannot walk without reading
    values (an item of undefined length, a delimiter out of place, an unknown VR): what
    follows is then left to the readers, as before. Pixel data reaching past the end of the
    file (its value or an item of it) is not refused here: that is a truncated file
    (``stow_instance.Instance.truncated``, for native pixel data).
    """
    walk = _AfterPixels(handle, size, implicit, "<" if little else ">")
    position = walk.element(start, pixels=True)
    for _ in range(MAX_ELEMENTS_AFTER_PIXELS):
        if position is None or position >= size:
            return
        position = walk.element(position)


class _AfterPixels:
    def __init__(self, handle: BinaryIO, size: int, implicit: bool, order: str) -> None:
        self.handle = handle
        self.size = size
        self.implicit = implicit
        self.tag = struct.Struct(order + "HH")
        self.short = struct.Struct(order + "H")
        self.long = struct.Struct(order + "L")

    def element(self, position: int, pixels: bool = False) -> int | None:
        """The position after the element at ``position``; None when it cannot be walked."""
        found = self._header(position)
        if found is None:
            return None
        tag, length, value_at = found
        if tag >> 16 == 0xFFFE:
            return None
        pixels = pixels or tag in PIXEL_TAGS  # pixel data given twice: truncated, as the first
        if length == _UNDEFINED:
            return self._items(tag, value_at, pixels)
        if value_at + length > self.size:
            if pixels:
                return None
            raise overrun(tag, length, self.size - value_at)
        return value_at + length

    def _header(self, position: int) -> tuple[int, int, int] | None:
        """The tag, the declared length and the position of the value (PS3.5 §7.1)."""
        raw = self._read(position, 8)
        if raw is None:
            return None
        group, number = self.tag.unpack_from(raw)
        tag = group << 16 | number
        if self.implicit or group == 0xFFFE:
            return tag, self.long.unpack_from(raw, 4)[0], position + 8
        vr = _VR_OF.get(raw[4:6])
        if vr is None:
            return None
        if vr not in LONG_VRS:
            return tag, self.short.unpack_from(raw, 6)[0], position + 8
        length = self._read(position + 8, 4)
        if length is None:
            return None
        return tag, self.long.unpack_from(length)[0], position + 12

    def _items(self, tag: int, position: int, pixels: bool) -> int | None:
        """The position after the items of defined length and the sequence delimiter of the
        element ``tag`` of undefined length (PS3.5 §7.5.2, §A.4)."""
        while (raw := self._read(position, 8)) is not None:
            group, number = self.tag.unpack_from(raw)
            item_tag, length = group << 16 | number, self.long.unpack_from(raw, 4)[0]
            position += 8
            if item_tag == _SEQUENCE_END:
                return position
            if item_tag != _ITEM or length == _UNDEFINED:
                return None
            if position + length > self.size:
                if pixels:
                    return None
                raise overrun(tag, length, self.size - position, "an item")
            position += length
        return None

    def _read(self, position: int, count: int) -> bytes | None:
        if self.size - position < count:
            return None
        self.handle.seek(position)
        data = self.handle.read(count)
        return data if len(data) == count else None
