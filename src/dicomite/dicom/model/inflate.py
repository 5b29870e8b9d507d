"""Bounded, streaming inflation of Deflated Explicit VR Little Endian data (PS3.5 §A.5).

In that transfer syntax everything after the File Meta Information is one raw Deflate stream
(RFC 1951, no zlib header). A small file can inflate to gigabytes, so it is never inflated in
memory: :func:`inflate` writes the output to a file in chunks of at most ``CHUNK`` bytes and
stops with :class:`InflatedTooLarge` as soon as the total passes the caller's limit
(``Settings.dicom_max_inflated_bytes``), having held at most one chunk.
"""

from __future__ import annotations

import tempfile
import zlib
from typing import BinaryIO

CHUNK = 1024 * 1024
DEFLATED = "1.2.840.10008.1.2.1.99"


class InflatedTooLarge(Exception):
    """The data inflates to more than the limit allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the data inflates to more than {limit} bytes")
        self.limit = limit


class CorruptDeflate(Exception):
    """The data is not a valid Deflate stream."""


def inflate(source: BinaryIO, target: BinaryIO, limit: int) -> int:
    """Inflate the raw Deflate stream read from ``source`` into ``target``; the bytes written."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    written = 0
    try:
        while not inflater.eof and (data := source.read(CHUNK)):
            while data:
                out = inflater.decompress(data, CHUNK)
                written = _write(target, out, written, limit)
                data = inflater.unconsumed_tail
        written = _write(target, inflater.flush(), written, limit)
    except zlib.error as error:
        raise CorruptDeflate(str(error)) from None
    if not inflater.eof:  # the input ended before the stream's final block
        raise CorruptDeflate("the Deflate stream is cut short")
    return written


def inflated_copy(source: BinaryIO, limit: int) -> BinaryIO:
    """The inflated stream in an anonymous temporary file, positioned at its start."""
    target = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, who closes it
    try:
        inflate(source, target, limit)
    except BaseException:
        target.close()
        raise
    target.seek(0)
    return target


def _write(target: BinaryIO, out: bytes, written: int, limit: int) -> int:
    written += len(out)
    if written > limit:
        raise InflatedTooLarge(limit)
    target.write(out)
    return written
