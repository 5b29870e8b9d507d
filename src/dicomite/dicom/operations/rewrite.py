"""A new version of an instance's file with some attributes changed (bulk update): pydicom
reads the header up to the pixel data and writes it back changed, in the file's own encoding;
the pixel data and whatever follows it are copied byte for byte, a chunk at a time ("Update
DICOM files": only metadata changes, the pixel data stays the same).
"""

from __future__ import annotations

import io
from typing import BinaryIO

from pydicom import Dataset, dcmwrite
from pydicom.charset import convert_encodings
from pydicom.dataelem import DataElement
from pydicom.filereader import read_partial
from pydicom.tag import BaseTag

from dicomite.dicom.blobs.protocol import CHUNK, BlobStore, new_blob_key
from dicomite.dicom.model.header import PIXEL_TAGS
from dicomite.dicom.model.inflate import DEFLATED

Changes = dict[str, tuple[str, list[str]]]  # tag (8 hex digits) → (VR, values as text)


class NotRewritable(ValueError):
    """The file cannot be rewritten without re-encoding its pixel data."""


def rewrite(blobs: BlobStore, key: str, changes: Changes) -> tuple[str, int]:
    """The new blob's key and size; the blob at ``key`` stays as it is."""
    new_key = new_blob_key()
    with blobs.open(key) as source:
        dataset, pixels_at = _read_header(source)
        syntax = dataset.file_meta.get("TransferSyntaxUID") if dataset.file_meta else None
        if syntax == DEFLATED:  # PS3.5 §A.5: the pixel data is inside the deflated stream
            raise NotRewritable("A deflated dataset cannot be updated.")
        _apply(dataset, changes)
        header = io.BytesIO()
        dcmwrite(header, dataset)
        with blobs.writer(new_key) as writer:
            writer.write(header.getvalue())
            if pixels_at is not None:
                source.seek(pixels_at)
                while chunk := source.read(CHUNK):
                    writer.write(chunk)
            size = writer.commit()
    return new_key, size


def _read_header(source: BinaryIO) -> tuple[Dataset, int | None]:
    """The dataset before the pixel data, and where the pixel data starts (None: no pixels)."""
    stopped: list[bool] = []

    def at_pixels(tag: BaseTag, _vr: str | None, _length: int) -> bool:
        stopped.append(int(tag) in PIXEL_TAGS)
        return stopped[-1]

    dataset = read_partial(source, at_pixels, force=True)  # as STOW: a Part 10 prefix or not
    return dataset, source.tell() if stopped and stopped[-1] else None


def _apply(dataset: Dataset, changes: Changes) -> None:
    _character_set(dataset, [value for _, values in changes.values() for value in values])
    for tag, (vr, values) in changes.items():
        number = int(tag, 16)
        group_length = number & 0xFFFF0000
        if group_length in dataset:  # retired (PS3.5 §7.2): it would no longer be true
            del dataset[group_length]
        dataset[number] = DataElement(number, vr, values[0] if len(values) == 1 else values)


def _character_set(dataset: Dataset, texts: list[str]) -> None:
    """Text beyond ASCII in a dataset of the default repertoire makes it UTF-8 ("ISO_IR 192",
    PS3.3 C.12.1.1.2; its other values are ASCII, the same in UTF-8); in a dataset of another
    character set it must be encodable in it (else pydicom would write "?" for what is not)."""
    if all(text.isascii() for text in texts):
        return
    declared = dataset.get("SpecificCharacterSet")
    if not declared:
        dataset.SpecificCharacterSet = "ISO_IR 192"
        return
    codecs = convert_encodings(declared)
    for text in texts:
        if not any(_encodes(text, codec) for codec in codecs):
            raise NotRewritable(f"'{text[:64]}' cannot be written in the character set {declared}.")


def _encodes(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except (UnicodeError, LookupError):
        return False
    return True
