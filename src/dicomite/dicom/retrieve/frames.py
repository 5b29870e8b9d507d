"""One frame of a stored instance, read alone: the frame access that WADO-RS frames, transcoding,
``/rendered`` and thumbnails share.

- Native pixel data (PS3.5 §8.1.1): the frame is read at its offset, in chunks.
- Encapsulated pixel data (PS3.5 §A.4): only the frame's fragments, found through its entry in
  the Basic or Extended Offset Table, else by walking the item headers (``retrieve.fragments``;
  ``pydicom.encaps.get_frame`` for the frames only JPEG markers can delimit). Nothing is held
  per frame: a declared NumberOfFrames costs nothing, and pixel data holding fewer frames than
  asked for is a 406 before any is sent.
- Deflated Explicit VR Little Endian (PS3.5 §A.5): the data set is first inflated to a temporary
  file (``dicom.model.inflate``), then read as Explicit VR Little Endian.

What one instance may cost is bounded by ``Settings.dicom_max_inflated_bytes``: the inflated
bytes, plus what decoding the frame at hand holds. A frame that does not fit in what is left
is a 406 saying so, as the Azure DICOM service answers for instances too large to render.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
from pydicom import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate, get_frame
from pydicom.filereader import read_dataset, read_preamble
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.utils import as_pixel_options, pack_bits
from pydicom.tag import BaseTag
from pydicom.uid import UID, ExplicitVRLittleEndian

from dicomite.dicom.blobs.protocol import CHUNK, BlobStore
from dicomite.dicom.errors import NotAcceptable, NotFound, StoredFileMissing
from dicomite.dicom.index.schema import StoredInstance
from dicomite.dicom.model.inflate import DEFLATED, CorruptDeflate, InflatedTooLarge, inflated_copy
from dicomite.dicom.retrieve import fragments
from dicomite.dicom.retrieve.codestream import declared_size

PIXEL_DATA = 0x7FE00010
PIXEL_VRS = (b"OB", b"OW", b"UN")  # PS3.5 §8.2
MIB = 1024 * 1024
# What decoding and rendering need: the Image Pixel module (PS3.3 §C.7.6.3), the Modality and
# VOI LUTs (§C.11.1, §C.11.2), the palettes (§C.7.6.3.1.5) and the Extended Offset Table.
COLOURS = ("Red", "Green", "Blue")
IMAGE_KEYWORDS = (
    ["SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration", "NumberOfFrames"]
    + ["Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation"]
    + ["RescaleIntercept", "RescaleSlope", "RescaleType", "ModalityLUTSequence"]
    + ["WindowCenter", "WindowWidth", "VOILUTFunction", "VOILUTSequence"]
    + [f"{c}PaletteColorLookupTable{part}" for c in COLOURS for part in ("Descriptor", "Data")]
    + [f"Segmented{c}PaletteColorLookupTableData" for c in COLOURS]
    + ["ExtendedOffsetTable", "ExtendedOffsetTableLengths"]
)
IMAGE_TAGS = [int(tag_for_keyword(keyword) or 0) for keyword in IMAGE_KEYWORDS]


@dataclass
class Source:
    """An opened instance, its pixel data not read: ``handle`` holds its data set (for a
    Deflated instance, the inflated copy), whose Pixel Data value starts at ``start``."""

    instance: StoredInstance
    meta: FileMetaDataset
    dataset: Dataset  # the IMAGE_TAGS found before the pixel data
    handle: BinaryIO
    syntax: UID  # the encoding of ``handle``: Explicit VR Little Endian for an inflated copy
    body: int  # where the data set starts in ``handle``
    start: int
    length: int  # of the Pixel Data value; 0xFFFFFFFF when undefined (encapsulated)
    vr: str | None
    headroom: int  # bytes of the bound left for decoding
    walk: fragments.Walk = field(default_factory=fragments.Walk)

    @property
    def frame_count(self) -> int:
        return int(as_pixel_options(self.dataset)["number_of_frames"])

    @property
    def native_little_endian(self) -> bool:
        return not self.syntax.is_encapsulated and self.syntax.is_little_endian

    def stored_frame(self, number: int) -> Iterator[bytes]:
        """Frame ``number`` (from 1) as stored: its bytes, or its fragments joined."""
        if self.syntax.is_encapsulated:
            yield self._fragments(number)
        else:
            yield from self.stored_range(*self._extent(number))

    def stored_range(self, offset: int, length: int) -> Iterator[bytes]:
        """``length`` bytes of the pixel data value from ``offset``, in chunks."""
        self.handle.seek(self.start + offset)
        while length > 0:
            chunk = self.handle.read(min(CHUNK, length))
            if not chunk:
                raise NotFound("The instance's pixel data is shorter than its attributes say.")
            length -= len(chunk)
            yield chunk

    def decoded(
        self, number: int, working_bytes_per_sample: int = 0, *, as_rgb: bool = True
    ) -> Decoded:
        """Frame ``number`` decoded (YBR converted to RGB, as pydicom does, unless ``as_rgb``
        is False); a 406 when the decoding would hold more than the bound leaves
        (``working_bytes_per_sample``: what the caller holds besides, per sample)."""
        self.check_fits(working_bytes_per_sample)
        data = b"".join(
            self._whole_words(number) if self._words_swapped else self.stored_frame(number)
        )
        if self.syntax.is_encapsulated:
            self._check_declared_size(number, data)
            data = encapsulate([data])
        options = self.pixel_options()
        options.pop("extended_offsets", None)  # ``data`` is the one frame
        options["as_rgb"] = as_rgb
        try:
            array, properties = get_decoder(self.syntax).as_array(data, **options)
        except Exception as error:  # decoders raise many types; the client gets a clear 406
            raise NotAcceptable(f"Frame {number} cannot be decoded: {error}") from None
        return Decoded(array, properties)

    @property
    def _words_swapped(self) -> bool:
        """8-bit samples in OW Big Endian come in swapped pairs (PS3.5 §8.1.1, §7.3)."""
        bits = as_pixel_options(self.dataset).get("bits_allocated")
        return not self.syntax.is_little_endian and self.vr == "OW" and bits == 8

    def _whole_words(self, number: int) -> Iterator[bytes]:
        offset, length = self._extent(number)
        if offset % 2:
            raise NotAcceptable(
                f"Frame {number} of this OW Big Endian 8-bit pixel data starts mid-word; "
                "ask for transfer-syntax=*."
            )
        return self.stored_range(offset, length + length % 2)

    def pixel_options(self) -> dict[str, Any]:
        options = as_pixel_options(
            self.dataset,
            number_of_frames=1,
            transfer_syntax_uid=self.syntax,
            pixel_keyword="PixelData",
        )
        if self.vr is not None:
            options["pixel_vr"] = self.vr
        return options

    def check_frames(self, highest: int) -> None:
        """Before any frame is sent: a 404 when frame ``highest`` is past the end of native
        pixel data, a 406 when encapsulated pixel data holds fewer frames. Only the highest
        frame is looked at: nothing is held per frame, whatever NumberOfFrames declares."""
        if self.syntax.is_encapsulated:
            self._check_frames_held(highest)
            return
        if self.start + self.length > self.handle.seek(0, 2):
            raise NotFound("The instance's pixel data is shorter than its attributes say.")
        offset, length = self._extent(highest)
        if offset + length > self.length:
            raise NotFound(f"Frame {highest} is past the end of the instance's pixel data.")

    def _check_frames_held(self, highest: int) -> None:
        held = self._frames_held(highest)
        if held < highest:
            raise NotAcceptable(
                f"The instance's encapsulated pixel data holds {held} frame(s), fewer than the "
                f"{highest} asked for (NumberOfFrames is {self.frame_count}); it cannot be "
                "decoded. Ask for transfer-syntax=* to get it as stored."
            )

    def _frames_held(self, wanted: int) -> int:
        self.handle.seek(self.start)
        return fragments.frames_held(self.handle, self._extended_offsets(), wanted)

    def _extended_offsets(self) -> tuple[bytes, bytes] | None:
        """The Extended Offset Table and its lengths (PS3.3 §C.7.6.3.1.8), when both are."""
        offsets = self.pixel_options().get("extended_offsets")
        if offsets and all(isinstance(table, bytes) for table in offsets):
            return offsets[0], offsets[1]
        return None

    def attributes(self) -> Dataset:
        """The whole data set before the pixel data (for transcoding), within the bound."""
        if self.start - self.body > self.headroom:
            raise NotAcceptable(_over("its attributes take", self.start - self.body, self))
        self.handle.seek(self.body)
        dataset = _read(self.handle, self.syntax, None)
        dataset.file_meta = self.meta
        return dataset

    def _extent(self, number: int) -> tuple[int, int]:
        """Offset and length of a native frame in the Pixel Data value."""
        bits = _frame_bits(self.dataset)
        if bits is None:
            raise NotAcceptable("The instance's image attributes are missing or invalid.")
        if bits % 8 and number > 1:
            raise NotAcceptable(
                f"Frame {number} of this bit-packed pixel data does not start on a byte "
                "boundary; ask for the whole instance."
            )
        return (number - 1) * (bits // 8), (bits + 7) // 8

    def _fragments(self, number: int) -> bytes:
        """Frame ``number``'s fragments joined (``retrieve.fragments``; pydicom's ``get_frame``
        only for frames neither table nor a fragment per frame locates)."""
        self.handle.seek(self.start)
        try:
            found = fragments.frame(
                self.handle, number, self.frame_count, self._extended_offsets(), self.walk
            )
            if found is None:
                self.handle.seek(self.start)
                found = get_frame(self.handle, number - 1, number_of_frames=self.frame_count)
        except (ValueError, EOFError, struct.error) as error:
            message = f"Frame {number} cannot be read from the encapsulated pixel data: {error}"
            raise NotAcceptable(message) from None
        return found

    def _check_declared_size(self, number: int, frame: bytes) -> None:
        """A codestream declaring more lines or columns than the instance is not decoded:
        its decoder would allocate what it declares (a decompression bomb)."""
        declared = declared_size(frame)
        options = as_pixel_options(self.dataset)
        rows, columns = int(options.get("rows", 0)), int(options.get("columns", 0))
        if declared is None:
            return
        if not (0 < declared[0] <= rows and 0 < declared[1] <= columns):
            raise NotAcceptable(
                f"Frame {number}'s codestream declares {declared[1]} x {declared[0]} pixels, "
                f"not the instance's {columns} x {rows} (Columns x Rows); it is not decoded."
            )

    def check_fits(self, working_bytes_per_sample: int) -> None:
        """A 406 when decoding a frame and ``working_bytes_per_sample`` besides would hold
        more than the bound leaves."""
        options = as_pixel_options(self.dataset)
        samples = int(options.get("rows", 0)) * int(options.get("columns", 0))
        samples *= int(options.get("samples_per_pixel", 1))
        itemsize = (int(options.get("bits_allocated", 8)) + 7) // 8
        cost = samples * (3 * itemsize + working_bytes_per_sample)
        if cost > self.headroom:
            raise NotAcceptable(_over("decoding one of its frames needs", cost, self))


@dataclass(frozen=True)
class Decoded:
    pixels: np.ndarray
    properties: dict[str, str | int]  # the Image Pixel values that describe ``pixels``

    @property
    def photometric(self) -> str:
        return str(self.properties["photometric_interpretation"])

    def little_endian_bytes(self) -> bytes:
        pixels = self.pixels
        if int(self.properties["bits_allocated"]) == 1:  # bit-packed again (PS3.5 §8.1.1)
            return pack_bits(pixels, pad=False)
        return pixels.astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes()


def open_stored(blobs: BlobStore, key: str) -> BinaryIO:
    """The stored file the index names; ``StoredFileMissing`` (404) when it is gone."""
    try:
        return blobs.open(key)
    except FileNotFoundError:
        raise StoredFileMissing() from None


@contextmanager
def opened(blobs: BlobStore, instance: StoredInstance, limit: int) -> Iterator[Source]:
    """``instance`` opened for reading frames; what it inflates is bounded by ``limit``."""
    with ExitStack() as stack:
        handle = stack.enter_context(open_stored(blobs, instance.blob_key))
        meta = _file_meta(handle)
        syntax = UID(meta.get("TransferSyntaxUID", instance.transfer_syntax_uid))
        inflated = 0
        if syntax == DEFLATED:
            handle = stack.enter_context(_inflated(handle, limit))
            inflated, syntax = handle.seek(0, 2), ExplicitVRLittleEndian
            handle.seek(0)
        body = handle.tell()
        dataset = _read(handle, syntax, IMAGE_TAGS)
        start, length, vr = _pixel_data_header(handle, syntax)
        yield Source(
            instance, meta, dataset, handle, syntax, body, start, length, vr, limit - inflated
        )


def _file_meta(handle: BinaryIO) -> FileMetaDataset:
    """The File Meta Information (PS3.10 §7.1); ``handle`` is left at the data set."""
    read_preamble(handle, force=True)
    try:
        return FileMetaDataset(read_dataset(handle, False, True, stop_when=_after_group_2))
    except Exception as error:  # pydicom's readers raise many types on corrupt data
        message = f"The instance's file meta information cannot be read: {error}"
        raise NotAcceptable(message) from None


def _after_group_2(tag: BaseTag, _vr: str | None, _length: int) -> bool:
    return bool(tag.group != 2)


def _at_pixel_data(tag: BaseTag, _vr: str | None, _length: int) -> bool:
    return bool(tag == PIXEL_DATA)


@contextmanager
def _inflated(handle: BinaryIO, limit: int) -> Iterator[BinaryIO]:
    try:
        copy = inflated_copy(handle, limit)
    except InflatedTooLarge:
        raise NotAcceptable(
            f"The instance is Deflate-compressed and inflates to more than {limit} bytes, the "
            "most this server inflates for one request (DICOMITE_DICOM_MAX_INFLATED_BYTES); "
            "ask for transfer-syntax=* to get it as stored."
        ) from None
    except CorruptDeflate as error:
        raise NotAcceptable(f"The instance's Deflate data is corrupt: {error}") from None
    with copy:
        yield copy


def _read(handle: BinaryIO, syntax: UID, tags: list[int] | None) -> Dataset:
    try:
        return read_dataset(
            handle,
            syntax.is_implicit_VR,
            syntax.is_little_endian,
            stop_when=_at_pixel_data,
            specific_tags=tags,
        )
    except Exception as error:  # pydicom's readers raise many types on corrupt data
        raise NotAcceptable(f"The instance's attributes cannot be read: {error}") from None


def _pixel_data_header(handle: BinaryIO, syntax: UID) -> tuple[int, int, str | None]:
    """Value offset, value length and VR of the Pixel Data element ``handle`` is at. The VR
    is looked for rather than assumed: some files are implicit VR under an explicit syntax
    (pydicom reads them so, and warns)."""
    order = "<" if syntax.is_little_endian else ">"
    head = handle.read(8)
    if len(head) < 8 or struct.unpack(f"{order}HH", head[:4]) != (0x7FE0, 0x0010):
        raise NotFound("The instance has no pixel data.")
    if head[4:6] not in PIXEL_VRS or head[6:8] != b"\0\0":
        return handle.tell(), struct.unpack(f"{order}L", head[4:])[0], None
    length = struct.unpack(f"{order}L", handle.read(4))[0]
    return handle.tell(), length, head[4:6].decode("ascii")


def _frame_bits(dataset: Dataset) -> int | None:
    """Bits per native frame (PS3.5 §8.1.1); YBR_FULL_422 holds two samples per pixel
    (PS3.3 §C.7.6.3.1.2)."""
    try:
        samples = int(dataset.SamplesPerPixel)
        if samples == 3 and str(dataset.PhotometricInterpretation) == "YBR_FULL_422":
            samples = 2
        bits = int(dataset.Rows) * int(dataset.Columns) * samples * int(dataset.BitsAllocated)
    except (AttributeError, TypeError, ValueError):
        return None
    return bits if bits > 0 else None


def _over(what: str, cost: int, source: Source) -> str:
    return (
        f"The instance is too large to render or transcode here: {what} about "
        f"{cost // MIB + 1} MiB, more than the {max(source.headroom, 0) // MIB} MiB left of "
        "what this server allows one request (DICOMITE_DICOM_MAX_INFLATED_BYTES); ask for "
        "transfer-syntax=* to get it as stored."
    )
