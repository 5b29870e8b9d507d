"""What encoding into JPEG 2000 Lossless may cost, measured from the wire on a server of these
tests' own (its memory is theirs to measure): OpenJPEG holds about 16 bytes a sample besides
the decoded frame, and that counts against ``DICOMITE_DICOM_MAX_INFLATED_BYTES`` before any
decoding, so a frame that would cost more is a 406, not an out-of-memory worker."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator

import httpx
import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import RLELossless

from tests.dicom.retrieve.test_frames import FRAMES_BOUND, MIB, Peak, _client, _path
from tests.dicom.retrieve.test_transcode import FRAMES_J2K, INSTANCES_J2K, J2K, parts, store
from tests.fixtures.dicom import make_dataset
from tests.fixtures.server import Server, make_server

ENCODING_BOUND = 128 * MIB


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, httpx.Client]]:
    running = make_server(tmp_path_factory.mktemp("encoding"))
    running.start()
    with _client(running) as client:
        yield running, client
    running.stop()


def _rle_zeros(rows: int, columns: int) -> bytes:
    """One 8-bit frame of zeros in RLE Lossless (PS3.5 §G): a header naming one segment, then
    runs of 128 zeros, two bytes each -- 1.5 MB for 100 million pixels."""
    header = struct.pack("<16L", 1, 64, *[0] * 14)
    return header + b"\x81\x00" * (rows * columns // 128)


def test_a_huge_frame_is_refused_before_decoding(own: tuple[Server, httpx.Client]) -> None:
    """10000 x 10000 pixels in a 1.5 MB instance: decoding holds 300 MB (within the default
    512 MiB), encoding about 1.9 GB more; OpenJPEG alone grew a process by ~1.1 GB for it."""
    server, client = own
    dataset = make_dataset(frames=1, Rows=10_000, Columns=10_000, PixelData=None)
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 8, 8, 7
    dataset.file_meta.TransferSyntaxUID = RLELossless
    dataset.PixelData = encapsulate([_rle_zeros(10_000, 10_000)])
    dataset["PixelData"].VR = "OB"
    store(client, dataset)
    for target, accept in (("", INSTANCES_J2K), ("/frames/1", FRAMES_J2K)):
        with Peak(server) as peak:
            refused = client.get(_path(dataset) + target, headers={"Accept": accept})
        assert refused.status_code == 406, refused.text
        assert "too large to render or transcode" in refused.text, refused.text
        assert peak.growth <= FRAMES_BOUND, f"RSS grew by {peak.growth / MIB:.0f} MiB"


def test_a_large_frame_is_encoded_within_the_bound(own: tuple[Server, httpx.Client]) -> None:
    """2048 x 2048 random 12-bit samples (OpenJPEG's worst case: nothing compresses): the
    bound counts 88 MiB for them (22 bytes a sample); the server grew by ~66 MiB."""
    server, client = own
    pixels = np.random.default_rng(2).integers(0, 4096, (2048, 2048), dtype=np.uint16)
    dataset = make_dataset(frames=1, Rows=2048, Columns=2048, PixelData=pixels.tobytes())
    dataset.BitsStored, dataset.HighBit = 12, 11
    store(client, dataset)
    with Peak(server) as peak:
        response = client.get(_path(dataset), headers={"Accept": INSTANCES_J2K})
    assert response.status_code == 200, response.text
    assert peak.growth <= ENCODING_BOUND, f"RSS grew by {peak.growth / MIB:.0f} MiB"
    again = pydicom.dcmread(io.BytesIO(parts(response)[0][1]))
    assert again.file_meta.TransferSyntaxUID == J2K
    assert np.array_equal(again.pixel_array, pixels)
