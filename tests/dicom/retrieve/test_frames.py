"""Frames, rendered images, thumbnails and transcoding read one frame at a time (issue 13,
items 1 and 2), measured from the wire: the server's RSS around hostile requests stays within a
bound, and what one request may inflate or decode is bounded
(``DICOMITE_DICOM_MAX_INFLATED_BYTES``).

These tests run their own server (the folder store on SQLite): its memory is theirs to measure.
"""

from __future__ import annotations

import hashlib
import io
import struct
import threading
import zlib
from collections.abc import Iterator
from email.parser import BytesParser
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_files
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import DeflatedExplicitVRLittleEndian, JPEGBaseline8Bit

from dicomite.bootstrap import open_context
from dicomite.settings import Settings
from tests.fixtures.dicom import (
    dicom_client,
    make_dataset,
    multipart,
    stow_headers,
    to_bytes,
    token_for,
)
from tests.fixtures.directory import Admin
from tests.fixtures.server import Server, make_server

MIB = 1024 * 1024
FRAMES_BOUND = 64 * MIB  # item 1: growth of the server's RSS while serving frames
BOMB_BOUND = 300 * MIB  # item 2: growth per retrieval of a decompression bomb
AS_STORED = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}


def _tree(pid: int) -> list[int]:
    """The process and its descendants (the workers of ``dicomite serve``)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid] + [p for child in children for p in _tree(int(child))]


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


class Peak:
    """Peak RSS growth of the server's processes over a block: VmHWM is reset first
    (``clear_refs`` 5, proc(5)), so it shows the peak of this block only."""

    def __init__(self, server: Server) -> None:
        assert server.process is not None
        self.pids = _tree(server.process.pid)
        self.before = 0
        self.growth = 0

    def __enter__(self) -> Peak:
        for pid in self.pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        self.before = sum(_status(pid, "VmRSS") for pid in self.pids)
        return self

    def __exit__(self, *_: object) -> None:
        self.growth = sum(_status(pid, "VmHWM") for pid in self.pids) - self.before


def _client(server: Server) -> httpx.Client:
    url = server.env.get("DICOMITE_DATABASE_URL")
    settings = Settings(data_dir=server.data_dir, tenant_id=server.tenant_id, database_url=url)
    context = open_context(settings)
    try:
        app = Admin(context).register(roles=("Dicom.ReadWrite",))
    finally:
        context.store.dispose()
    assert app.secret is not None
    return dicom_client(server, token_for(server, app.app_id, app.secret))


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, httpx.Client]]:
    running = make_server(tmp_path_factory.mktemp("frames"))
    running.start()
    with _client(running) as client:
        yield running, client
    running.stop()


def _store(client: httpx.Client, data: bytes) -> None:
    response = client.post("/studies", content=multipart(data), headers=stow_headers())
    assert response.status_code == 200, response.text


def _path(dataset: pydicom.Dataset) -> str:
    return (
        f"/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}"
        f"/instances/{dataset.SOPInstanceUID}"
    )


def _parts(content_type: str, body: bytes) -> list[bytes]:
    message = BytesParser().parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    return [part.get_payload(decode=True) for part in message.get_payload()]  # type: ignore[union-attr,misc]


# Item 1: frame-list amplification


def test_a_repeated_frame_is_400_and_a_missing_one_404(own: tuple[Server, httpx.Client]) -> None:
    _, client = own
    dataset = make_dataset(frames=3)
    _store(client, to_bytes(dataset))
    for frames in ("1,1", "2,1,2", ",".join(["1"] * 2000)):
        refused = client.get(f"{_path(dataset)}/frames/{frames}")
        assert refused.status_code == 400, frames
        assert "more than once" in refused.text
    missing = client.get(f"{_path(dataset)}/frames/1,4")
    assert missing.status_code == 404 and "frame 4" in missing.text


def test_many_frames_stream_in_bounded_memory(own: tuple[Server, httpx.Client]) -> None:
    """200 distinct frames of 512x512 16-bit (100 MiB) come out right, one at a time."""
    server, client = own
    count = 200
    pixels = np.random.default_rng(13).integers(0, 65535, (count, 512, 512), dtype=np.uint16)
    dataset = make_dataset(frames=count, Rows=512, Columns=512, PixelData=pixels.tobytes())
    _store(client, to_bytes(dataset))
    del dataset.PixelData
    numbers = list(range(count, 0, -1))
    with Peak(server) as peak:
        response = client.get(f"{_path(dataset)}/frames/{','.join(map(str, numbers))}")
    assert response.status_code == 200, response.text
    frames = _parts(response.headers["content-type"], response.content)
    assert [hashlib.sha256(f).digest() for f in frames] == [
        hashlib.sha256(pixels[n - 1].tobytes()).digest() for n in numbers
    ]
    assert peak.growth <= FRAMES_BOUND, f"RSS grew by {peak.growth / MIB:.0f} MiB"


# Item 2: decompression bombs


def deflated_instance(frames: int, rows: int, columns: int) -> tuple[pydicom.Dataset, bytes]:
    """A Deflated Explicit VR Little Endian instance of zero-valued 16-bit frames, deflated
    as it is written (PS3.5 §A.5), never whole in memory: a few hundred KB for 256 MiB."""
    dataset = make_dataset(frames=frames, Rows=rows, Columns=columns)
    del dataset.PixelData
    explicit = to_bytes(dataset)
    body = explicit[_meta_length(explicit) :]
    dataset.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    deflated_meta = to_bytes(dataset)
    meta = deflated_meta[: _meta_length(deflated_meta)]
    size = frames * rows * columns * 2
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = [meta, deflater.compress(body + struct.pack("<HH2sHL", 0x7FE0, 0x10, b"OW", 0, size))]
    zeros = bytes(MIB)
    for start in range(0, size, MIB):
        out.append(deflater.compress(zeros[: min(MIB, size - start)]))
    out.append(deflater.flush())
    return dataset, b"".join(out)


def _meta_length(data: bytes) -> int:
    """Preamble, prefix and File Meta Information (its group length at byte 140)."""
    return 144 + int(struct.unpack("<L", data[140:144])[0])


@pytest.fixture(scope="module")
def bomb(own: tuple[Server, httpx.Client]) -> pydicom.Dataset:
    """512 frames of 512x512 16-bit: 256 MiB inflated from about 261 KB."""
    dataset, data = deflated_instance(512, 512, 512)
    assert len(data) < 300_000
    _store(own[1], data)
    return dataset


def test_deflated_frames_are_served_in_bounded_memory(
    own: tuple[Server, httpx.Client], bomb: pydicom.Dataset
) -> None:
    server, client = own
    with Peak(server) as peak:
        response = client.get(f"{_path(bomb)}/frames/1,512")
    assert response.status_code == 200, response.text
    assert _parts(response.headers["content-type"], response.content) == [bytes(512 * 1024)] * 2
    assert peak.growth <= BOMB_BOUND, f"RSS grew by {peak.growth / MIB:.0f} MiB"


@pytest.mark.parametrize(
    ("url", "accept"),
    [("/rendered", "image/png"), ("/thumbnail", "image/jpeg"), ("/frames/300/rendered", None)],
)
def test_deflated_images_render_in_bounded_memory(
    own: tuple[Server, httpx.Client], bomb: pydicom.Dataset, url: str, accept: str | None
) -> None:
    server, client = own
    headers = {"Accept": accept} if accept else {}
    with Peak(server) as peak:
        response = client.get(f"{_path(bomb)}{url}", headers=headers)
    assert response.status_code == 200, response.text
    assert Image.open(io.BytesIO(response.content)).size[0] in (128, 512)
    assert peak.growth <= BOMB_BOUND, f"RSS grew by {peak.growth / MIB:.0f} MiB"


def test_three_concurrent_renders_in_bounded_memory(
    own: tuple[Server, httpx.Client], bomb: pydicom.Dataset
) -> None:
    server, client = own
    statuses: list[int] = []

    def render() -> None:
        statuses.append(client.get(f"{_path(bomb)}/rendered").status_code)

    with Peak(server) as peak:
        threads = [threading.Thread(target=render) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert statuses == [200] * 3
    assert peak.growth <= BOMB_BOUND, f"RSS grew by {peak.growth / MIB:.0f} MiB"


def test_deflated_instance_transcodes_one_frame_at_a_time(
    own: tuple[Server, httpx.Client], bomb: pydicom.Dataset
) -> None:
    """The default retrieval (Explicit VR Little Endian), streamed: 256 MiB of pixels."""
    server, client = own
    digest, size, head = hashlib.sha256(), 0, b""
    with Peak(server) as peak, client.stream("GET", _path(bomb)) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            head += chunk[: max(0, 4096 - len(head))]
            digest.update(chunk)
            size += len(chunk)
    assert peak.growth <= BOMB_BOUND, f"RSS grew by {peak.growth / MIB:.0f} MiB"
    assert size > 256 * MIB and b"1.2.840.10008.1.2.1\0" in head


def _restarted_with_limit(server: Server, limit: int) -> None:
    server.stop()
    server.env["DICOMITE_DICOM_MAX_INFLATED_BYTES"] = str(limit)
    server.start()


LOWER_LIMIT = 8 * MIB  # DICOMITE_DICOM_MAX_INFLATED_BYTES
LARGE = 2 * MIB


def test_a_lower_limit_refuses_with_406(tmp_path: Path) -> None:
    """Stored under the default limit, then served under 8 MiB: what would inflate or decode
    past it is a 406 saying so; the instance as stored is still there."""
    server = make_server(tmp_path)
    server.start()
    try:
        with _client(server) as client:
            bomb, data = deflated_instance(64, 512, 512)  # 32 MiB inflated
            _store(client, data)
            # 2 MiB of 16-bit pixels: rendering holds about 7 bytes a pixel byte, past 8 MiB
            large = make_dataset(frames=1, Rows=1024, Columns=1024, PixelData=bytes(LARGE))
            _store(client, to_bytes(large))
            _restarted_with_limit(server, LOWER_LIMIT)
            _check_refusals(client, bomb, large)
    finally:
        server.stop()


def _check_refusals(client: httpx.Client, bomb: pydicom.Dataset, large: pydicom.Dataset) -> None:
    for url in ("/rendered", "/thumbnail", "/frames/1", ""):
        response = client.get(f"{_path(bomb)}{url}")
        assert response.status_code == 406, (url, response.text)
        assert f"inflates to more than {LOWER_LIMIT} bytes" in response.text, url
    assert client.get(_path(bomb), headers=AS_STORED).status_code == 200
    for url in ("/rendered", "/thumbnail"):
        response = client.get(f"{_path(large)}{url}")
        assert response.status_code == 406, (url, response.text)
        assert "too large to render or transcode" in response.text, url
    frame = client.get(f"{_path(large)}/frames/1")
    assert frame.status_code == 200
    assert _parts(frame.headers["content-type"], frame.content) == [bytes(LARGE)]


def test_frames_in_the_stored_syntax_are_sent_as_stored(own: tuple[Server, httpx.Client]) -> None:
    """Asking for the stored (compressed) syntax by name gets the stored fragments, as ``*``
    does; the default gets them decoded."""
    _, client = own
    path = Path(get_testdata_files("SC_rgb_rle_2frame.dcm")[0])
    dataset = pydicom.dcmread(path)
    _store(client, path.read_bytes())
    url = f"{_path(dataset)}/frames/2"
    rle = 'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.5'
    response = client.get(url, headers={"Accept": rle})
    assert response.status_code == 200, response.text
    stored = list(generate_frames(dataset.PixelData, number_of_frames=2))
    assert _parts(response.headers["content-type"], response.content) == [stored[1]]
    decoded = client.get(url)
    assert _parts(decoded.headers["content-type"], decoded.content) == [
        dataset.pixel_array[1].tobytes()
    ]


def test_a_codestream_larger_than_the_instance_is_not_decoded(
    own: tuple[Server, httpx.Client],
) -> None:
    """A 64x64 instance whose JPEG declares 12000x12000 pixels: a 406, not 144 MB decoded."""
    server, client = own
    out = io.BytesIO()
    Image.new("L", (12000, 12000)).save(out, "JPEG", quality=50)
    dataset = make_dataset(frames=1, Rows=64, Columns=64, BitsAllocated=8, BitsStored=8, HighBit=7)
    dataset.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    dataset.PixelData = encapsulate([out.getvalue()])
    dataset["PixelData"].VR = "OB"
    _store(client, to_bytes(dataset))
    with Peak(server) as peak:
        for url in ("/rendered", "/thumbnail", "/frames/1", ""):
            response = client.get(f"{_path(dataset)}{url}")
            assert response.status_code == 406, (url, response.text)
            assert "declares 12000 x 12000 pixels" in response.text, url
    assert peak.growth <= BOMB_BOUND, f"RSS grew by {peak.growth / MIB:.0f} MiB"
    assert client.get(_path(dataset), headers=AS_STORED).status_code == 200
