"""WADO-RS (PS3.18 §10.4): instances, metadata and frames.

Instances stream from their blob in 1 MB chunks (``transfer-syntax=*`` or the stored syntax);
a transcode to Explicit VR Little Endian (the default, as in the conformance statement) reads
the one instance being sent, never the whole study.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import struct
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from pydicom import Dataset, dcmwrite
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from dicomite.blocking import finished, run_blocking, start_blocking
from dicomite.dicom.blobs.protocol import CHUNK, BlobStore
from dicomite.dicom.errors import BadRequest, NotAcceptable, NotFound
from dicomite.dicom.index.schema import StoredInstance
from dicomite.dicom.model.inflate import DEFLATED
from dicomite.dicom.multipart import MediaType, closing, part_head
from dicomite.dicom.retrieve import frames

Piece = bytes | str  # bytes to send, or the path of a file to send whole
DICOM = "application/dicom"
OCTETS = "application/octet-stream"
DEFAULT_SYNTAX = ExplicitVRLittleEndian
NATIVE = frozenset(
    {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}
)
# Compressed syntaxes pydicom can decode with the plugins installed (RLE natively, JPEG and
# JPEG-LS through pylibjpeg-libjpeg, JPEG 2000 through pylibjpeg-openjpeg).
DECODABLE = frozenset(
    {
        "1.2.840.10008.1.2.5",
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.51",
        "1.2.840.10008.1.2.4.57",
        "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.4.81",
        "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.4.91",
    }
)


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
        raise NotAcceptable(
            f"Transcoding to transfer syntax {syntax[:64]} is not supported; "
            f"ask for {DEFAULT_SYNTAX} or transfer-syntax=*."
        )
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


def transcoded(blobs: BlobStore, instance: StoredInstance, limit: int) -> Iterator[bytes]:
    """The instance re-encoded as Explicit VR Little Endian, one frame at a time: the data set
    without its pixel data, then each frame (decoded when compressed or big endian). Frame 1
    is decoded before the first chunk, so that an instance that cannot be decoded fails there
    (a clean 406 when a single-instance response has not started)."""
    with frames.opened(blobs, instance, limit) as source:
        if source.native_little_endian:  # the value as stored, bit-packed frames included
            source.check_frames(1)
            yield _transcoded_head(source, source.length, None)
            yield from source.stored_range(0, source.length)
            return
        source.check_frames(source.frame_count)
        first = source.decoded(1)
        frame = first.little_endian_bytes()
        length = len(frame) * source.frame_count
        yield _transcoded_head(source, length, first)
        yield frame
        for number in range(2, source.frame_count + 1):
            yield source.decoded(number).little_endian_bytes()
        if length % 2:
            yield b"\0"  # values have an even length (PS3.5 §7.1.1)


def _transcoded_head(source: frames.Source, length: int, first: frames.Decoded | None) -> bytes:
    """The data set before its pixel data, and the Pixel Data element's header."""
    dataset = source.attributes()
    dataset.file_meta = FileMetaDataset(source.meta)
    dataset.file_meta.TransferSyntaxUID = DEFAULT_SYNTAX
    if first is not None:
        _describe(dataset, first)
    out = io.BytesIO()
    try:
        dcmwrite(out, dataset, enforce_file_format=True, implicit_vr=False, little_endian=True)
    except Exception as error:  # pydicom's encoders raise many types
        raise NotAcceptable(
            f"The instance cannot be transcoded to {DEFAULT_SYNTAX} ({error}); ask for "
            "transfer-syntax=*."
        ) from None
    if length + length % 2 >= 0xFFFFFFFF:  # PS3.5 §7.1.1: a 32-bit value length
        raise NotAcceptable(
            "The instance's pixel data is too long for Explicit VR Little Endian; ask for "
            "transfer-syntax=*."
        )
    vr = b"OB" if int(dataset.get("BitsAllocated", 8)) <= 8 else b"OW"
    return out.getvalue() + struct.pack("<HH2sHL", 0x7FE0, 0x0010, vr, 0, length + length % 2)


def _describe(dataset: Dataset, decoded: frames.Decoded) -> None:
    """The Image Pixel attributes of the decoded frames (as ``pydicom``'s ``decompress``)."""
    dataset.PhotometricInterpretation = decoded.photometric
    if int(decoded.properties["samples_per_pixel"]) > 1:
        dataset.PlanarConfiguration = int(decoded.properties["planar_configuration"])


async def _in_thread(iterator: Iterator[bytes]) -> AsyncIterator[bytes]:
    """The chunks of ``iterator``, made in the blocking pool a few (``_take``) per hop, the next
    ones while these are sent: the body does not wait for a hop per chunk (multipart WADO over
    plain HTTP: ~1.2 GB/s with a hop per chunk, ~1.5 GB/s so; ~1.7 GB/s on the event loop).
    At most two hops' chunks are held, about 6 MiB per response."""
    ahead = start_blocking(_take, iterator)
    try:
        while chunks := await finished(ahead):
            ahead = start_blocking(_take, iterator)
            for chunk in chunks:
                yield chunk
    finally:  # a response cut short still closes the blob and any inflated copy
        close = getattr(iterator, "close", None)
        if close is not None:  # once the read ahead has ended (now, if it has)
            ahead.add_done_callback(lambda _: close())


def _take(iterator: Iterator[bytes]) -> list[bytes]:
    """The next chunks (about 1 MiB each) for one hop; an empty list at the end."""
    return list(itertools.islice(iterator, 3))


def _head(number: int, instance: StoredInstance, keep: bool, boundary: str) -> bytes:
    """What comes before the instance's bytes in a multipart body."""
    syntax = instance.transfer_syntax_uid if keep else str(DEFAULT_SYNTAX)
    separator = b"\r\n" if number else b""
    return separator + part_head(boundary, f"{DICOM}; transfer-syntax={syntax}")


def stored_files(
    blobs: BlobStore,
    instances: list[StoredInstance],
    as_stored: list[bool],
    wanted: Wanted,
    boundary: str,
) -> list[Piece] | None:
    """The body as part heads and files to send as they are (``dicom.http.zerocopy``), when
    every instance is sent as stored from a blob store with local files; otherwise None."""
    paths = _local_paths(blobs, instances) if all(as_stored) else None
    if paths is None:
        return None
    if not wanted.multipart:
        return list(paths)
    pieces: list[Piece] = []
    for number, (instance, path) in enumerate(zip(instances, paths, strict=True)):
        pieces += [_head(number, instance, True, boundary), path]
    return [*pieces, closing(boundary)]


def _local_paths(blobs: BlobStore, instances: list[StoredInstance]) -> list[str] | None:
    paths: list[str] = []
    for instance in instances:
        path = blobs.local_path(instance.blob_key)
        if path is None:
            return None
        paths.append(path)
    return paths


def _pieces(
    blobs: BlobStore,
    instances: list[StoredInstance],
    as_stored: list[bool],
    wanted: Wanted,
    boundary: str,
    limit: int,
    ready: Iterator[bytes] | None,
) -> Iterator[bytes]:
    for number, (instance, keep) in enumerate(zip(instances, as_stored, strict=True)):
        if wanted.multipart:
            yield _head(number, instance, keep, boundary)
        if keep:
            yield from blob_chunks(blobs, instance.blob_key)
        elif ready is not None:
            yield from ready
        else:  # a failure here can only cut the response short: the status is sent
            yield from transcoded(blobs, instance, limit)
    if wanted.multipart:
        yield closing(boundary)


def _coalesced(pieces: Iterator[bytes], size: int = CHUNK) -> Iterator[bytes]:
    """Part heads and small instances joined into chunks of about ``size`` bytes: one thread
    hop and one socket write per chunk rather than per piece. (Passing large pieces through
    unjoined saved the join's copy but cost an ASGI send per part head: the same server CPU
    per MB, 0.77-0.80 ms, either way.)"""
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
    blobs: BlobStore,
    instances: list[StoredInstance],
    as_stored: list[bool],
    wanted: Wanted,
    boundary: str,
    limit: int,
    ready: Iterator[bytes] | None = None,
) -> AsyncIterator[bytes]:
    """``ready``: the one instance's transcoding, already started (single-instance requests
    start it before the response, so a failure is still a clean 406). Everything else, reads
    and transcodes, happens in worker threads, one hop per chunk of about 1 MiB."""
    pieces = _pieces(blobs, instances, as_stored, wanted, boundary, limit, ready)
    async for chunk in _in_thread(_coalesced(pieces)):
        yield chunk


async def started(body: Iterator[bytes]) -> Iterator[bytes]:
    """``body`` in chunks of about 1 MiB, the first one made now (in a worker thread), so
    that a failure to make it is a clean error response, before the response starts."""
    chunks = _coalesced(body)
    first = await run_blocking(next, chunks, None)
    return chunks if first is None else itertools.chain([first], chunks)


async def stream(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """``chunks`` made in worker threads."""
    async for chunk in _in_thread(chunks):
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
    seen: set[int] = set()
    for number in numbers:  # each frame once: a repeated list must not multiply the response
        if number in seen:
            raise BadRequest(f"Frame {number} is asked for more than once; ask for each once.")
        seen.add(number)
    missing = [n for n in numbers if n > count]
    if missing:
        raise NotFound(f"The instance has {count} frame(s); frame {missing[0]} does not exist.")
    return numbers


def frames_body(
    blobs: BlobStore,
    instance: StoredInstance,
    numbers: list[int],
    syntax: str,
    boundary: str,
    limit: int,
) -> Iterator[bytes]:
    """The frames as a multipart body, read one at a time from the blob: as stored (when
    ``syntax`` is "*" or the stored one, or the data native little endian), else decoded to
    Explicit VR Little Endian. Deflate encodes a data set, not pixels: a Deflated instance's
    frames are native Explicit VR Little Endian pixels, and are never labelled Deflated."""
    if syntax == DEFLATED:  # PS3.18 §8.7.3.5: not a transfer syntax of pixel data
        raise NotAcceptable(
            f"Frames are pixel data, never {DEFLATED} (which encodes a data set); ask for "
            f"transfer-syntax={DEFAULT_SYNTAX} or transfer-syntax=*."
        )
    with frames.opened(blobs, instance, limit) as source:
        source.check_frames(max(numbers))
        as_stored = syntax in ("*", instance.transfer_syntax_uid) or source.native_little_endian
        shown = source.syntax if syntax == "*" else syntax  # a Deflated one's are native
        media = f"{OCTETS}; transfer-syntax={shown}"
        for index, number in enumerate(numbers):
            yield (b"\r\n" if index else b"") + part_head(boundary, media)
            if as_stored:
                yield from source.stored_frame(number)
            else:
                yield source.decoded(number).little_endian_bytes()
        yield closing(boundary)


def etag(versions: list[str]) -> str:
    digest = hashlib.sha256("\n".join(versions).encode()).hexdigest()[:32]
    return f'"{digest}"'
