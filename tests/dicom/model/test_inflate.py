import io
import zlib

import pytest

from dicomite.dicom.model.inflate import CorruptDeflate, InflatedTooLarge, inflate, inflated_copy


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def test_round_trip_through_a_file() -> None:
    data = bytes(range(256)) * 10_000
    with inflated_copy(io.BytesIO(_deflate(data)), limit=len(data)) as copy:
        assert copy.read() == data


def test_over_the_limit_stops_after_one_chunk_past_it() -> None:
    bomb = _deflate(bytes(64 * 1024 * 1024))  # 64 MiB of zeros: ~64 KB compressed
    target = io.BytesIO()
    with pytest.raises(InflatedTooLarge):
        inflate(io.BytesIO(bomb), target, limit=4 * 1024 * 1024)
    assert len(target.getvalue()) <= 4 * 1024 * 1024


def test_trailing_bytes_after_the_stream_are_ignored() -> None:
    data = b"dataset" * 100
    target = io.BytesIO()
    assert inflate(io.BytesIO(_deflate(data) + b"\0padding"), target, limit=10_000) == len(data)
    assert target.getvalue() == data


def test_garbage_is_corrupt() -> None:
    with pytest.raises(CorruptDeflate):
        inflate(io.BytesIO(b"\xff" * 100), io.BytesIO(), limit=10_000)


def test_a_stream_cut_short_is_corrupt() -> None:
    deflated = _deflate(bytes(range(256)) * 1000)
    with pytest.raises(CorruptDeflate, match="cut short"):
        inflate(io.BytesIO(deflated[: len(deflated) // 2]), io.BytesIO(), limit=10**6)
