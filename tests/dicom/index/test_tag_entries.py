"""Entries of POST …/extendedquerytags, normalised as Azure stores them."""

from __future__ import annotations

import pytest

from dicomite.dicom.errors import BadRequest
from dicomite.dicom.index.schema import Level
from dicomite.dicom.index.tag_entries import TagEntry, entries, normal_path


def test_entries_are_normalised() -> None:
    body = [
        {"Path": "patientage", "Level": "STUDY"} | {"path": "PatientAge"},
        {"path": "0008103e", "vr": "lo", "level": "series"},
        {"path": "04011001", "vr": "SS", "privateCreator": "MicrosoftPC", "level": "Instance"},
        {"path": "04010010", "level": "Instance"},  # a private creator element: LO, no creator
    ]
    assert entries(body) == [
        TagEntry("00101010", "AS", None, Level.STUDY),
        TagEntry("0008103E", "LO", None, Level.SERIES),
        TagEntry("04011001", "SS", "MicrosoftPC", Level.INSTANCE),
        TagEntry("04010010", "LO", None, Level.INSTANCE),
    ]


def test_paths() -> None:
    assert normal_path("PatientAge") == normal_path("00101010") == "00101010"
    for invalid in ("Patient Age", "0010101", "FFFFFFFF0", "00990010X"):
        with pytest.raises(BadRequest, match="cannot be parsed into a valid Dicom Tag"):
            normal_path(invalid)


def test_a_standard_keyword_of_a_private_tag_is_not_a_path() -> None:
    with pytest.raises(BadRequest, match="already supported"):
        entries([{"path": "00080018", "level": "Instance"}])  # SOPInstanceUID, core
    with pytest.raises(BadRequest, match="is not supported"):
        entries([{"path": "PixelData", "level": "Instance"}])  # OB or OW
