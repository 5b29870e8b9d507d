"""One stored instance transcoded for WADO-RS, a frame at a time, into the two transfer syntaxes
the Azure DICOM service's conformance statement (v2) transcodes to:

- Explicit VR Little Endian (the default): the data set without its pixel data, then each frame
  decoded (native little endian pixel data is copied as stored).
- JPEG 2000 Lossless (PS3.5 §8.2.4): each frame decoded without colour conversion and encoded
  by pydicom's JPEG 2000 Lossless encoder (its pylibjpeg plugin, OpenJPEG) without a colour
  transform, so every sample is kept; encapsulated (PS3.5 §A.4) as one fragment per frame
  after an empty Basic Offset Table, since frames are encoded while the body is sent.

Frame 1 is transcoded before the first chunk, so that an instance that cannot be transcoded
fails there (a clean 406 when a single-instance response has not started). What a frame may
cost is bounded (``frames.Source.decoded``); OpenJPEG holds about 16 bytes per sample while it
encodes (measured: 11 for 8-bit samples, 15 for 16-bit, the codestream included).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from typing import Any

from pydicom import Dataset, dcmwrite
from pydicom.dataset import FileMetaDataset
from pydicom.pixels.encoders.base import get_encoder
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEG2000Lossless

from dicomite.dicom.blobs.protocol import BlobStore
from dicomite.dicom.errors import NotAcceptable
from dicomite.dicom.index.schema import StoredInstance
from dicomite.dicom.retrieve import frames

EXPLICIT = str(ExplicitVRLittleEndian)
JPEG2000_LOSSLESS = str(JPEG2000Lossless)
TARGETS = frozenset({EXPLICIT, JPEG2000_LOSSLESS})
ENCODING_BYTES_PER_SAMPLE = 16  # what OpenJPEG holds besides the decoded frame
MAX_BITS = 24  # OpenJPEG's encoder takes 1 to 24 bits a sample
MIN_SIDE = 32  # 2 ** 5: pylibjpeg-openjpeg always asks for 5 wavelet decompositions
UNDEFINED = 0xFFFFFFFF
PIXEL_DATA = (0x7FE0, 0x0010)
ITEM = struct.pack("<HH", 0xFFFE, 0xE000)  # PS3.5 §7.5
SEQUENCE_END = struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)  # Sequence Delimitation Item
# Encapsulated Pixel Data (PS3.5 §A.4): undefined length, then an empty Basic Offset Table
ENCAPSULATED = struct.pack("<HH2sHL", *PIXEL_DATA, b"OB", 0, UNDEFINED) + ITEM + bytes(4)
OFFSET_TABLE_KEYWORDS = ("ExtendedOffsetTable", "ExtendedOffsetTableLengths")


def transcoded(
    blobs: BlobStore, instance: StoredInstance, syntax: str, limit: int
) -> Iterator[bytes]:
    """The whole instance in ``syntax`` (one of ``TARGETS``), in pieces."""
    with frames.opened(blobs, instance, limit) as source:
        if syntax == JPEG2000_LOSSLESS:
            yield from _jpeg2000(source)
        else:
            yield from _explicit(source)


def frame(source: frames.Source, number: int, syntax: str) -> bytes:
    """Frame ``number`` in ``syntax``: native little endian pixels, or a JPEG 2000 codestream."""
    if syntax == JPEG2000_LOSSLESS:
        return encoded(_for_encoding(source, number), number)
    return source.decoded(number).little_endian_bytes()


def encoded(decoded: frames.Decoded, number: int) -> bytes:
    """``decoded`` as a JPEG 2000 Lossless codestream; a 406 saying why when it cannot be (more
    than 24 bits a sample, values outside Bits Stored, a colour model PS3.5 §8.2.4 excludes)."""
    options = _encoding(decoded)
    refusal = _unencodable(options)
    if refusal is not None:
        raise _not_encodable(number, refusal)
    try:
        encoder = get_encoder(JPEG2000Lossless)
        return bytes(encoder.encode(decoded.pixels, encoding_plugin="pylibjpeg", **options))
    except Exception as error:  # pydicom's checks and OpenJPEG raise many types
        raise _not_encodable(number, " ".join(str(error).split())) from None


def _unencodable(options: dict[str, Any]) -> str | None:
    """Why OpenJPEG, as pylibjpeg-openjpeg drives it, cannot encode a frame; None if it can."""
    bits, rows, columns = (int(options[k]) for k in ("bits_stored", "rows", "columns"))
    if bits > MAX_BITS:
        return f"{bits} bits a sample, more than the {MAX_BITS} OpenJPEG encodes"
    if min(rows, columns) < MIN_SIDE:  # each of 5 decompositions halves the image
        return (
            f"{columns} x {rows} pixels: OpenJPEG encodes frames of at least {MIN_SIDE} x "
            f"{MIN_SIDE} with the 6 resolution levels pylibjpeg-openjpeg sets"
        )
    return None


def _not_encodable(number: int, reason: str) -> NotAcceptable:
    return NotAcceptable(
        f"Frame {number} cannot be encoded as JPEG 2000 Lossless ({JPEG2000_LOSSLESS}): "
        f"{reason}; ask for {EXPLICIT} or transfer-syntax=*."
    )


def _explicit(source: frames.Source) -> Iterator[bytes]:
    if source.native_little_endian:  # the value as stored, bit-packed frames included
        source.check_frames(1)
        yield _head(source, EXPLICIT, None, source.length)
        yield from source.stored_range(0, source.length)
        return
    source.check_frames(source.frame_count)
    first = source.decoded(1)
    pixels = first.little_endian_bytes()
    length = len(pixels) * source.frame_count
    yield _head(source, EXPLICIT, first.properties, length)
    yield pixels
    for number in range(2, source.frame_count + 1):
        yield source.decoded(number).little_endian_bytes()
    if length % 2:
        yield b"\0"  # values have an even length (PS3.5 §7.1.1)


def _jpeg2000(source: frames.Source) -> Iterator[bytes]:
    source.check_frames(source.frame_count)
    first = _for_encoding(source, 1)
    codestream = encoded(first, 1)
    yield _head(source, JPEG2000_LOSSLESS, _encoding(first), None)
    yield from _fragment(codestream)
    for number in range(2, source.frame_count + 1):
        yield from _fragment(encoded(_for_encoding(source, number), number))
    yield SEQUENCE_END


def _for_encoding(source: frames.Source, number: int) -> frames.Decoded:
    return source.decoded(number, ENCODING_BYTES_PER_SAMPLE, as_rgb=False)


def _encoding(decoded: frames.Decoded) -> dict[str, Any]:
    """The Image Pixel values of the encoded frame (pydicom's encoder options)."""
    properties: dict[str, Any] = dict(decoded.properties)
    if properties["photometric_interpretation"] == "YBR_FULL_422":
        # pydicom labels JPEG's decoded YBR so; its samples are full resolution
        properties["photometric_interpretation"] = "YBR_FULL"
    properties["bits_allocated"] = max(8, int(properties["bits_allocated"]))  # 1-bit as bytes
    properties["planar_configuration"] = 0  # PS3.5 §8.2.4: irrelevant, so 0
    return properties


def _fragment(codestream: bytes) -> Iterator[bytes]:
    """One Item of encapsulated pixel data; items have an even length (PS3.5 §A.4)."""
    padding = len(codestream) % 2
    yield ITEM + struct.pack("<L", len(codestream) + padding)
    yield codestream
    if padding:
        yield b"\0"


def _head(
    source: frames.Source, syntax: str, pixels: dict[str, Any] | None, length: int | None
) -> bytes:
    """The file in ``syntax`` up to the Pixel Data value: ``length`` bytes of native pixels,
    or (None) encapsulated ones. ``pixels``: the Image Pixel values of the frames that follow,
    when not as stored."""
    if length is not None and length + length % 2 >= UNDEFINED:  # PS3.5 §7.1.1: 32 bits
        raise NotAcceptable(
            f"The instance's pixel data is too long for {syntax}; ask for transfer-syntax=*."
        )
    dataset = _dataset(source, syntax, pixels)
    written = _written(dataset, syntax)
    if length is None:
        return written + ENCAPSULATED
    vr = b"OB" if int(dataset.get("BitsAllocated", 8)) <= 8 else b"OW"
    return written + struct.pack("<HH2sHL", *PIXEL_DATA, vr, 0, length + length % 2)


def _dataset(source: frames.Source, syntax: str, pixels: dict[str, Any] | None) -> Dataset:
    dataset = source.attributes()
    dataset.file_meta = FileMetaDataset(source.meta)
    dataset.file_meta.TransferSyntaxUID = UID(syntax)
    for keyword in OFFSET_TABLE_KEYWORDS:  # they locate the stored fragments, not these
        if keyword in dataset:
            delattr(dataset, keyword)
    if pixels is not None:  # as ``pydicom``'s ``decompress`` describes what it decoded
        dataset.PhotometricInterpretation = pixels["photometric_interpretation"]
        dataset.BitsAllocated = int(pixels["bits_allocated"])
        if int(pixels["samples_per_pixel"]) > 1:
            dataset.PlanarConfiguration = int(pixels["planar_configuration"])
    return dataset


def _written(dataset: Dataset, syntax: str) -> bytes:
    out = io.BytesIO()
    try:
        dcmwrite(out, dataset, enforce_file_format=True, implicit_vr=False, little_endian=True)
    except Exception as error:  # pydicom's encoders raise many types
        raise NotAcceptable(
            f"The instance cannot be transcoded to {syntax} ({error}); ask for transfer-syntax=*."
        ) from None
    return out.getvalue()
