"""The image size a compressed frame's codestream declares, read from its header alone.

A decoder allocates what the codestream declares, whatever Rows and Columns say: a 5 MB JPEG
may declare 20000 x 20000 pixels. ``dicom.retrieve.frames`` compares the two before decoding.

- JPEG (ISO/IEC 10918-1 §B.2.2) and JPEG-LS (ISO/IEC 14495-1 §C.2.2): the frame header (SOFn)
  holds the sample precision, then the number of lines and of samples per line.
- JPEG 2000 (ISO/IEC 15444-1 §A.5.1): the SIZ marker segment after SOC holds the reference
  grid's size and the image offset on it; a JP2 file's codestream is found by its SOC + SIZ.
"""

from __future__ import annotations

import struct

JPEG_SOI = b"\xff\xd8"
J2K_SOC_SIZ = b"\xff\x4f\xff\x51"
# Start-of-frame markers: SOF0-SOF15 but DHT (C4), JPG (C8) and DAC (CC); SOF55 for JPEG-LS.
JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xF7}
HEAD = 64 * 1024  # how far into a frame its header is looked for


def declared_size(frame: bytes) -> tuple[int, int] | None:
    """(rows, columns) the codestream declares; None when it is not JPEG, JPEG-LS or JPEG 2000
    or its header is not found."""
    if frame.startswith(JPEG_SOI):
        return _jpeg_size(frame)
    siz = frame.find(J2K_SOC_SIZ, 0, HEAD)
    if siz >= 0 and len(frame) >= siz + 24:
        width, height, left, top = struct.unpack(">4L", frame[siz + 8 : siz + 24])
        return max(height - top, 0), max(width - left, 0)
    return None


def _jpeg_size(frame: bytes) -> tuple[int, int] | None:
    position = 2
    while position + 9 <= min(len(frame), HEAD):
        if frame[position] != 0xFF:
            return None
        marker = frame[position + 1]
        if marker == 0xFF:  # fill bytes before a marker (§B.1.1.2)
            position += 1
            continue
        if marker in JPEG_FRAME_MARKERS:
            rows, columns = struct.unpack(">HH", frame[position + 5 : position + 9])
            return rows, columns
        position += 2 + struct.unpack(">H", frame[position + 2 : position + 4])[0]
    return None
