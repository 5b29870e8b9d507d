"""The streaming multipart/related reader: any chunking gives the same parts; bad bodies → 400."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomite.dicom.errors import BadRequest
from dicomite.dicom.multipart import (
    MediaType,
    MultipartReader,
    PartData,
    PartEnd,
    PartStart,
    boundary_of,
)

BOUNDARY = b"xyz-boundary"


def body_of(parts: list[bytes], boundary: bytes = BOUNDARY) -> bytes:
    body = b"preamble ignored\r\n"
    for part in parts:
        body += b"--" + boundary + b"\r\nContent-Type: application/dicom\r\n\r\n" + part + b"\r\n"
    return body + b"--" + boundary + b"--\r\nepilogue"


def read(chunks: list[bytes], boundary: bytes = BOUNDARY) -> list[bytes]:
    reader = MultipartReader(boundary)
    parts: list[bytes] = []
    current: bytearray | None = None
    for chunk in chunks:
        for event in reader.feed(chunk):
            if isinstance(event, PartStart):
                assert event.headers == {"content-type": "application/dicom"}
                current = bytearray()
            elif isinstance(event, PartData):
                assert current is not None
                current += event.data
            elif isinstance(event, PartEnd):
                assert current is not None
                parts.append(bytes(current))
                current = None
    reader.close()
    return parts


def cut_anywhere(body: bytes, data: st.DataObject, cuts: int) -> list[bytes]:
    """``body`` cut into chunks at up to ``cuts`` places hypothesis chooses."""
    at = sorted(data.draw(st.sets(st.integers(0, len(body)), max_size=cuts)))
    return [body[a:b] for a, b in zip([0, *at], [*at, len(body)], strict=True)]


# Part contents that look like the delimiter's beginnings stress the hold-back logic.
part_bytes = st.lists(
    st.sampled_from([b"\r", b"\n", b"-", b"--", b"\r\n--xyz", b"xyz-boundar", b"DICM", b"\x00"]),
    max_size=12,
).map(b"".join) | st.binary(max_size=200)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(part_bytes, min_size=1, max_size=4), data=st.data())
def test_any_chunking_gives_the_same_parts(parts: list[bytes], data: st.DataObject) -> None:
    assert read(cut_anywhere(body_of(parts), data, cuts=8)) == parts


# Large parts, in chunks holding several of them: the reader hands bodies on as views and
# sends delimiter lines and headers through its buffer in slices of a few kilobytes.
large_part = st.tuples(part_bytes, st.integers(0, 12_000)).map(
    lambda p: p[0] * 3 + b"\xab" * p[1] + p[0]
)


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(large_part, min_size=1, max_size=6), data=st.data())
def test_large_parts_in_large_chunks(parts: list[bytes], data: st.DataObject) -> None:
    assert read(cut_anywhere(body_of(parts), data, cuts=4)) == parts


def test_long_part_headers_across_slices_in_one_chunk() -> None:
    headers = b"Content-Type: application/dicom\r\nX-Padding: " + b"p" * 9000 + b"\r\n\r\n"
    body = b"--" + BOUNDARY + b"\r\n" + headers + b"a" * 5000 + b"\r\n--" + BOUNDARY + b"--"
    reader = MultipartReader(BOUNDARY)
    events = reader.feed(body)
    assert isinstance(events[0], PartStart) and events[0].headers["x-padding"] == "p" * 9000
    data = b"".join(bytes(e.data) for e in events if isinstance(e, PartData))
    assert data == b"a" * 5000 and isinstance(events[-1], PartEnd) and reader.finished


def test_split_at_every_byte() -> None:
    parts = [b"\r\n--xyz-boundar\r\n", b"second part", b""]
    body = body_of(parts)
    for cut in range(len(body) + 1):
        assert read([body[:cut], body[cut:]]) == parts
    assert read([bytes([b]) for b in body]) == parts


def test_first_delimiter_without_crlf_and_transport_padding() -> None:
    body = b"--" + BOUNDARY + b"  \r\n\r\nabc\r\n--" + BOUNDARY + b"--"
    reader = MultipartReader(BOUNDARY)
    events = reader.feed(body)
    reader.close()
    assert [type(e) for e in events] == [PartStart, PartData, PartEnd]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"no delimiter at all", id="no-delimiter"),
        pytest.param(b"--" + BOUNDARY + b"\r\n\r\nunterminated", id="unterminated"),
    ],
)
def test_unterminated_bodies_are_refused(body: bytes) -> None:
    reader = MultipartReader(BOUNDARY)
    reader.feed(body)
    with pytest.raises(BadRequest, match="close delimiter"):
        reader.close()


def test_huge_part_headers_are_refused() -> None:
    reader = MultipartReader(BOUNDARY, max_header_bytes=1024)
    with pytest.raises(BadRequest, match="headers exceed"):
        reader.feed(b"--" + BOUNDARY + b"\r\nX-Big: " + b"a" * 2048)


def test_malformed_header_line_is_refused() -> None:
    with pytest.raises(BadRequest, match="malformed header"):
        MultipartReader(BOUNDARY).feed(b"--" + BOUNDARY + b"\r\nno colon here\r\n\r\n")


def test_media_type_parameters() -> None:
    media = MediaType.parse('Multipart/Related; type="application/dicom"; boundary=abc')
    assert media.value == "multipart/related"
    assert media.parameters == {"type": "application/dicom", "boundary": "abc"}
    assert boundary_of(media) == b"abc"
    with pytest.raises(BadRequest, match="boundary"):
        boundary_of(MediaType.parse("multipart/related"))


@pytest.mark.parametrize(
    "header",
    [
        "multipart/related; type={}; transfer-syntax=*",
        "multipart/related;type={};transfer-syntax=1.2.840.10008.1.2.4.50",
        "multipart/related; type = {} ; boundary=abc",
    ],
)
def test_a_bare_parameter_value_may_hold_a_slash(header: str) -> None:
    """RFC 9110 §5.6.6 wants "/" quoted; viewers (OHIF) send it bare: both read the same."""
    bare = MediaType.parse(header.format("application/octet-stream"))
    quoted = MediaType.parse(header.format('"application/octet-stream"'))
    assert bare == quoted and bare.parameters["type"] == "application/octet-stream"


@pytest.mark.parametrize(
    "hostile",
    [
        pytest.param(";a=" * 140_000, id="empty-values"),
        pytest.param("; type=" + "a/" * 200_000, id="long-bare-value"),
        pytest.param('; a="' + '\\"' * 200_000, id="unterminated-quote"),
        pytest.param('; a=b/"' * 60_000, id="bare-then-quote"),
        pytest.param('; a="b' * 80_000, id="many-quotes"),
    ],
)
def test_hostile_parameters_are_read_in_linear_time(hostile: str) -> None:
    """A header as large as the server takes (~400 KiB) is read in milliseconds, not the
    minutes a parser that rescans the rest of the header from each parameter would take."""
    started = time.perf_counter()
    MediaType.parse("multipart/related" + hostile)
    assert time.perf_counter() - started < 1
