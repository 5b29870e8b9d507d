"""Values of extended query tags: how each supported VR is checked, stored and matched.

The Azure DICOM service's "Extended query tags" overview lists the VRs and their matching:
single values for all, ranges for DA, DT and TM, fuzzy matching for PN. A stored value is the
element's first value (a single-valued element sent with several values is indexed by its first,
as Azure does), kept three ways: ``text_value`` (folded for case-insensitive matching),
``words`` (PN name parts, for fuzzy prefix matching as the conformance statement's PN) and
``number_value`` (every numeric VR: a double holds each of their values exactly, FL's float32
included); ``element`` is the element's DICOM JSON, as QIDO returns it.
"""

from __future__ import annotations

import enum
import math
import re
import struct
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from dicomite.dicom.errors import BadRequest
from dicomite.dicom.index.schema import fold, name_words
from dicomite.dicom.model.dicomjson import dumps


class Kind(enum.Enum):
    TEXT = "text"  # matched case-insensitively
    UID = "uid"
    PERSON = "person"
    DATE = "date"
    DATETIME = "datetime"
    TIME = "time"
    NUMBER = "number"


KINDS: dict[str, Kind] = {
    **dict.fromkeys(("AE", "AS", "CS", "LO", "SH"), Kind.TEXT),
    "UI": Kind.UID,
    "PN": Kind.PERSON,
    "DA": Kind.DATE,
    "DT": Kind.DATETIME,
    "TM": Kind.TIME,
    **dict.fromkeys(("DS", "FD", "FL", "IS", "SL", "SS", "UL", "US"), Kind.NUMBER),
}
SUPPORTED_VRS = frozenset(KINDS)
# PS3.5 §6.2: the longest value of each string VR, and the range of each integer VR.
_MAX_LENGTH = {"AE": 16, "CS": 16, "LO": 64, "SH": 16, "UI": 64}
_INTEGER_RANGE = {
    "SS": (-(2**15), 2**15 - 1),
    "US": (0, 2**16 - 1),
    "SL": (-(2**31), 2**31 - 1),
    "UL": (0, 2**32 - 1),
    "IS": (-(2**31), 2**31 - 1),
}
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\\]")
_CS = re.compile(r"^[A-Z0-9 _]*$")
_AS = re.compile(r"^\d{3}[DWMY]$")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?([+-]\d{4})?$")
_TM = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?$")


class InvalidValue(Exception):
    """A value that cannot be indexed; its message is what the tag's errors list shows."""


@dataclass(frozen=True)
class Stored:
    text_value: str | None
    words: str | None
    number_value: float | None
    element: str

    def row(self) -> dict[str, Any]:
        return {
            "text_value": self.text_value,
            "words": self.words,
            "number_value": self.number_value,
            "element": self.element,
        }


def stored(path: str, vr: str, element: dict[str, Any] | None) -> Stored | None:
    """The value to index of ``element`` (DICOM JSON) for a tag of ``vr``; None when it has no
    value (Azure does not index empty values); :class:`InvalidValue` when it cannot be."""
    if element is None:
        return None
    if element.get("vr") != vr:
        raise InvalidValue(
            f"The extended query tag '{path}' is expected to have VR '{vr}' but has "
            f"'{element.get('vr')}' in file."
        )
    values = element.get("Value") or []
    first = values[0] if values else None
    if first is None or first == "":
        return None
    shown = dumps({"vr": vr, "Value": [first]})
    kind = KINDS[vr]
    if kind is Kind.NUMBER:
        return Stored(None, None, _number(vr, first), shown)
    if kind is Kind.PERSON:
        name = first.get("Alphabetic") if isinstance(first, dict) else None
        if not isinstance(name, str) or not name:
            return None
        _check_person(name)
        return Stored(fold(name), name_words(name), None, shown)
    return Stored(_text(vr, kind, first), None, None, shown)


def _text(vr: str, kind: Kind, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidValue("Value contains invalid character.")
    text = value.strip(" \x00")
    limit = _MAX_LENGTH.get(vr)
    if limit is not None and len(text) > limit:
        raise InvalidValue(f"Value length exceeds maximum length of {limit}.")
    if _CONTROL.search(text):
        raise InvalidValue("Value contains invalid character.")
    if kind is Kind.TEXT:
        return _checked_text(vr, text).lower()
    if kind is Kind.UID:
        if not _UID.match(text):
            raise InvalidValue("Value is not a valid UID (PS3.5 §9.1).")
        return text
    if kind is Kind.DATE:
        return normalized_date(text, InvalidValue("Value cannot be parsed as a valid date."))
    if kind is Kind.DATETIME:
        found = normalized_datetime(text)
        if found is None:
            raise InvalidValue("Value cannot be parsed as a valid DateTime.")
        return found
    found = normalized_time(text)
    if found is None:
        raise InvalidValue("Value cannot be parsed as a valid Time.")
    return found


def _checked_text(vr: str, text: str) -> str:
    if vr == "AS" and not _AS.match(text):
        raise InvalidValue(
            "Value length is not 4." if len(text) != 4 else "Value is not nnnD/W/M/Y."
        )
    if vr == "CS" and not _CS.match(text):
        raise InvalidValue("Value contains invalid character.")
    return text


def _check_person(name: str) -> None:
    groups = name.split("=")
    if len(groups) > 3:
        raise InvalidValue("Value contains more than 3 groups.")
    if any(group.count("^") > 4 for group in groups):
        raise InvalidValue("Value contains more than 5 components.")
    if any(len(group) > 64 for group in groups):
        raise InvalidValue("One or more group of person name exceeds maximum length of 64.")
    if any(_CONTROL.search(group) for group in groups):
        raise InvalidValue("Value contains invalid character.")


def _number(vr: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidValue(f"Value is not a number (VR {vr}).")
    try:
        number = float(value)
    except ValueError:
        raise InvalidValue(f"Value is not a number (VR {vr}).") from None
    if not math.isfinite(number):
        raise InvalidValue(f"Value is not a finite number (VR {vr}).")
    bounds = _INTEGER_RANGE.get(vr)
    if bounds is not None and (number != int(number) or not bounds[0] <= number <= bounds[1]):
        raise InvalidValue(f"Value is out of the range of VR {vr}.")
    return _as_float32(number) if vr == "FL" else number


def _as_float32(number: float) -> float:
    """FL values are single precision: a query's value compares as the float32 nearest it."""
    try:
        return float(struct.unpack("<f", struct.pack("<f", number))[0])
    except OverflowError:
        raise InvalidValue("Value is out of the range of VR FL.") from None


def normalized_date(text: str, invalid: Exception) -> str:
    found = _DA.match(text)
    if found is None:
        raise invalid
    try:
        date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        raise invalid from None
    return text


def normalized_datetime(text: str) -> str | None:
    """``YYYYMMDDHHMMSS.FFFFFF``, missing components at their least (as Azure parses a partial
    DT); the UTC offset is left out: values compare as the local times they were written in."""
    found = _DT.match(text)
    if found is None:
        return None
    parts = [
        int(part) if part else low for part, low in zip(found.groups()[:6], _DT_LEAST, strict=True)
    ]
    fraction = (found[7] or "").ljust(6, "0")
    year, month, day, hour, minute, second = parts
    try:
        datetime(year, month, day, hour, minute, second, int(fraction))
    except ValueError:
        return None
    return "{:04}{:02}{:02}{:02}{:02}{:02}".format(*parts) + f".{fraction}"


_DT_LEAST = (0, 1, 1, 0, 0, 0)


def normalized_time(text: str) -> str | None:
    """``HHMMSS.FFFFFF``, missing components at zero."""
    found = _TM.match(text)
    if found is None:
        return None
    hour, minute, second = (int(part or 0) for part in found.groups()[:3])
    if hour > 23 or minute > 59 or second > 60:  # 60: a leap second (PS3.5 §6.2)
        return None
    return f"{hour:02}{minute:02}{second:02}.{(found[4] or '').ljust(6, '0')}"


# ---- matching (QIDO) ----------------------------------------------------------------------

# A condition on a tag's value: a comparison, the value column it compares and the value.
Condition = tuple[str, str, Any]


def conditions(name: str, vr: str, value: str, fuzzy: bool) -> list[Condition]:
    """The conditions a QIDO-RS parameter ``name=value`` puts on a tag of ``vr``."""
    kind = KINDS[vr]
    if kind is Kind.NUMBER:
        return [("=", "number_value", _query_number(name, vr, value))]
    if kind is Kind.PERSON:
        words = name_words(value).split()
        if fuzzy and words:
            return [("like", "words", f"% {_escaped(word)}%") for word in words]
        return [("=", "text_value", fold(value))]
    if kind in (Kind.DATE, Kind.DATETIME, Kind.TIME):
        return _range(name, kind, value)
    return [("=", "text_value", value.strip().lower() if kind is Kind.TEXT else value.strip())]


def _query_number(name: str, vr: str, value: str) -> float:
    try:
        return _number(vr, value.strip())
    except InvalidValue:
        kind = "long" if vr in _INTEGER_RANGE else "double"
        raise BadRequest(
            f"Invalid query: specified value '{value[:64]}' extended query tag with path "
            f"'{name[:64]}' is not a valid {kind} value."
        ) from None


def _range(name: str, kind: Kind, value: str) -> list[Condition]:
    low, dash, high = value.partition("-")
    ends = [_moment(name, kind, part) if part else None for part in (low, high)]
    if not dash:
        return [("=", "text_value", ends[0])]
    if ends == [None, None]:
        raise BadRequest(
            "Invalid query: specified range is invalid. Both parts in the range cannot be empty."
        )
    if ends[0] is not None and ends[1] is not None and ends[0] > ends[1]:
        raise BadRequest(f"Invalid query: specified range '{value[:64]}' is invalid.")
    found = [(">=", "text_value", ends[0])] if ends[0] is not None else []
    return found + ([("<=", "text_value", ends[1])] if ends[1] is not None else [])


def _moment(name: str, kind: Kind, text: str) -> str:
    shown = f"'{text[:64]}' is invalid for attribute '{name[:64]}'"
    if kind is Kind.DATE:
        invalid = BadRequest(
            f"Invalid query: specified Date value {shown}. Date should be valid and formatted "
            "as yyyyMMdd."
        )
        return normalized_date(text, invalid)
    if kind is Kind.DATETIME:
        if re.search(r"[+-]\d{4}$", text):
            raise BadRequest(
                f"Invalid query: specified DateTime value '{text[:64]}' for attribute "
                f"{name[:64]} contains offset which is not supported."
            )
        found = normalized_datetime(text)
        format_ = "DateTime should be valid and formatted as yyyyMMddHHmmss.FFFFFF"
    else:
        found = normalized_time(text)
        format_ = "Time should be valid and formatted as HHmmss.FFFFFF"
    if found is None:
        label = "DateTime" if kind is Kind.DATETIME else "Time"
        raise BadRequest(f"Invalid query: specified {label} value {shown}. {format_}.")
    return found


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
