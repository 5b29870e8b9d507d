"""WADO-RS (PS3.18 §10.4): instances, metadata and frames.

Instances stream from their blob in 1 MB chunks (``transfer-syntax=*`` or the stored syntax);
a transcode (``retrieve.transcode``: to Explicit VR Little Endian, the default, or JPEG 2000
Lossless, as in the conformance statement) reads the one instance being sent, never the whole
study.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from dicomite.blocking import finished, run_blocking, start_blocking
from dicomite.dicom.blobs.protocol import CHUNK, BlobStore
from dicomite.dicom.errors import BadRequest, NotAcceptable, NotFound
from dicomite.dicom.index.schema import StoredInstance
from dicomite.dicom.model.inflate import DEFLATED
from dicomite.dicom.multipart import MediaType, closing, part_head
from dicomite.dicom.retrieve import frames, transcode

DICOM = "application/dicom"
OCTETS = "application/octet-stream"
JP2 = "image/jp2"
DEFAULT_SYNTAX = transcode.EXPLICIT
# Part types served, each with the transfer syntax it defaults to (conformance statement v2;
# PS3.18 Table 8.7.3-5 labels JPEG 2000 pixel data image/jp2), the first the default type.
INSTANCE_TYPES = {DICOM: DEFAULT_SYNTAX}
FRAME_TYPES = {OCTETS: DEFAULT_SYNTAX, JP2: transcode.JPEG2000_LOSSLESS}
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
TARGETS_TEXT = f"{DEFAULT_SYNTAX}, {transcode.JPEG2000_LOSSLESS} or transfer-syntax=*"


@dataclass(frozen=True)
class Wanted:
    """The negotiated representation: single part or multipart, a transfer syntax, and the
    type of the parts."""

    multipart: bool
    syntax: str  # "*" keeps what is stored
    part_type: str = DICOM


def negotiate(accept: str | None, types: dict[str, str], *, single_allowed: bool) -> Wanted:
    """First acceptable item of ``Accept`` (PS3.18 §8.7.3) among the part ``types`` (type:
    its default transfer syntax); none given → the first type."""
    first = next(iter(types))
    if not accept or not accept.strip():
        return Wanted(True, types[first], first)
    for item in accept.split(","):
        media = MediaType.parse(item)
        if media.value in ("*/*", "multipart/*"):
            return Wanted(True, types[first], first)
        if media.value == "multipart/related":
            inner = MediaType.parse(media.parameters.get("type", first)).value
            inner = first if inner in ("*/*", "application/*") else inner
            if inner in types:
                return Wanted(True, media.parameters.get("transfer-syntax", types[inner]), inner)
        elif media.value in types and single_allowed:
            syntax = media.parameters.get("transfer-syntax", types[media.value])
            return Wanted(False, syntax, media.value)
    raise NotAcceptable(
        f"The Accept header '{accept[:120]}' is not supported; use multipart/related; "
        f'type="{first}" (with transfer-syntax=* to get the stored representation).'
    )


def plan(instances: list[StoredInstance], syntax: str) -> list[bool]:
    """For each instance: sent as stored (True) or transcoded (False); 406 when impossible."""
    if syntax == "*":
        return [True] * len(instances)
    if syntax not in transcode.TARGETS:
        same = all(i.transfer_syntax_uid == syntax for i in instances)
        if same:
            return [True] * len(instances)
        raise NotAcceptable(
            f"Transcoding to transfer syntax {syntax[:64]} is not supported; "
            f"ask for {TARGETS_TEXT}."
        )
    for instance in instances:
        stored = instance.transfer_syntax_uid
        if stored != syntax and stored not in NATIVE and stored not in DECODABLE:
            raise NotAcceptable(
                f"Instance {instance.sop_uid} is stored as {stored}, which cannot be "
                f"transcoded to {syntax}; ask for transfer-syntax=*."
            )
    return [i.transfer_syntax_uid == syntax for i in instances]


def plan_frames(instance: StoredInstance, wanted: Wanted) -> None:
    """A 406 unless the frames can be sent as ``wanted``: image/jp2 frames are JPEG 2000
    Lossless (as the conformance statement v2 serves them), and frames are encoded to JPEG 2000
    only as image/jp2 (PS3.18 Table 8.7.3-5)."""
    j2k = transcode.JPEG2000_LOSSLESS
    if wanted.part_type == JP2 and wanted.syntax != j2k:
        raise NotAcceptable(
            f"Frames of type {JP2} are sent as JPEG 2000 Lossless only: ask for "
            f'multipart/related; type="{JP2}"; transfer-syntax={j2k}.'
        )
    if wanted.part_type != JP2 and wanted.syntax == j2k != instance.transfer_syntax_uid:
        raise NotAcceptable(
            f'JPEG 2000 frames are {JP2}: ask for multipart/related; type="{JP2}"; '
            f"transfer-syntax={j2k}."
        )
    plan([instance], wanted.syntax)


def blob_chunks(blobs: BlobStore, key: str) -> Iterator[bytes]:
    with frames.open_stored(blobs, key) as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


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


def _head(number: int, instance: StoredInstance, syntax: str | None, boundary: str) -> bytes:
    """What comes before the instance's bytes in a multipart body (``syntax``: what it is
    transcoded to; None: sent as stored)."""
    syntax = syntax or instance.transfer_syntax_uid
    separator = b"\r\n" if number else b""
    return separator + part_head(boundary, f"{DICOM}; transfer-syntax={syntax}")


def stored_file(
    blobs: BlobStore, instances: list[StoredInstance], as_stored: list[bool], wanted: Wanted
) -> str | None:
    """The local file that is the whole body (``dicom.http.zerocopy``): one instance asked for
    as stored and not as a multipart part, from a blob store with local files; else None."""
    if len(instances) != 1 or not as_stored[0] or wanted.multipart:
        return None
    return blobs.local_path(instances[0].blob_key)


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


def instance_body(
    blobs: BlobStore,
    instances: list[StoredInstance],
    as_stored: list[bool],
    wanted: Wanted,
    boundary: str,
    limit: int,
) -> Iterator[bytes]:
    """The instances as one body, read and transcoded as it is sent. Start it with
    :func:`started`: a failure before its first chunk (a 406 transcode, a stored file gone) is
    then a clean error response; past it, it can only cut the response short."""
    for number, (instance, keep) in enumerate(zip(instances, as_stored, strict=True)):
        if wanted.multipart:
            yield _head(number, instance, None if keep else wanted.syntax, boundary)
        if keep:
            yield from blob_chunks(blobs, instance.blob_key)
        else:
            yield from transcode.transcoded(blobs, instance, wanted.syntax, limit)
    if wanted.multipart:
        yield closing(boundary)


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


def content_type(wanted: Wanted, boundary: str) -> str:
    if wanted.multipart:
        syntax = "" if wanted.syntax == "*" else f"; transfer-syntax={wanted.syntax}"
        return f'multipart/related; type="{wanted.part_type}"; boundary={boundary}{syntax}'
    return f"{wanted.part_type}; transfer-syntax={wanted.syntax}"


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
    wanted: Wanted,
    boundary: str,
    limit: int,
) -> Iterator[bytes]:
    """The frames as a multipart body, read one at a time from the blob: as stored (when
    the syntax wanted is "*" or the stored one, or Explicit VR Little Endian of native little
    endian data), else transcoded (``transcode.frame``). Deflate encodes a data set, not
    pixels: a Deflated instance's frames are native Explicit VR Little Endian pixels, and are
    never labelled Deflated."""
    syntax = wanted.syntax
    if syntax == DEFLATED:  # PS3.18 §8.7.3.5: not a transfer syntax of pixel data
        raise NotAcceptable(
            f"Frames are pixel data, never {DEFLATED} (which encodes a data set); ask for "
            f"transfer-syntax={DEFAULT_SYNTAX} or transfer-syntax=*."
        )
    with frames.opened(blobs, instance, limit) as source:
        source.check_frames(max(numbers))
        native = source.native_little_endian and syntax == DEFAULT_SYNTAX
        as_stored = syntax in ("*", instance.transfer_syntax_uid) or native
        shown = source.syntax if syntax == "*" else syntax  # a Deflated one's are native
        media = f"{wanted.part_type}; transfer-syntax={shown}"
        for index, number in enumerate(numbers):
            yield (b"\r\n" if index else b"") + part_head(boundary, media)
            if as_stored:
                yield from source.stored_frame(number)
            else:
                yield transcode.frame(source, number, syntax)
        yield closing(boundary)


def etag(versions: list[str]) -> str:
    digest = hashlib.sha256("\n".join(versions).encode()).hexdigest()[:32]
    return f'"{digest}"'
