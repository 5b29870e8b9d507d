"""What one frame may cost (issue 13, items 1 and 2), measured from the wire.

The inflation bound counts decoded pixels, so an ordinary large frame (a 4096 x 4096 16-bit
mammogram, 32 MiB of pixels) must render within it: the renderer's estimate once counted about
19 bytes per pixel byte and answered 406 "needs about 609 MiB", and frames it did render
(3328 x 4096) grew the server's RSS by ~360 MiB, over the issue's 300 MB bound per request. And
a retrieval's memory must not follow a declared NumberOfFrames; pixel data holding fewer frames
than declared is a 406 before the response starts."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit

from tests.dicom.retrieve.test_frames import (
    AS_STORED,
    BOMB_BOUND,
    FRAMES_BOUND,
    MIB,
    Peak,
    _client,
    _path,
    _store,
)
from tests.fixtures.dicom import make_dataset, to_bytes
from tests.fixtures.server import Server, make_server

AS_STORED_FRAMES = {
    "Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
}


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, httpx.Client]]:
    running = make_server(tmp_path_factory.mktemp("rendering"))  # its memory is ours to measure
    running.start()
    with _client(running) as client:
        yield running, client
    running.stop()


@pytest.mark.parametrize("rows", [3328, 4096])
@pytest.mark.parametrize("target", ["/rendered", "/thumbnail"])
def test_a_large_monochrome_frame_renders_within_the_bound(
    own: tuple[Server, httpx.Client], rows: int, target: str
) -> None:
    server, client = own
    pixels = np.random.default_rng(13).integers(0, 4096, (rows, 4096), dtype=np.uint16)
    dataset = make_dataset(frames=1, Rows=rows, Columns=4096, PixelData=pixels.tobytes())
    dataset.BitsStored, dataset.HighBit = 12, 11
    _store(client, to_bytes(dataset))
    with Peak(server) as peak:
        response = client.get(_path(dataset) + target, headers={"Accept": "image/png"})
    assert response.status_code == 200, response.text
    assert response.content.startswith(b"\x89PNG")
    assert peak.growth <= BOMB_BOUND, f"RSS grew by {peak.growth / MIB:.0f} MiB"


@pytest.mark.parametrize("target", ["/rendered", "/thumbnail"])
def test_a_large_colour_frame_renders_within_the_bound(
    own: tuple[Server, httpx.Client], target: str
) -> None:
    """4096 x 4096 RGB, 8 bits a sample: 48 MiB of pixels, rendered as JPEG."""
    server, client = own
    pixels = np.random.default_rng(11).integers(0, 256, (4096, 4096, 3), dtype=np.uint8)
    dataset = make_dataset(frames=1, Rows=4096, Columns=4096, PixelData=pixels.tobytes())
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 3, "RGB"
    dataset.PlanarConfiguration = 0
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 8, 8, 7
    _store(client, to_bytes(dataset))
    with Peak(server) as peak:
        response = client.get(_path(dataset) + target)
    assert response.status_code == 200, response.text
    assert Image.open(io.BytesIO(response.content)).mode == "RGB"
    assert peak.growth <= BOMB_BOUND, f"RSS grew by {peak.growth / MIB:.0f} MiB"


def _jpeg_16x16() -> bytes:
    jpeg = io.BytesIO()
    Image.new("L", (16, 16), 7).save(jpeg, "JPEG")
    return jpeg.getvalue() + b"\x00" * (len(jpeg.getvalue()) % 2)


def _one_fragment_instance(declared_frames: int) -> tuple[pydicom.Dataset, bytes]:
    """A 16x16 JPEG in one fragment, while NumberOfFrames claims ``declared_frames``."""
    codestream = _jpeg_16x16()
    dataset = make_dataset(frames=declared_frames, Rows=16, Columns=16, PixelData=None)
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 8, 8, 7
    dataset.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    dataset.PixelData = encapsulate([codestream])
    dataset["PixelData"].VR = "OB"
    dataset["PixelData"].is_undefined_length = True
    return dataset, to_bytes(dataset)


def test_a_declared_frame_count_costs_no_memory(own: tuple[Server, httpx.Client]) -> None:
    """An 800-byte instance declaring 5,000,000 frames grew the worker by ~190 MiB on a plain
    retrieval (about 38 bytes per declared frame); declaring 2,147,483,647 drove a worker to
    22 GB and the kernel's OOM killer. What a retrieval costs must not follow NumberOfFrames."""
    server, client = own
    dataset, data = _one_fragment_instance(5_000_000)
    _store(client, data)
    with Peak(server) as peak:
        response = client.get(_path(dataset))
    assert response.status_code < 500, response.text
    assert peak.growth <= FRAMES_BOUND, f"RSS grew by {peak.growth / MIB:.0f} MiB"


def test_fewer_frames_than_declared_is_406_before_the_response(
    own: tuple[Server, httpx.Client],
) -> None:
    """One fragment cannot hold three frames (PS3.5 §A.4): the instance was sent as a 200 cut
    short after its first frame, and its frame 2 was a 404 though the instance exists."""
    _, client = own
    dataset, data = _one_fragment_instance(3)
    _store(client, data)
    whole = client.get(_path(dataset))
    assert whole.status_code == 406 and "holds 1 frame(s)" in whole.text, whole.text
    frame = client.get(_path(dataset) + "/frames/2")
    assert frame.status_code == 406 and "holds 1 frame(s)" in frame.text, frame.text
    assert client.get(_path(dataset) + "/frames/1").status_code == 200
    assert client.get(_path(dataset), headers=AS_STORED).status_code == 200


def test_a_long_offset_table_is_not_unpacked(own: tuple[Server, httpx.Client]) -> None:
    """A 16 MB Basic Offset Table (4,000,000 entries) before one 16x16 JPEG: reading frame 1
    once unpacked the whole table into Python integers (~40 bytes an entry), for each frame."""
    server, client = own
    entries = 4_000_000
    dataset, _ = _one_fragment_instance(entries)
    table = (np.arange(entries, dtype="<u4") * 2).tobytes()
    fragment = _jpeg_16x16()
    item = b"\xfe\xff\x00\xe0"
    dataset.PixelData = (
        b"".join(
            [item, struct.pack("<L", len(table)), table, item, struct.pack("<L", len(fragment))]
        )
        + fragment
    )
    _store(client, to_bytes(dataset))
    with Peak(server) as peak:
        response = client.get(_path(dataset) + "/frames/1", headers=AS_STORED_FRAMES)
    assert response.status_code == 200, response.text
    assert peak.growth <= FRAMES_BOUND, f"RSS grew by {peak.growth / MIB:.0f} MiB"
