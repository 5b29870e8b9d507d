"""What STOW reads from one stored part: identifiers, the values it checks, the metadata.

:func:`read` is STOW's one path: the fast reader (``model.header`` + ``model.rawjson``) on the
part's first bytes. When it declines (``header.Unsupported``, whose docstring lists the cases),
the decline is logged with its reason on ``dicomite.dicom`` and counted in :data:`DECLINED`, and
pydicom reads the blob (:func:`from_blob`). Nothing else falls back: any other exception of the
fast reader propagates. pydicom is the fast reader's oracle in the tests: both give the same
:class:`Instance` for the same bytes (values as pydicom reads them, metadata as ``dicomjson``
writes it).

A Deflated Explicit VR Little Endian dataset (PS3.5 §A.5) is never inflated in memory (pydicom
would): it is inflated to a temporary file, bounded by the caller's limit, behind a File Meta
Information naming Explicit VR Little Endian, and that file is read as any other.

Both readers refuse a file in which an element declares more bytes than follow it
(:class:`header.Unreadable`, naming the element): its later elements, the pixel data among
them, could never be read. That holds for the top-level elements after the pixel data too,
whose headers are read from the blob (``header.check_after_pixels``; no I/O when the pixel data
ends the file, the usual case). Both refuse sequences nested deeper than
``header.MAX_SEQUENCE_DEPTH`` (``header.too_deep``), which pydicom, reading them recursively,
could not read back (RecursionError).
"""

from __future__ import annotations

import io
import logging
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

from pydicom import Dataset
from pydicom.datadict import dictionary_has_tag, dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.filereader import read_dataset, read_partial, read_preamble
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from dicomite.dicom.model import dicomjson, rawjson
from dicomite.dicom.model.dicomjson import Fragments
from dicomite.dicom.model.header import (
    LONG_VRS,
    MAX_SEQUENCE_DEPTH,
    PIXEL_TAGS,
    Deflated,
    Header,
    Unreadable,
    Unsupported,
    check_after_pixels,
    meta_uid,
    overrun,
    read_header,
    too_deep,
)
from dicomite.dicom.model.inflate import DEFLATED, CorruptDeflate, InflatedTooLarge, inflate
from dicomite.dicom.stow import validation
from dicomite.dicom.stow.upload import HEAD_BYTES

logger = logging.getLogger("dicomite.dicom")
IMPLICIT_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
# pydicom leaves values longer than this unread until they are used, so that a length declared
# past the end of the file is found before it reads (and allocates) that much.
_DEFER_BYTES = 1024 * 1024
_UNDEFINED = 0xFFFFFFFF
_KEYWORDS = (
    *validation.CHECKED,
    "SOPClassUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "NumberOfFrames",
)
_TAGS = {keyword: dicomjson.keyword_tag(keyword) for keyword in dict.fromkeys(_KEYWORDS)}
_MEDIA_SOP_CLASS, _TRANSFER_SYNTAX = 0x00020002, 0x00020010
_STRING_VRS = frozenset(
    {
        "AE",
        "AS",
        "CS",
        "DA",
        "DT",
        "TM",
        "UI",
        "UR",
        "SH",
        "LO",
        "UC",
        "ST",
        "LT",
        "UT",
        "PN",
        "IS",
        "DS",
    }
)

OpenBlob = Callable[[], AbstractContextManager[BinaryIO]]


class DeclineCounter:
    """How many instances the fast reader left to pydicom in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # STOW reads headers in several threads at once
        self._count = 0

    def add(self) -> None:
        with self._lock:
            self._count += 1

    @property
    def count(self) -> int:
        return self._count


DECLINED = DeclineCounter()


@dataclass
class Instance:
    values: dict[str, Any]  # keyword -> value as pydicom reads it, for the keywords present
    transfer_syntax_uid: str
    media_sop_class_uid: str | None  # File Meta Information (0002,0002)
    fragments: Fragments  # the metadata, element by element
    truncated: bool  # the pixel data's defined length reaches past the end of the blob

    def uid(self, keyword: str) -> str | None:
        """The value as text; several values as DICOM writes them (``a\\b``), which
        ``validation.check`` refuses."""
        value = self.values.get(keyword)
        if value is None:
            return None
        if isinstance(value, MultiValue | list | tuple):
            return "\\".join(str(item) for item in value).rstrip("\x00 ")
        return str(value).rstrip("\x00 ")

    @property
    def number_of_frames(self) -> int:
        try:
            return max(1, int(self.values.get("NumberOfFrames") or 1))
        except (TypeError, ValueError):
            return 1

    @property
    def sop_class_mismatch(self) -> bool:
        stored = self.media_sop_class_uid
        return stored is not None and stored != str(self.values.get("SOPClassUID"))


def from_header(
    head: bytes, complete: bool, size: int, open_blob: OpenBlob | None = None
) -> Instance:
    """From the blob's first bytes (all of them when ``complete``); ``header.Unsupported`` when
    pydicom has to read it, ``header.Unreadable`` when no one can. The elements after the pixel
    data are checked in ``head`` when complete, else in the blob that ``open_blob`` opens (not
    at all without it)."""
    header = read_header(head, complete, size)
    instance = _from_header(header, size)
    _check_after_pixels(header, head, complete, size, open_blob)
    return instance


def _from_header(header: Header, size: int) -> Instance:
    top = rawjson.Level(header.elements)
    return Instance(
        values=_values(top),
        transfer_syntax_uid=meta_uid(header.meta, _TRANSFER_SYNTAX) or IMPLICIT_LITTLE_ENDIAN,
        media_sop_class_uid=meta_uid(header.meta, _MEDIA_SOP_CLASS),
        fragments=top.fragments(),
        truncated=_truncated(header, size),
    )


def read(
    head: bytes, complete: bool, size: int, open_blob: OpenBlob, max_inflated: int
) -> Instance:
    """STOW's reader: the fast reader on the blob's first bytes (all of them when ``complete``);
    pydicom on the blob that ``open_blob`` opens when it declines; a deflated dataset from its
    inflated copy (at most ``max_inflated`` bytes, else :class:`Unreadable`)."""
    try:
        return from_header(head, complete, size, open_blob)
    except Deflated:
        declined = None
    except Unsupported as error:
        declined = error
    with open_blob() as handle:
        if declined is None:
            return _read_deflated(handle, max_inflated)
        _count_decline(declined)
        return from_blob(handle, size, max_inflated)


def _check_after_pixels(
    header: Header, head: bytes, complete: bool, size: int, open_blob: OpenBlob | None
) -> None:
    """``header.check_after_pixels`` on ``head`` when it is the whole file, else on the blob;
    nothing to read when the pixel data ends the file."""
    if header.pixels is None:
        return
    start, _tag, vr, length = header.pixels
    value_at = start + (12 if vr in LONG_VRS else 8)
    if length is not None and value_at + length >= size:
        return
    if complete:
        check_after_pixels(io.BytesIO(head), start, size, implicit=False)
        return
    if open_blob is None:
        return
    with open_blob() as handle:
        check_after_pixels(handle, start, size, implicit=False)


def _count_decline(declined: Unsupported) -> None:
    DECLINED.add()
    logger.info("The fast header reader declined an instance, pydicom reads it: %s", declined)


def _read_deflated(handle: BinaryIO, max_inflated: int) -> Instance:
    meta = _file_meta(handle)
    with _inflated_copy(handle, meta, max_inflated) as (copy, copy_size):
        head = copy.read(HEAD_BYTES)
        instance = read(
            head, len(head) == copy_size, copy_size, lambda: _rewound(copy), max_inflated
        )
    instance.transfer_syntax_uid = DEFLATED
    return instance


@contextmanager
def _rewound(handle: BinaryIO) -> Iterator[BinaryIO]:
    handle.seek(0)
    yield handle


def from_blob(handle: BinaryIO, size: int, max_inflated: int) -> Instance:
    """With pydicom only (the fast reader's oracle), a deflated dataset from its inflated copy
    (at most ``max_inflated`` bytes, else :class:`Unreadable`)."""
    meta = _file_meta(handle)
    if meta.get("TransferSyntaxUID") == DEFLATED:
        with _inflated_copy(handle, meta, max_inflated) as (copy, copy_size):
            instance = _read_with_pydicom(copy, copy_size)
        instance.transfer_syntax_uid = DEFLATED
        return instance
    handle.seek(0)
    return _read_with_pydicom(handle, size)


def _file_meta(handle: BinaryIO) -> Dataset:
    """The File Meta Information as ``dcmread`` reads it (``filereader._read_file_meta_info``:
    Explicit VR, or Implicit VR when its first element cannot be read so), so that a dataset
    it would call deflated, and inflate in memory, is never handed to it."""
    read_preamble(handle, False)
    start = handle.tell()
    meta = read_dataset(handle, False, True, stop_when=_not_file_meta)
    if len(meta):
        try:
            meta[min(meta.keys())]
        except NotImplementedError:
            handle.seek(start)
            meta = read_dataset(handle, True, True, stop_when=_not_file_meta)
    return meta


def _not_file_meta(tag: BaseTag, _vr: str | None, _length: int) -> bool:
    return tag >> 16 != 2


@contextmanager
def _inflated_copy(handle: BinaryIO, meta: Dataset, limit: int) -> Iterator[tuple[BinaryIO, int]]:
    """A temporary Part 10 file: the File Meta Information (Explicit VR Little Endian), then the
    dataset inflated from ``handle``, which is at its start; and its size."""
    with tempfile.TemporaryFile() as copy:
        copy.write(bytes(128) + b"DICM" + _explicit_meta(meta.get("MediaStorageSOPClassUID")))
        try:
            inflate(handle, copy, limit)
        except InflatedTooLarge:
            raise Unreadable(
                f"The dataset, Deflate-compressed (transfer syntax {DEFLATED}), inflates to "
                f"more than this server's limit of {limit} bytes ({limit / 1024**2:g} MiB)."
            ) from None
        except CorruptDeflate as error:
            raise Unreadable(
                f"The dataset is not a valid Deflate stream (transfer syntax {DEFLATED}): {error}."
            ) from None
        size = copy.tell()
        copy.seek(0)
        yield copy, size


def _explicit_meta(media_sop_class: object) -> bytes:
    """File Meta Information naming Explicit VR Little Endian, and the SOP class if given."""
    elements = b""
    if media_sop_class is not None:
        elements += _meta_uid(0x0002, str(media_sop_class))
    elements += _meta_uid(0x0010, EXPLICIT_LITTLE_ENDIAN)
    group_length = struct.pack("<HH2sHL", 0x0002, 0x0000, b"UL", 4, len(elements))
    return group_length + elements


def _meta_uid(element: int, uid: str) -> bytes:
    value = uid.encode("ascii", "replace")
    value += b"\x00" * (len(value) % 2)  # PS3.5 §6.2: UIDs are padded with NUL to even length
    return struct.pack("<HH2sH", 0x0002, element, b"UI", len(value)) + value


def _read_with_pydicom(handle: BinaryIO, size: int) -> Instance:
    dataset, pixels_at = _dcmread(handle)
    truncated = _pixel_data_truncated(handle, dataset, size)  # where pydicom stopped: first
    if pixels_at is not None:
        implicit, little = dataset.original_encoding
        check_after_pixels(handle, pixels_at, size, implicit=bool(implicit), little=bool(little))
    _check_lengths(handle, dataset, size)  # first: it reads lengths of elements not converted
    _check_depth(dataset)
    meta = getattr(dataset, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID", IMPLICIT_LITTLE_ENDIAN) if meta else None
    media = meta.get("MediaStorageSOPClassUID") if meta is not None else None
    return Instance(
        values={k: dataset.get(k) for k in _TAGS if k in dataset},
        transfer_syntax_uid=IMPLICIT_LITTLE_ENDIAN if syntax is None else str(syntax),
        media_sop_class_uid=None if media is None else str(media),
        fragments=dicomjson.fragments(dataset),
        truncated=truncated,
    )


class _TopLevel:
    """``stop_when`` of ``read_partial``: stops where ``dcmread(stop_before_pixels=True)``
    stops; remembers the last top-level tag seen (pydicom calls it for top-level elements only,
    before reading each value)."""

    def __init__(self) -> None:
        self.tag = 0
        self.at_pixels = False

    def __call__(self, tag: BaseTag, _vr: str | None, _length: int) -> bool:
        self.tag = int(tag)
        self.at_pixels = self.tag in PIXEL_TAGS
        return self.at_pixels


def _dcmread(handle: BinaryIO) -> tuple[Dataset, int | None]:
    """``dcmread(handle, stop_before_pixels=True, defer_size=_DEFER_BYTES)``, and the position
    of the pixel data element it stopped at (None when there is none). pydicom reads sequences
    of undefined length as it meets them, recursively: nesting too deep for Python's stack is
    :func:`too_deep`, naming the top-level element being read."""
    top_level = _TopLevel()
    try:
        dataset = read_partial(handle, top_level, defer_size=_DEFER_BYTES)
    except RecursionError:
        raise too_deep(top_level.tag) from None
    return dataset, handle.tell() if top_level.at_pixels else None


def _check_depth(dataset: Dataset) -> None:
    """:func:`too_deep` when a top-level sequence nests more than ``MAX_SEQUENCE_DEPTH`` levels,
    walked level by level (pydicom converts a sequence of defined length on access, one level
    at a time; one nested too deep for its recursion is too deep here too)."""
    for tag in dataset.keys():  # noqa: SIM118 - iterating a Dataset reads its elements
        try:
            _check_sequence_depth(dataset, tag)
        except RecursionError:
            raise too_deep(tag) from None


def _check_sequence_depth(dataset: Dataset, tag: BaseTag) -> None:
    """A top-level sequence being level 1, as ``header`` counts."""
    items = [dataset]
    for depth in range(1, MAX_SEQUENCE_DEPTH + 2):
        sequences = [
            item[key]
            for item in items
            for key in ([tag] if item is dataset else item.keys())
            if _is_sequence(item, key)
        ]
        if not sequences:
            return
        if depth > MAX_SEQUENCE_DEPTH:
            raise too_deep(tag)
        items = [item for sequence in sequences for item in sequence.value or ()]


def _is_sequence(item: Dataset, tag: BaseTag) -> bool:
    """Whether the element is a sequence, converting no other element: its VR as read, or the
    dictionary's where the file gives none or UN, as pydicom converts it."""
    element = item.get_item(tag, keep_deferred=True)
    vr = element.VR
    if isinstance(element, RawDataElement) and vr in (None, "UN") and dictionary_has_tag(tag):
        vr = dictionary_VR(tag)
    return vr == "SQ"


def _check_lengths(
    handle: BinaryIO, dataset: Dataset, size: int, top: int = 0, depth: int = 0
) -> None:
    """Unreadable when an element read by pydicom declares a value reaching past the end of the
    file (pydicom reads what there is, and the rest of the file into that value); ``dataset``
    is an item ``depth`` sequences deep in the top-level element ``top``."""
    if depth > MAX_SEQUENCE_DEPTH:
        raise too_deep(top)
    for tag in dataset.keys():  # noqa: SIM118 - iterating a Dataset reads its elements
        element = dataset.get_item(tag, keep_deferred=True)
        if isinstance(element, RawDataElement):
            at, length = element.value_tell, element.length
        elif element.VR != "SQ" and element.file_tell is not None:  # converted while reading
            at = element.file_tell
            length = _length_field(handle, at, element.VR, dataset)
        else:
            at, length = 0, 0
        if length != _UNDEFINED and at + length > size:
            raise overrun(tag, length, max(0, size - at))
        if element.VR == "SQ":
            for item in dataset[tag].value or ():  # read from the value checked above
                _check_lengths(handle, item, size, top if depth else tag, depth + 1)


def _length_field(handle: BinaryIO, value_at: int, vr: str, dataset: Dataset) -> int:
    """The declared length of an element pydicom has already converted (it converts Specific
    Character Set as it reads): the field just before its value (PS3.5 §7.1)."""
    implicit, little = dataset.original_encoding
    width = 4 if implicit or vr in LONG_VRS else 2
    handle.seek(value_at - width)
    return int.from_bytes(handle.read(width), "little" if little else "big")


def _values(top: rawjson.Level) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for keyword, tag in _TAGS.items():
        element = top.elements.get(tag)
        if element is None:
            continue
        if not element.value and element.vr in _STRING_VRS:
            found[keyword] = ""
            continue
        try:
            values = top.values(element) if element.vr in _STRING_VRS else None
        except rawjson.Declined:
            values = None
        if values is not None and len(values) == 1:
            found[keyword] = values[0]
        else:  # empty, several values, or not read here: exactly as pydicom has it
            found[keyword] = top.converted(tag).value
    return found


def _truncated(header: Header, size: int) -> bool:
    if header.pixels is None:
        return False
    position, tag, vr, length = header.pixels
    if tag != 0x7FE00010 or vr not in ("OB", "OW", "OF", "UN") or length is None:
        return False
    return position + 12 + length > size


def _pixel_data_truncated(handle: Any, dataset: Any, size: int) -> bool:
    """After ``stop_before_pixels`` the stream is at the pixel data element, if any: a defined
    length reaching past the end of the blob means the file was cut short."""
    position = handle.tell()
    header = handle.read(12)
    if len(header) < 8 or header[:4] not in (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10"):
        return False
    little = header[:4] == b"\xe0\x7f\x10\x00"
    order: Any = "little" if little else "big"
    if header[4:6] in (b"OB", b"OW", b"OF", b"UN"):
        length, start = int.from_bytes(header[8:12], order), position + 12
    elif dataset.is_implicit_VR if hasattr(dataset, "is_implicit_VR") else False:
        length, start = int.from_bytes(header[4:8], order), position + 8
    else:
        return False
    return length != 0xFFFFFFFF and start + length > size
