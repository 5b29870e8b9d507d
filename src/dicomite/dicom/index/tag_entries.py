"""Extended query tags as clients name them: tag paths (a keyword or eight hexadecimal digits)
and the entries of ``POST …/extendedquerytags``, checked as the Azure DICOM service checks them
("Extended query tags" overview: up to 128 tags, the supported VRs, no sequences; a private
tag needs its VR and private creator). Messages are the service's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydicom.datadict import dictionary_has_tag, dictionary_VR, tag_for_keyword

from dicomite.dicom.errors import BadRequest
from dicomite.dicom.index.schema import BY_TAG, Level
from dicomite.dicom.index.tag_values import SUPPORTED_VRS

MAX_TAGS = 128
_HEX_PATH = re.compile(r"^[0-9A-Fa-f]{8}$")
_LEVELS = {"study": Level.STUDY, "series": Level.SERIES, "instance": Level.INSTANCE}
LEVEL_NAMES = {level: name for name, level in _LEVELS.items()}
_LO = re.compile(r"^[^\x00-\x1f\x7f\\]{1,64}$")


@dataclass(frozen=True)
class TagEntry:
    """An extended query tag to add, normalised: its path in upper-case hexadecimal."""

    path: str
    vr: str
    private_creator: str | None
    level: Level

    @property
    def tag(self) -> int:
        return int(self.path, 16)


def path_tag(path: str) -> int | None:
    """The tag a path names: a standard keyword, or eight hexadecimal digits of a tag in the
    dictionary or of a private group (odd); None for anything else. A path into a sequence
    (``a.b``) is refused outright: Azure indexes no sequence items."""
    if "." in path:
        raise BadRequest("Sequential dicom tags are currently not supported.")
    if _HEX_PATH.match(path):
        tag = int(path, 16)
        return tag if _is_private(tag) or dictionary_has_tag(tag) else None
    found = tag_for_keyword(path) if path.isidentifier() else None
    return None if found is None or _is_private(found) else int(found)


def normal_path(path: str) -> str:
    """The stored form of a tag path, ``00101010``; 400 when it names no tag."""
    tag = path_tag(path)
    if tag is None:
        raise BadRequest(
            f"The extended query tag '{path[:64]}' is invalid as it cannot be parsed into a "
            "valid Dicom Tag."
        )
    return f"{tag:08X}"


def entries(body: Any) -> list[TagEntry]:
    """The request body's entries, each checked; 400 with Azure's message for the first
    problem found."""
    if not isinstance(body, list) or not body:
        raise BadRequest("The extended query tag(s) is missing.")
    found: list[TagEntry] = []
    for item in body:
        entry = _entry(item)
        if any(other.path == entry.path for other in found):
            raise BadRequest(f"The extended query tag '{entry.path}' has been specified before.")
        found.append(entry)
    return found


def _entry(item: Any) -> TagEntry:
    if not isinstance(item, dict):
        raise BadRequest("The syntax of the request body is invalid.")
    fields = {str(name).lower(): value for name, value in item.items()}
    path = _field(fields, "path")
    if path is None:
        raise BadRequest(
            "The Dicom Tag Property Path must be specified and must not be null, empty or "
            "whitespace."
        )
    tag = int(normal_path(path), 16)
    if tag in BY_TAG:
        raise BadRequest(f"The query tag '{path}' is already supported.")
    level = _level(path, _field(fields, "level"))
    creator = _private_creator(tag, path, _field(fields, "privatecreator"))
    return TagEntry(f"{tag:08X}", _vr(tag, path, _field(fields, "vr")), creator, level)


def _field(fields: dict[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"The field '{name}' in request body is invalid: it must be a string.")
    return value.strip() if value and value.strip() else None


def _level(path: str, value: str | None) -> Level:
    if value is None:
        raise BadRequest(f"The level for extended query tag '{path}' is missing.")
    level = _LEVELS.get(value.lower())
    if level is None:
        raise BadRequest(
            f"Input Dicom Tag Level '{value[:64]}' is invalid. It must have value 'Study', "
            "'Series' or 'Instance'."
        )
    return level


def _is_private(tag: int) -> bool:
    return bool((tag >> 16) & 1)


def _private_creator(tag: int, path: str, creator: str | None) -> str | None:
    """Standard tags and private creator elements (gggg,0010-00FF) take none; other private
    tags need one, a valid LO (PS3.5 §7.8.1)."""
    if not _is_private(tag):
        if creator is not None:
            raise BadRequest(f"The private creator is not empty for standard tag '{path}'.")
        return None
    if 0x10 <= tag & 0xFFFF <= 0xFF:
        if creator is not None:
            raise BadRequest(
                f"The private creator is not empty for private identification code '{path}'."
            )
        return None
    if creator is None:
        raise BadRequest(f"The private creator for private tag '{path}' is missing.")
    if not _LO.match(creator):
        raise BadRequest(f"The private creator for tag '{path}' is not a valid LO attribute.")
    return creator


def _vr(tag: int, path: str, given: str | None) -> str:
    """The dictionary's VR of a standard tag (the given one must be among its VRs), the given
    VR of a private tag (LO for a private creator element); one of the supported VRs."""
    vr = given.upper() if given else None
    if vr is not None and not re.fullmatch(r"[A-Z]{2}", vr):
        raise BadRequest(f"The VR code '{given}' for tag '{path}' is invalid.")
    known = _dictionary_vrs(tag)
    if known:
        if vr is not None and vr not in known:
            raise BadRequest(
                f"The VR code '{given}' is incorrectly specified for '{path}'. The expected VR "
                f"code for it is '{known[0]}'. Retry this request either with the correct VR "
                "code or without specifying it."
            )
        vr = vr or known[0]
    elif vr is None:
        raise BadRequest(f"The vr for tag '{path}' is missing.")
    if vr not in SUPPORTED_VRS:
        raise BadRequest(f"The VR code '{vr}' specified for tag '{path}' is not supported.")
    return vr


def _dictionary_vrs(tag: int) -> list[str]:
    if _is_private(tag):
        return ["LO"] if 0x10 <= tag & 0xFFFF <= 0xFF else []
    return [vr.strip() for vr in str(dictionary_VR(tag)).split(" or ")]
