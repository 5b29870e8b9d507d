"""A new version of an instance's file: the header rewritten in the file's own encoding, the
bytes from the pixel data on copied as they are, text beyond the file's character set refused."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pydicom import Dataset, dcmread
from pydicom.uid import ImplicitVRLittleEndian

from dicomite.dicom.blobs.folder import FileSystemBlobStore
from dicomite.dicom.blobs.protocol import new_blob_key
from dicomite.dicom.operations.rewrite import NotRewritable, rewrite
from tests.fixtures.dicom import make_dataset

NAME = {"00100010": ("PN", ["Müller^Jörg"]), "00101000": ("LO", ["A", "B"])}


def _blob(blobs: FileSystemBlobStore, dataset: Dataset, *, implicit: bool = False) -> str:
    if implicit:
        dataset.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    buffer = io.BytesIO()
    dataset.save_as(buffer, implicit_vr=implicit, little_endian=True, enforce_file_format=True)
    key = new_blob_key()
    with blobs.writer(key) as writer:
        writer.write(buffer.getvalue())
        writer.commit()
    return key


@pytest.fixture
def blobs(tmp_path: Path) -> FileSystemBlobStore:
    return FileSystemBlobStore(tmp_path)


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_the_header_changes_and_the_pixel_data_is_copied(
    blobs: FileSystemBlobStore, implicit: bool
) -> None:
    dataset = make_dataset(frames=2)
    key = _blob(blobs, dataset, implicit=implicit)
    with blobs.open(key) as handle:
        stored = handle.read()

    new_key, size = rewrite(blobs, key, NAME)

    with blobs.open(new_key) as handle:
        written = handle.read()
    assert size == len(written)
    pixels = stored[stored.index(b"\xe0\x7f\x10\x00") :]
    assert written.endswith(pixels)  # the pixel data element and all after it, byte for byte
    updated = dcmread(io.BytesIO(written))
    assert (str(updated.PatientName), list(updated.OtherPatientIDs)) == ("Müller^Jörg", ["A", "B"])
    assert updated.SpecificCharacterSet == "ISO_IR 192"  # was the default repertoire
    assert updated.file_meta.TransferSyntaxUID == dataset.file_meta.TransferSyntaxUID
    with blobs.open(key) as handle:
        assert handle.read() == stored


def test_text_the_character_set_cannot_write_is_refused(blobs: FileSystemBlobStore) -> None:
    key = _blob(blobs, make_dataset(frames=1, SpecificCharacterSet="ISO_IR 100"))
    assert rewrite(blobs, key, NAME)[1] > 0  # Latin-1 writes it
    with pytest.raises(NotRewritable, match="character set ISO_IR 100"):
        rewrite(blobs, key, {"00081030": ("LO", ["日本"])})
