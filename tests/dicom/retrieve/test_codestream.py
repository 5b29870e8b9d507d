"""The size a codestream declares, read from its header: checked on every JPEG, JPEG-LS and
JPEG 2000 frame among pydicom's own test files, against the file's Rows and Columns."""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.encaps import generate_frames

from dicomite.dicom.retrieve.codestream import declared_size

# JPEG (.50-.57, .70), JPEG-LS (.80, .81) and JPEG 2000 (.90-.93) transfer syntaxes
JPEG_FAMILY = tuple(f"1.2.840.10008.1.2.4.{n}" for n in (5, 7, 8, 9))
# Files whose header disagrees with Rows and Columns (pydicom cannot decode them either).
MISMATCHED = {"JPEG2000-embedded-sequence-delimiter.dcm"}  # SIZ: 0xDDE00100 columns


def compressed_files() -> list[Path]:
    folder = Path(pydicom.__file__).resolve().parent / "data" / "test_files"
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in sorted(folder.rglob("*.dcm")):
            try:
                dataset = pydicom.dcmread(path)
            except Exception:
                continue
            syntax = str(dataset.file_meta.get("TransferSyntaxUID", ""))
            wanted = syntax.startswith(JPEG_FAMILY) and path.name not in MISMATCHED
            if wanted and "PixelData" in dataset:
                found.append(path)
    return found


@pytest.mark.parametrize("path", compressed_files(), ids=lambda path: path.name)
def test_declared_size_is_rows_and_columns(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = pydicom.dcmread(path)
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
        first = next(generate_frames(dataset.PixelData, number_of_frames=frames))
    assert declared_size(first) == (dataset.Rows, dataset.Columns)


def test_other_data_declares_nothing() -> None:
    assert declared_size(b"\x00" * 100) is None
    assert declared_size(b"\xff\xd8\xff\xe0\x00\x10" + b"\x00" * 8) is None  # cut short
