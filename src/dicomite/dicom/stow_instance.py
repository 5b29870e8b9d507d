"""What STOW reads from one stored part: identifiers, the values it checks, the metadata.

Read from the part's first bytes by ``dicom.header`` and ``dicom.rawjson`` when the header is
Explicit VR Little Endian and in them (almost always), otherwise from the blob with pydicom. Both
give the same :class:`Instance` for the same bytes: values as pydicom reads them, metadata as
``dicomjson`` writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO

from pydicom import dcmread

from dicomite.dicom import dicomjson, rawjson, validation
from dicomite.dicom.dicomjson import Fragments
from dicomite.dicom.header import Header, meta_uid, read_header

IMPLICIT_LITTLE_ENDIAN = "1.2.840.10008.1.2"
_KEYWORDS = (*validation.CHECKED, "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID",
             "SOPInstanceUID", "NumberOfFrames")  # fmt: skip
_TAGS = {keyword: dicomjson.keyword_tag(keyword) for keyword in dict.fromkeys(_KEYWORDS)}
_MEDIA_SOP_CLASS, _TRANSFER_SYNTAX = 0x00020002, 0x00020010
_STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "TM", "UI", "UR", "SH", "LO", "UC", "ST",
                         "LT", "UT", "PN", "IS", "DS"})  # fmt: skip


@dataclass
class Instance:
    values: dict[str, Any]  # keyword -> value as pydicom reads it, for the keywords present
    transfer_syntax_uid: str
    media_sop_class_uid: str | None  # File Meta Information (0002,0002)
    fragments: Fragments  # the metadata, element by element
    truncated: bool  # the pixel data's defined length reaches past the end of the blob

    def uid(self, keyword: str) -> str | None:
        value = self.values.get(keyword)
        return str(value).rstrip("\x00 ") if value is not None else None

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


def from_header(head: bytes, complete: bool, size: int) -> Instance:
    """From the blob's first bytes (all of them when ``complete``); ``header.Unsupported`` when
    pydicom has to read it."""
    header = read_header(head, complete)
    top = rawjson.Level(header.elements)
    return Instance(
        values=_values(top),
        transfer_syntax_uid=meta_uid(header.meta, _TRANSFER_SYNTAX) or IMPLICIT_LITTLE_ENDIAN,
        media_sop_class_uid=meta_uid(header.meta, _MEDIA_SOP_CLASS),
        fragments=top.fragments(),
        truncated=_truncated(header, size),
    )


def from_blob(handle: BinaryIO, size: int) -> Instance:
    """With pydicom, as every instance was read before ``dicom.header``."""
    dataset = dcmread(handle, stop_before_pixels=True)
    truncated = _pixel_data_truncated(handle, dataset, size)
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
