"""WADO-RS (PS3.18 §10.4): instances, metadata and frames.

Instances stream from their blob in 1 MB chunks (``transfer-syntax=*`` or the stored syntax);
a transcode to Explicit VR Little Endian (the default, as in the conformance statement) reads
the one instance being sent, never the whole study.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from pydicom import dcmread, dcmwrite
from pydicom.encaps import generate_frames
from pydicom.uid import UID, ExplicitVRLittleEndian

from dicomite.dicom.blobs import CHUNK, BlobStore, FileSystemBlobStore
from dicomite.dicom.errors import BadRequest, NotAcceptable, NotFound
from dicomite.dicom.index import StoredInstance
from dicomite.dicom.multipart import MediaType, closing, part_head
from dicomite.dicom.zerocopy import Piece

DICOM = "application/dicom"
OCTETS = "application/octet-stream"
DEFAULT_SYNTAX = ExplicitVRLittleEndian
NATIVE = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
                    "1.2.840.10008.1.2.1.99"})  # fmt: skip
# Compressed syntaxes pydicom can decode with the plugins installed (RLE natively, JPEG and
# JPEG-LS through pylibjpeg-libjpeg, JPEG 2000 through pylibjpeg-openjpeg).
DECODABLE = frozenset({"1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
                       "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
                       "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81",
                       "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"})  # fmt: skip


@dataclass(frozen=True)
class Wanted:
    """The negotiated representation: single part or multipart, and a transfer syntax."""

    multipart: bool
    syntax: str  # "*" keeps what is stored


def negotiate(accept: str | None, part_type: str, *, single_allowed: bool) -> Wanted:
    """First acceptable item of ``Accept`` (PS3.18 §8.7.3); none given → the default."""
    if not accept or not accept.strip():
        return Wanted(True, str(DEFAULT_SYNTAX))
    for item in accept.split(","):
        media = MediaType.parse(item)
        syntax = media.parameters.get("transfer-syntax", str(DEFAULT_SYNTAX))
        if media.value in ("*/*", "multipart/*"):
            return Wanted(True, str(DEFAULT_SYNTAX))
        if media.value == "multipart/related":
            inner = MediaType.parse(media.parameters.get("type", part_type)).value
            if inner in (part_type, "*/*", "application/*"):
                return Wanted(True, syntax)
        elif media.value == part_type and single_allowed:
            return Wanted(False, syntax)
    raise NotAcceptable(
        f"The Accept header '{accept[:120]}' is not supported; use multipart/related; "
        f'type="{part_type}" (with transfer-syntax=* to get the stored representation).'
    )


def plan(instances: list[StoredInstance], syntax: str) -> list[bool]:
    """For each instance: sent as stored (True) or transcoded (False); 406 when impossible."""
    if syntax == "*":
        return [True] * len(instances)
    if syntax != str(DEFAULT_SYNTAX):
        same = all(i.transfer_syntax_uid == syntax for i in instances)
        if same:
            return [True] * len(instances)
        raise NotAcceptable(f"Transcoding to transfer syntax {syntax[:64]} is not supported; "
                            f"ask for {DEFAULT_SYNTAX} or transfer-syntax=*.")  # fmt: skip
    for instance in instances:
        stored = instance.transfer_syntax_uid
        if stored not in NATIVE and stored not in DECODABLE:
            raise NotAcceptable(
                f"Instance {instance.sop_uid} is stored as {stored}, which cannot be "
                f"transcoded to {DEFAULT_SYNTAX}; ask for transfer-syntax=*."
            )
    return [i.transfer_syntax_uid == str(DEFAULT_SYNTAX) for i in instances]


def blob_chunks(blobs: BlobStore, key: str) -> Iterator[bytes]:
    with blobs.open(key) as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def transcoded(blobs: BlobStore, key: str) -> bytes:
    """The instance re-encoded as Explicit VR Little Endian (decompressing when needed);
    :class:`NotAcceptable` when pydicom cannot do it."""
    try:
        with blobs.open(key) as handle:
            dataset = dcmread(handle)
        syntax = dataset.file_meta.TransferSyntaxUID
        if syntax.is_compressed:
            dataset.decompress()
        elif not syntax.is_little_endian and "PixelData" in dataset:
            pixels = dataset.pixel_array  # decoded in native byte order
            dataset.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
        dataset.file_meta.TransferSyntaxUID = DEFAULT_SYNTAX
        out = io.BytesIO()
        dcmwrite(out, dataset, implicit_vr=False, little_endian=True, force_encoding=True)
        return out.getvalue()
    except NotAcceptable:
        raise
    except Exception as error:  # pydicom's encoders and decoders raise many types
        raise NotAcceptable(
            f"The instance cannot be transcoded to {DEFAULT_SYNTAX} ({error}); ask for "
            "transfer-syntax=*."
        ) from None


async def _in_thread(iterator: Iterator[bytes]) -> AsyncIterator[bytes]:
    while True:
        chunk = await anyio.to_thread.run_sync(next, iterator, None)
        if chunk is None:
            return
        yield chunk


def _head(number: int, instance: StoredInstance, keep: bool, boundary: str) -> bytes:
    """What comes before the instance's bytes in a multipart body."""
    syntax = instance.transfer_syntax_uid if keep else str(DEFAULT_SYNTAX)
    separator = b"\r\n" if number else b""
    return separator + part_head(boundary, f"{DICOM}; transfer-syntax={syntax}")


def stored_files(
    blobs: BlobStore, instances: list[StoredInstance], as_stored: list[bool], wanted: Wanted,
    boundary: str,
) -> list[Piece] | None:  # fmt: skip
    """The body as part heads and files to send as they are (``zerocopy``), when every
    instance is sent as stored from the folder store; otherwise None."""
    if not isinstance(blobs, FileSystemBlobStore) or not all(as_stored):
        return None
    if not wanted.multipart:
        return [blobs.path(instance.blob_key) for instance in instances]
    pieces: list[Piece] = []
    for number, instance in enumerate(instances):
        pieces += [_head(number, instance, True, boundary), blobs.path(instance.blob_key)]
    return [*pieces, closing(boundary)]


def _pieces(
    blobs: BlobStore, instances: list[StoredInstance], as_stored: list[bool], wanted: Wanted,
    boundary: str, ready: bytes | None,
) -> Iterator[bytes]:  # fmt: skip
    for number, (instance, keep) in enumerate(zip(instances, as_stored, strict=True)):
        if wanted.multipart:
            yield _head(number, instance, keep, boundary)
        if keep:
            yield from blob_chunks(blobs, instance.blob_key)
        elif ready is not None:
            yield ready
        else:  # a failure here can only cut the response short: the status is sent
            yield transcoded(blobs, instance.blob_key)
    if wanted.multipart:
        yield closing(boundary)


def _coalesced(pieces: Iterator[bytes], size: int = CHUNK) -> Iterator[bytes]:
    """Part heads and small instances joined into chunks of about ``size`` bytes: one thread
    hop and one socket write per chunk rather than per piece."""
    batch: list[bytes] = []
    held = 0
    for piece in pieces:
        batch.append(piece)
        held += len(piece)
        if held >= size:
            yield batch[0] if len(batch) == 1 else b"".join(batch)
            batch, held = [], 0
    if batch:
        yield b"".join(batch)


async def instance_stream(
    blobs: BlobStore, instances: list[StoredInstance], as_stored: list[bool], wanted: Wanted,
    boundary: str, ready: bytes | None = None,
) -> AsyncIterator[bytes]:  # fmt: skip
    """``ready``: the one instance already transcoded (single-instance requests transcode
    before the response starts, so a failure is still a clean 406). Everything else, reads and
    transcodes, happens in worker threads, one hop per chunk of about 1 MiB."""
    pieces = _pieces(blobs, instances, as_stored, wanted, boundary, ready)
    async for chunk in _in_thread(_coalesced(pieces)):
        yield chunk


def content_type(wanted: Wanted, boundary: str, part_type: str) -> str:
    if wanted.multipart:
        syntax = "" if wanted.syntax == "*" else f"; transfer-syntax={wanted.syntax}"
        return f'multipart/related; type="{part_type}"; boundary={boundary}{syntax}'
    return f"{part_type}; transfer-syntax={wanted.syntax}"


def parse_frames(text: str, count: int) -> list[int]:
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError:
        raise BadRequest(f"The frame list '{text[:80]}' is not a list of integers.") from None
    if not numbers or any(n < 1 for n in numbers):
        raise BadRequest("Frame numbers start at 1.")
    missing = [n for n in numbers if n > count]
    if missing:
        raise NotFound(f"The instance has {count} frame(s); frame {missing[0]} does not exist.")
    return numbers


def frame_bytes(
    blobs: BlobStore, instance: StoredInstance, numbers: list[int], syntax: str
) -> list[bytes]:
    """The requested frames, reading only what they need: native frames are sliced at their
    offset in the file, encapsulated ones walked item by item; only a transcode (decoding a
    compressed or big endian instance) reads the whole instance."""
    stored = UID(instance.transfer_syntax_uid)
    with blobs.open(instance.blob_key) as handle:
        dataset = dcmread(handle, stop_before_pixels=True)
        start = _pixel_data_value_offset(handle)
        if start is None:
            raise NotFound("The instance has no pixel data.")
        if stored.is_compressed and syntax == "*":
            handle.seek(start)
            return _pick(
                generate_frames(handle, number_of_frames=instance.number_of_frames), numbers
            )
        size = _native_frame_size(dataset)
        if not stored.is_compressed and size and (syntax == "*" or stored.is_little_endian):
            frames = []
            for number in numbers:
                handle.seek(start + (number - 1) * size)
                frames.append(handle.read(size))
            return frames
    return _decoded_frames(blobs, instance, numbers)


def _pick(frames: Iterator[bytes], numbers: list[int]) -> list[bytes]:
    wanted, found = set(numbers), {}
    for number, frame in enumerate(frames, start=1):
        if number in wanted:
            found[number] = frame
        if len(found) == len(wanted):
            break
    return [found[n] for n in numbers]


def _decoded_frames(blobs: BlobStore, instance: StoredInstance, numbers: list[int]) -> list[bytes]:
    with blobs.open(instance.blob_key) as handle:
        dataset = dcmread(handle)
    try:
        pixels = dataset.pixel_array
    except Exception as error:  # decoders raise many types; the client gets a clear 406
        raise NotAcceptable(f"The frames cannot be decoded ({error}); ask for "
                            "transfer-syntax=*.") from None  # fmt: skip
    if instance.number_of_frames == 1:
        pixels = pixels[None, ...]
    little = pixels.astype(pixels.dtype.newbyteorder("<"))
    return [little[n - 1].tobytes() for n in numbers]


def _native_frame_size(dataset: Any) -> int | None:
    """Bytes per native frame (PS3.5 §8.1.1), when frames are byte aligned."""
    try:
        bits = int(dataset.BitsAllocated)
        pixels = int(dataset.Rows) * int(dataset.Columns) * int(dataset.get("SamplesPerPixel", 1))
    except (AttributeError, TypeError, ValueError):
        return None
    return pixels * bits // 8 if bits % 8 == 0 else None


def _pixel_data_value_offset(handle: Any) -> int | None:
    """After ``stop_before_pixels`` the stream is at the (7FE0,0010) element, if any."""
    position: int = handle.tell()
    header = handle.read(12)
    if header[:4] not in (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10"):
        return None
    explicit = header[4:6] in (b"OB", b"OW", b"OF", b"UN")
    return position + (12 if explicit else 8)


def frames_stream(frames: list[bytes], boundary: str, syntax: str) -> Iterator[bytes]:
    for number, frame in enumerate(frames):
        yield (b"\r\n" if number else b"") + part_head(
            boundary, f"{OCTETS}; transfer-syntax={syntax}"
        )
        yield frame
    yield closing(boundary)


def etag(versions: list[str]) -> str:
    digest = hashlib.sha256("\n".join(versions).encode()).hexdigest()[:32]
    return f'"{digest}"'
