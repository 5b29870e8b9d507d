"""DICOM JSON: what is stored (``dumps``) is read back (``decode``) and answered (``encode``)
unchanged, and values JSON or ``decode`` cannot hold are left out of the metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydicom import Dataset, dcmread
from pydicom.dataelem import DataElement
from pydicom.errors import InvalidDicomError

from dicomite.dicom.model import dicomjson
from tests.dicom.stow.test_stow_instance import SAMPLES


@pytest.mark.filterwarnings("ignore")  # pydicom warns about the odd values of its samples
@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_stored_metadata_reads_back_as_the_standard_library_reads_it(path: Path) -> None:
    try:
        dataset = dcmread(path)
    except (InvalidDicomError, EOFError, ValueError, NotImplementedError):
        pytest.skip("not a file pydicom reads")  # pydicom's deliberately broken samples
    text = dicomjson.join(dicomjson.fragments(dataset))
    decoded = dicomjson.decode(text)
    assert decoded == json.loads(text)
    assert json.loads(dicomjson.encode(decoded)) == decoded


@pytest.mark.filterwarnings("ignore")  # pydicom warns about the invalid values
@pytest.mark.parametrize(
    ("vr", "value", "kept"),
    [
        ("IS", "123456789012345678901234", False),  # more digits than IS allows
        ("SV", -(2**63), True),
        ("UV", 2**64 - 1, True),
        ("DS", "NaN", False),
        ("FD", float("inf"), False),
        ("IS", "42", True),
    ],
)
def test_values_decode_cannot_hold_are_left_out(vr: str, value: object, kept: bool) -> None:
    dataset = Dataset()
    dataset.add(DataElement(0x00091010 if vr in ("SV", "UV") else 0x00181150, vr, value))
    found = dicomjson.metadata(dataset)
    assert bool(found) == kept
    if kept:
        text = dicomjson.join(dicomjson.fragments(dataset))
        assert dicomjson.decode(text) == json.loads(text)  # no integer read as a float
