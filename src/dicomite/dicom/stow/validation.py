"""What STOW checks in an instance (Azure DICOM conformance statement, "Store Required
Attributes" and "Store Changes From V1"), as data tables and small predicates.

Required attributes failing → failure 43264 in every version. Searchable attributes failing →
failure 43264 in v1; in v2 the instance is stored with warning 1 and one ``ErrorComment`` per
failing attribute, and the attribute is not indexed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydicom.multival import MultiValue
from pydicom.tag import Tag

from dicomite.dicom.index.extended_tags import QueryTag
from dicomite.dicom.index.schema import INDEXED, Indexed, Kind
from dicomite.dicom.model.uids import valid_uid

REQUIRED = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "PatientID")
# Every attribute ``check`` looks at: the values it is given are keyed by these keywords.
CHECKED = tuple(dict.fromkeys([*REQUIRED, *(a.keyword for a in INDEXED if a.kind is not Kind.UID)]))
_CS = re.compile(r"^[A-Z0-9 _]*$")
_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1a\x1c-\x1f\x7f]")


@dataclass
class Checked:
    """Outcome of validating one dataset."""

    errors: list[str] = field(default_factory=list)  # required attributes: the instance fails
    warnings: list[str] = field(default_factory=list)  # searchable attributes
    columns: dict[str, str] = field(default_factory=dict)


def check(values: Mapping[str, Any]) -> Checked:
    """``values``: keyword → value as pydicom reads it (``str``, ``PersonName``, a multi-value…)
    for the keywords of ``CHECKED`` the instance has."""
    checked = Checked()
    for keyword in REQUIRED:
        value = _text(values.get(keyword))
        if keyword == "PatientID":
            if keyword not in values:
                checked.errors.append(f"{_label(keyword)} - required attribute is missing")
            elif value is not None and not _valid_text(value, 64):
                checked.errors.append(
                    f'{_label(keyword)} - Content "{value[:80]}" does not validate VR LO'
                )
        elif problem := _uid_problem(keyword, values.get(keyword)):
            checked.errors.append(f"{_label(keyword)} - {problem}")
    for attribute in INDEXED:
        if attribute.kind is Kind.UID or attribute.keyword not in values:
            continue
        value = _text(values.get(attribute.keyword))
        if value is None or value == "":
            continue
        problem = _problem(attribute, value)
        if problem:
            checked.warnings.append(f"{_label(attribute.keyword)} - {problem}")
        else:
            checked.columns[attribute.column] = value
    return checked


def _uid_problem(keyword: str, value: Any) -> str | None:
    """Why a required UID is refused. Several values (``a\\b``) are: the instance could never
    be found by them again."""
    if isinstance(value, MultiValue | list | tuple) and len(value) > 1:
        shown = "\\".join(str(item) for item in value)[:200]  # two UIDs of 64 characters
        return f'{keyword} has {len(value)} values ("{shown}"); a UID attribute takes exactly one'
    text = _text(value)
    if valid_uid(text):
        return None
    return "missing" if text is None else f'"{text[:80]}" is not a valid UID'


@functools.lru_cache(maxsize=4096)  # a study's values recur in each of its instances
def _problem(attribute: Indexed, value: str) -> str | None:
    shown = value[:80]
    if attribute.kind is Kind.DATE and not _valid_date(value):
        return f'Content "{shown}" does not validate VR DA: value does not match pattern YYYYMMDD'
    if attribute.kind is Kind.PERSON and not _valid_person(value):
        return f'Content "{shown}" does not validate VR PN'
    if attribute.kind is Kind.CODE and not (_CS.match(value) and len(value) <= 16):
        return f'Content "{shown}" does not validate VR CS'
    if attribute.kind is Kind.TEXT and not _valid_text(value, attribute.max_length):
        return f'Content "{shown}" exceeds {attribute.max_length} characters or is not text'
    return None


def _valid_date(value: str) -> bool:
    found = _DA.match(value)
    if not found:
        return False
    try:
        date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        return False
    return True


def _valid_person(value: str) -> bool:
    groups = value.split("=")
    return len(groups) <= 3 and all(
        len(group) <= 64 and group.count("^") <= 4 and not _CONTROL.search(group)
        for group in groups
    )


def _valid_text(value: str, max_length: int) -> bool:
    return len(value) <= max_length and not _CONTROL.search(value)


def _text(value: Any) -> str | None:
    """The first value as text, without the null or space padding (conformance statement)."""
    if value is None:
        return None
    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if value else ""
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return text.rstrip("\x00 ").lstrip(" ")


def extended_problems(problems: Iterable[tuple[QueryTag, str]]) -> list[str]:
    """Values of extended query tags that cannot be indexed, worded as the searchable
    attributes' (v1 refuses the instance, v2 stores it unindexed on them with a warning)."""
    return [f"{_label(tag.tag)} - {message}" for tag, message in problems]


def _label(keyword: str | int) -> str:
    tag = Tag(keyword)
    return f"DICOM100: ({tag.group:04x},{tag.element:04x})"
