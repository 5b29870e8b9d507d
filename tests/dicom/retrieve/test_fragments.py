"""One frame of encapsulated pixel data found from its offset table entries or its item
headers alone (``dicom.retrieve.fragments``), as pydicom's ``get_frame`` finds it."""

from __future__ import annotations

import io
import struct

import pytest
from pydicom.encaps import encapsulate, encapsulate_extended, get_frame

from dicomite.dicom.retrieve import fragments

FRAMES = [b"\xff\xd8" + bytes([n]) * (10 + 6 * n) + b"\xff\xd9" for n in range(4)]


@pytest.mark.parametrize("has_bot", [True, False])
@pytest.mark.parametrize("per_frame", [1, 3])
def test_each_frame_as_pydicom_finds_it(has_bot: bool, per_frame: int) -> None:
    data = encapsulate(FRAMES, fragments_per_frame=per_frame, has_bot=has_bot)
    for number, expected in enumerate(FRAMES, start=1):
        found = fragments.frame(io.BytesIO(data), number, len(FRAMES), None)
        if not has_bot and per_frame > 1:
            assert found is None  # only pydicom can tell; the caller asks it
            continue
        assert found == expected == get_frame(data, number - 1, number_of_frames=len(FRAMES))


def test_the_extended_offset_table() -> None:
    data, offsets, lengths = encapsulate_extended(FRAMES)
    for number, expected in enumerate(FRAMES, start=1):
        assert (
            fragments.frame(io.BytesIO(data), number, len(FRAMES), (offsets, lengths)) == expected
        )
    with pytest.raises(fragments.FrameMissing):
        fragments.frame(io.BytesIO(data), len(FRAMES) + 1, 9, (offsets, lengths))


def test_one_frame_in_many_fragments() -> None:
    data = encapsulate([FRAMES[3]], fragments_per_frame=4, has_bot=False)
    assert fragments.frame(io.BytesIO(data), 1, 1, None) == FRAMES[3]


def test_frames_held_counts_no_further_than_asked() -> None:
    data = encapsulate(FRAMES, has_bot=False)
    assert fragments.frames_held(io.BytesIO(data), None, 2) == 2
    assert fragments.frames_held(io.BytesIO(data), None, 99) == len(FRAMES)
    assert fragments.frames_held(io.BytesIO(encapsulate(FRAMES)), None, 99) == len(FRAMES)


def test_lengths_past_the_data_are_refused_not_allocated() -> None:
    """An item or table entry claiming gigabytes is refused before any read of that size."""
    bot = struct.pack("<HHL", 0xFFFE, 0xE000, 0)
    huge = bot + struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFF0) + b"\0" * 16
    with pytest.raises(fragments.FrameMissing):
        fragments.frame(io.BytesIO(huge), 1, 1, None)
    offsets, lengths = struct.pack("<Q", 0), struct.pack("<Q", 2**62)
    with pytest.raises(fragments.FrameMissing):
        fragments.frame(io.BytesIO(huge), 1, 1, (offsets, lengths))


def test_a_walk_goes_on_from_where_it_stopped() -> None:
    """Without offset tables, frames read through one ``Walk`` in any order are the frames."""
    data = encapsulate(FRAMES, has_bot=False)
    handle, walk = io.BytesIO(data), fragments.Walk()
    for number in [1, 2, 3, 4, 2, 1, 4, 3, 3]:
        handle.seek(0)
        assert fragments.frame(handle, number, len(FRAMES), None, walk) == FRAMES[number - 1]
    assert walk.one_per_frame is True
