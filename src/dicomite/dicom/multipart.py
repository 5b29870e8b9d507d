"""Streaming ``multipart/related`` (RFC 2387, RFC 2046 §5.1) reader and writer.

The reader is a push parser: ``feed`` takes whatever bytes arrived and returns events
(:class:`PartStart`, :class:`PartData`, :class:`PartEnd`), holding back only the few bytes that
could be the start of a delimiter; memory stays flat whatever the size of a part. ``close``
refuses a body that ended before the close delimiter.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from dicomite.dicom.errors import BadRequest

MAX_HEADER_BYTES = 16 * 1024
_PREAMBLE, _HEADERS, _BODY, _AFTER_DELIMITER, _DONE = range(5)
_CONTROL_SLICE = 4096  # bytes of a chunk added to the buffer at a time outside part bodies
_MIME_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # noqa: S105 - RFC 7230 token, not a secret
# A parameter value is a token or a quoted string (RFC 9110 §5.6.6), and "/" is no token
# character; read leniently, a bare value may hold one: viewers send
# ``type=application/octet-stream`` unquoted (OHIF's default), and other archives accept it.
_BARE_VALUE = r"[!#$%&'*+./^_`|~0-9A-Za-z-]+"
_PARAMETER = re.compile(rf';\s*({_MIME_TOKEN})\s*=\s*("(?:[^"\\]|\\.)*"|{_BARE_VALUE})')


@dataclass(frozen=True)
class MediaType:
    """A parsed ``Content-Type``/``Accept`` item: ``type/subtype; name=value …``."""

    value: str
    parameters: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> MediaType:
        main, _, rest = text.partition(";")
        parameters = {
            name.lower(): raw[1:-1].replace('\\"', '"') if raw.startswith('"') else raw
            for name, raw in _PARAMETER.findall(";" + rest)
        }
        return cls(main.strip().lower(), parameters)


@dataclass(frozen=True)
class PartStart:
    headers: dict[str, str]


@dataclass(frozen=True)
class PartData:
    data: bytes | memoryview  # a view of the bytes fed, not a copy


@dataclass(frozen=True)
class PartEnd:
    pass


Event = PartStart | PartData | PartEnd


def boundary_of(content_type: MediaType) -> bytes:
    boundary = content_type.parameters.get("boundary", "")
    if not 1 <= len(boundary) <= 70:  # RFC 2046 §5.1.1
        raise BadRequest("The multipart/related Content-Type has no valid boundary parameter.")
    return boundary.encode("latin-1")


class MultipartReader:
    def __init__(self, boundary: bytes, max_header_bytes: int = MAX_HEADER_BYTES) -> None:
        self._delimiter = b"\r\n--" + boundary
        self._max_header_bytes = max_header_bytes
        # The first delimiter may open the body without a CRLF before it.
        self._buffer = bytearray(b"\r\n")
        self._state = _PREAMBLE
        self.parts = 0

    @property
    def finished(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        position = 0
        while position < len(data) and self._state != _DONE:
            if self._state == _BODY and len(data) - position >= len(self._delimiter):
                position = self._body(data, position, events)
                continue
            # Delimiter lines and part headers are small: they go through the buffer a slice
            # at a time, so that the part after them is not copied along.
            end = len(data) if self._state == _BODY else position + _CONTROL_SLICE
            self._buffer += memoryview(data)[position:end]
            position = min(end, len(data))
            while self._step(events):
                pass
        return events

    def _body(self, data: bytes, position: int, events: list[Event]) -> int:
        """Inside a part, the bytes fed are searched where they are and handed on as views;
        only the few held back (a possible delimiter start) are copied. Returns where the
        bytes after the part begin, or the end of ``data``."""
        delimiter = self._delimiter
        if self._buffer:  # held back: fewer bytes than the delimiter
            joined = bytes(self._buffer) + data[position : position + len(delimiter) - 1]
            if joined.find(delimiter) >= 0:  # the delimiter starts in what was held back
                end = position + len(delimiter) - 1
                self._buffer += memoryview(data)[position:end]
                while self._step(events):
                    pass
                return end
            events.append(PartData(bytes(self._buffer)))
            self._buffer.clear()
        found = data.find(delimiter, position)
        if found >= 0:
            if found > position:
                events.append(PartData(memoryview(data)[position:found]))
            events.append(PartEnd())
            self._state = _AFTER_DELIMITER
            return found + len(delimiter)
        safe = len(data) - (len(delimiter) - 1)
        events.append(PartData(memoryview(data)[position:safe]))
        self._buffer += memoryview(data)[safe:]
        return len(data)

    def close(self) -> None:
        if self._state != _DONE:
            what = "no part" if self._state == _PREAMBLE else "an unterminated part"
            raise BadRequest(
                f"The multipart body ended with {what}: the close delimiter is missing."
            )

    def _step(self, events: list[Event]) -> bool:
        if self._state == _PREAMBLE:
            return self._skip_preamble()
        if self._state == _HEADERS:
            return self._read_headers(events)
        if self._state == _BODY:
            return self._read_body(events)
        if self._state == _AFTER_DELIMITER:
            return self._after_delimiter()
        self._buffer.clear()  # epilogue: ignored (RFC 2046 §5.1.1)
        return False

    def _skip_preamble(self) -> bool:
        found = self._buffer.find(self._delimiter)
        if found < 0:
            keep = len(self._delimiter) - 1
            if len(self._buffer) > keep:
                del self._buffer[: len(self._buffer) - keep]
            return False
        del self._buffer[: found + len(self._delimiter)]
        self._state = _AFTER_DELIMITER
        return True

    def _after_delimiter(self) -> bool:
        line_end = self._buffer.find(b"\r\n")
        if line_end < 0:
            if len(self._buffer) >= 2 and self._buffer[:2] == b"--":
                self._state = _DONE
                return True
            if len(self._buffer) > 256:
                raise BadRequest("A multipart delimiter line is malformed.")
            return False
        line = bytes(self._buffer[:line_end])
        if line.startswith(b"--"):
            self._state = _DONE
            return True
        if line.strip(b" \t"):  # transport padding only (RFC 2046 §5.1.1)
            raise BadRequest("A multipart delimiter line is malformed.")
        del self._buffer[: line_end + 2]
        self._state = _HEADERS
        return True

    def _read_headers(self, events: list[Event]) -> bool:
        if self._buffer.startswith(b"\r\n"):
            end, skip = 0, 2
        else:
            end, skip = self._buffer.find(b"\r\n\r\n"), 4
        if end < 0:
            if len(self._buffer) > self._max_header_bytes:
                raise BadRequest(
                    f"A multipart part's headers exceed {self._max_header_bytes} bytes."
                )
            return False
        if end > self._max_header_bytes:
            raise BadRequest(f"A multipart part's headers exceed {self._max_header_bytes} bytes.")
        headers = _parse_headers(bytes(self._buffer[:end]))
        del self._buffer[: end + skip]
        events.append(PartStart(headers))
        self.parts += 1
        self._state = _BODY
        return True

    def _read_body(self, events: list[Event]) -> bool:
        found = self._buffer.find(self._delimiter)
        if found >= 0:
            if found:
                events.append(PartData(bytes(self._buffer[:found])))
            del self._buffer[: found + len(self._delimiter)]
            events.append(PartEnd())
            self._state = _AFTER_DELIMITER
            return True
        safe = len(self._buffer) - (len(self._delimiter) - 1)
        if safe > 0:
            events.append(PartData(bytes(self._buffer[:safe])))
            del self._buffer[:safe]
        return False


def _parse_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.decode("latin-1").split("\r\n"):
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise BadRequest("A multipart part has a malformed header line.")
        headers[name.strip().lower()] = value.strip()
    return headers


def new_boundary() -> str:
    return uuid.uuid4().hex


def part_head(boundary: str, content_type: str, extra: Iterable[tuple[str, str]] = ()) -> bytes:
    lines = [f"--{boundary}", f"Content-Type: {content_type}"]
    lines += [f"{name}: {value}" for name, value in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def closing(boundary: str) -> bytes:
    return f"\r\n--{boundary}--\r\n".encode("latin-1")


PART_SEPARATOR = b"\r\n"
