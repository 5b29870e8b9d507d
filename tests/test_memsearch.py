"""``memsearch.find`` answers exactly as ``bytes.find``, also where memmem does the search."""

from __future__ import annotations

import random
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from dicomite import memsearch

# Few distinct bytes, so that near matches (a delimiter's first bytes, then a mismatch) abound.
_ALPHABET = b"\r\n-ab"
_TO_ALPHABET = bytes(_ALPHABET[b % len(_ALPHABET)] for b in range(256))


def _haystack(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size).translate(_TO_ALPHABET)


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    size=st.integers(0, 3 * memsearch.MIN_BYTES),
    needle=st.binary(min_size=1, max_size=70).map(lambda b: b.translate(_TO_ALPHABET)),
    places=st.lists(st.floats(0, 1), max_size=3),
    start=st.floats(0, 1),
)
def test_finds_what_bytes_find_finds(
    seed: int, size: int, needle: bytes, places: list[float], start: float
) -> None:
    data = _haystack(seed, size)
    for place in places:  # the needle put in at a few places (also overlapping the start)
        at = int(place * len(data))
        data = data[:at] + needle + data[at:]
    begin = int(start * len(data))
    assert memsearch.find(data, needle, begin) == data.find(needle, begin)


def test_large_searches_use_memmem_on_linux() -> None:
    assert sys.platform.startswith("linux") == memsearch.FAST


def test_a_delimiter_in_a_large_part() -> None:
    delimiter = b"\r\n--" + b"b" * 32
    data = _haystack(7, 4 * memsearch.MIN_BYTES)
    assert memsearch.find(data, delimiter) == data.find(delimiter) == -1
    for at in (0, 1, len(data) // 2, len(data)):
        found = data[:at] + delimiter + data[at:]
        assert memsearch.find(found, delimiter) == at
        assert memsearch.find(found, delimiter, at) == at
        assert memsearch.find(found, delimiter, at + 1) == -1  # begins before the start
    # a match that ends exactly at the end, and one cut short by it
    assert memsearch.find(data + delimiter[:-1], delimiter) == -1
    assert memsearch.find(data + delimiter, delimiter, 5) == len(data)
