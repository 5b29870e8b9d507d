"""DICOM JSON (PS3.18 §F.2) written straight from the raw elements of ``dicom.model.header``.

The text is exactly what :func:`dicomjson.metadata` and :func:`dicomjson.dumps` make of the
pydicom ``Dataset`` of the same bytes (the tests compare both on many files): values in the
common, well-formed shapes are decoded here as pydicom decodes them (``pydicom.values``: padding,
backslash-separated values, numbers, person names without component groups); any other element
— AT, UN, escape sequences, odd padding or numbers — is converted by pydicom in a ``Dataset`` of
its own level and written by ``dicomjson``. Under a character set other than ISO_IR 6, ISO_IR 100
and ISO_IR 192 (PS3.3 C.12.1.1.2), pydicom decodes every text value (SH LO UC ST LT UT PN) with
its codecs: it has that level's Specific Character Set, its own or inherited (PS3.5 §7.5.1).
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable, Sequence
from itertools import pairwise
from json.encoder import encode_basestring  # json.dumps' own, with ensure_ascii=False

from pydicom import Dataset
from pydicom.charset import convert_encodings
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.tag import BaseTag
from pydicom.values import convert_string

from dicomite.dicom.model import dicomjson
from dicomite.dicom.model.dicomjson import Fragments
from dicomite.dicom.model.header import Element, Unsupported

_CHARSET = 0x00080005  # Specific Character Set
_LATIN = "latin-1"  # pydicom's default_encoding ("iso8859") and its ISO_IR 6 / ISO_IR 100
_PYDICOM_DECODES = ""  # the codec of a character set whose text pydicom decodes
_SIMPLE_CHARSETS = {b"ISO_IR 6": _LATIN, b"ISO_IR 100": _LATIN, b"ISO_IR 192": "utf-8"}
_NUMBERS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}
_SIZES = {vr: struct.calcsize("<" + code) for vr, code in _NUMBERS.items()}
_UID = re.compile(r"[0-9.]+")
_IS = re.compile(r" *[+-]?[0-9]{1,12} *")
_DS = re.compile(r" *[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})? *")
Value = str | int | float
# Most values repeat from one instance to the next (a series' study, patient, geometry…): the
# text written for (VR, character set, bytes) is kept. Thread-safe as single dict operations.
_WRITTEN: dict[tuple[str, str, bytes], str | None] = {}
_CACHED_VALUES = 8192
_CACHED_VALUE_BYTES = 128


class Declined(Exception):
    """This value is not in a shape read here: pydicom converts it."""


class Level:
    """The raw elements of one dataset or item; pydicom's view of it is built only when an
    element needs it."""

    def __init__(self, elements: Sequence[Element], parent: Level | None = None) -> None:
        self.elements = _in_tag_order(elements)
        self.parent = parent
        self._dataset: Dataset | None = None
        charset = self.elements.get(_CHARSET)
        # PS3.5 §7.5.1: an item without Specific Character Set uses its dataset's
        self.charset: Element | None = (
            charset if charset is not None or parent is None else parent.charset
        )
        self.codec: str = parent.codec if parent is not None else _LATIN
        if charset is not None:
            self.codec = _codec(charset.value)

    def dataset(self) -> Dataset:
        if self._dataset is None:
            raws: dict[BaseTag, DataElement | RawDataElement] = {
                BaseTag(tag): _raw(e) for tag, e in self.elements.items() if e.vr != "SQ"
            }
            if self.charset is not None and _CHARSET not in self.elements:  # inherited
                raws[BaseTag(_CHARSET)] = _raw(self.charset)
            self._dataset = Dataset(raws)
        return self._dataset

    def converted(self, tag: int) -> DataElement:
        """The element as pydicom converts it (as ``Dataset.__getitem__`` does)."""
        return self.dataset()[tag]

    def fragments(self) -> Fragments:
        out: Fragments = {}
        for tag, element in self.elements.items():
            text = self._element(element)
            if text is not None:
                out[f"{tag:08X}"] = text
        return out

    def _element(self, element: Element) -> str | None:
        vr = element.vr
        if vr == "UN":  # pydicom may know the VR from its dictionaries (replace_un_with_known_vr)
            return self._converted_json(element.tag)
        if vr in dicomjson.BULK_VRS or element.tag == 0x7FE00010:
            return None
        if vr == "SQ":
            items = ",".join(dicomjson.join(Level(i, self).fragments()) for i in element.items)
            return f'{{"vr":"SQ","Value":[{items}]}}' if items else '{"vr":"SQ"}'
        if not element.value:
            return f'{{"vr":"{vr}"}}'
        key = (vr, self.codec, element.value)
        cached = _WRITTEN.get(key, "")  # "" is never written: not cached
        if cached != "":
            return cached
        try:
            text = self._written(element)
        except Declined:
            return self._converted_json(element.tag)
        if len(element.value) <= _CACHED_VALUE_BYTES:
            if len(_WRITTEN) >= _CACHED_VALUES:
                _WRITTEN.clear()
            _WRITTEN[key] = text
        return text

    def _written(self, element: Element) -> str | None:
        values = self.values(element)
        if values is None:
            return None
        vr = element.vr
        encoded = ",".join(_json_value(vr, v) for v in values)
        return f'{{"vr":"{vr}","Value":[{encoded}]}}' if values else f'{{"vr":"{vr}"}}'

    def _converted_json(self, tag: int) -> str | None:
        converted = dicomjson.element_json(self.converted(tag))
        return None if converted is None else dicomjson.dumps(converted)

    def values(self, element: Element) -> list[Value] | None:
        """The element's values as pydicom gives them (``[]`` when empty), or ``None`` when
        ``dicomjson`` leaves the element out; :class:`Declined` when not read here."""
        reader = _READERS.get(element.vr)
        if reader is None:
            raise Declined(element.vr)
        return reader(element.value, self.codec)


def _codec(charset: bytes) -> str:
    """The codec of a Specific Character Set value, or _PYDICOM_DECODES: pydicom decodes text
    in the others. Its reader looks their terms up as it meets them, as here
    (``filereader.data_element_generator``), and refuses some (ValueError)."""
    codec = _SIMPLE_CHARSETS.get(charset.rstrip(b"\x00 "))
    if codec is not None:
        return codec
    convert_encodings(convert_string(charset, True))
    return _PYDICOM_DECODES


def _raw(element: Element) -> RawDataElement:
    """The element as pydicom's reader hands it over: explicit VR, little endian."""
    tag = BaseTag(element.tag)
    return RawDataElement(
        tag, element.vr, len(element.value), element.value, element.offset, False, True
    )


def _in_tag_order(elements: Sequence[Element]) -> dict[int, Element]:
    """As pydicom's ``Dataset``: iterated in tag order. A tag given twice is declined: pydicom
    keeps the last one, but has already read the items of a sequence it replaces (and may
    refuse them, as it refuses an item's unknown character set)."""
    found = {element.tag: element for element in elements}
    if len(found) != len(elements):
        raise Unsupported("a tag given twice")
    tags = list(found)
    if any(a >= b for a, b in pairwise(tags)):
        return {tag: found[tag] for tag in sorted(found)}
    return found


def _json_value(vr: str, value: Value) -> str:
    if isinstance(value, str):
        if vr == "PN":
            return '{"Alphabetic":' + encode_basestring(value) + "}"
        return str(encode_basestring(value))
    return repr(value)  # json.dumps writes int and float with their repr


# ------------------------------------------------------------- value readers (pydicom.values)


def _split(text: str) -> list[Value]:
    """``multi_string``: trailing padding off the whole value, then split at backslashes."""
    items: list[Value] = list(text.rstrip(" \x00").split("\\"))
    return [] if items == [""] else items


def _default_text(raw: bytes, _codec: str) -> list[Value]:  # AS CS DA DT TM
    return _split(raw.decode(_LATIN))


def _ae(raw: bytes, _codec: str) -> list[Value]:
    items: list[Value] = [item.strip() for item in raw.decode(_LATIN).split("\\")]
    return [] if items == [""] else items


def _ur(raw: bytes, _codec: str) -> list[Value]:
    text = raw.decode(_LATIN).rstrip()
    return [text] if text else []


def _ui(raw: bytes, _codec: str) -> list[Value]:
    items = _split(raw.decode(_LATIN).rstrip("\x00 "))
    if not all(isinstance(i, str) and _UID.fullmatch(i) for i in items):
        raise Declined("UI")  # UID() strips blanks and validates; plain UIDs are read here
    return items


def _decoded(raw: bytes, codec: str) -> str:
    if codec == _PYDICOM_DECODES:
        raise Declined("character set")
    if b"\x1b" in raw:
        raise Declined("escape sequence")
    try:
        return raw.decode(codec)
    except UnicodeDecodeError:  # pydicom decodes with replacement characters
        raise Declined(codec) from None


def _text(raw: bytes, codec: str) -> list[Value]:  # SH LO UC
    items: list[Value] = [item.rstrip("\x00 ") for item in _decoded(raw, codec).split("\\")]
    return [] if items == [""] else items


def _single_text(raw: bytes, codec: str) -> list[Value]:  # ST LT UT
    text = _decoded(raw, codec).rstrip("\x00 ")
    return [text] if text else []


def _person_name(raw: bytes, codec: str) -> list[Value]:
    text = _decoded(raw.rstrip(b"\x00 "), codec)
    items: list[Value] = list(text.split("\\"))
    if "=" in text or ("" in items and items != [""]):  # component groups, empty names
        raise Declined("PN")
    return [] if items == [""] else items


def _numeric_strings(
    raw: bytes, pattern: re.Pattern[str], convert: Callable[[str], int | float]
) -> list[Value]:
    items = raw.decode(_LATIN).strip().rstrip(" \x00").split("\\")
    if not all(pattern.fullmatch(item) for item in items):
        raise Declined("IS/DS")  # blanks, empty values, other spellings: pydicom's IS, DSfloat
    numbers = [convert(item) for item in items]
    if not all(math.isfinite(n) for n in numbers):
        raise Declined("IS/DS")
    return list(numbers)


def _is(raw: bytes, _codec: str) -> list[Value]:
    return _numeric_strings(raw, _IS, int)


def _ds(raw: bytes, _codec: str) -> list[Value]:
    return _numeric_strings(raw, _DS, float)


def _number_reader(vr: str) -> Callable[[bytes, str], list[Value] | None]:
    code, size = _NUMBERS[vr], _SIZES[vr]

    def read(raw: bytes, _codec: str) -> list[Value] | None:
        if len(raw) % size:
            raise Declined(vr)
        numbers: list[int | float] = list(struct.unpack(f"<{len(raw) // size}{code}", raw))
        if code in "fd" and not all(math.isfinite(n) for n in numbers):
            return None  # JSON has no NaN or infinity: dicomjson leaves the element out
        return list(numbers)

    return read


_READERS: dict[str, Callable[[bytes, str], list[Value] | None]] = {
    **dict.fromkeys(("AS", "CS", "DA", "DT", "TM"), _default_text),
    **dict.fromkeys(("SH", "LO", "UC"), _text),
    **dict.fromkeys(("ST", "LT", "UT"), _single_text),
    **{vr: _number_reader(vr) for vr in _NUMBERS},
    "AE": _ae,
    "UR": _ur,
    "UI": _ui,
    "PN": _person_name,
    "IS": _is,
    "DS": _ds,
}
