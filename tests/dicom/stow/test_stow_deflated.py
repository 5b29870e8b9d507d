"""STOW of Deflated Explicit VR Little Endian instances (PS3.5 §A.5) from the wire: a 256 MiB
dataset in a few hundred KB is read from an inflated copy on disk, with the server's memory
measured; over ``DICOMITE_DICOM_MAX_INFLATED_BYTES`` or corrupt, it is refused with 272."""

from __future__ import annotations

import os
import struct
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian

from dicomite.bootstrap import open_context
from dicomite.settings import Settings
from tests.dicom.stow.test_stow_refusals import failures
from tests.fixtures.dicom import dicom_client, make_dataset, to_bytes, token_for
from tests.fixtures.directory import Admin
from tests.fixtures.server import Server, make_server

MIB = 1024**2
SINGLE_PART = {"Content-Type": "application/dicom", "Accept": "application/dicom+json"}
AS_STORED = {"Accept": "application/dicom; transfer-syntax=*"}
LOWERED_LIMIT = 64 * MIB


def _meta_end(data: bytes) -> int:
    """Where the dataset starts: after the preamble, prefix and File Meta group (its length is
    the value of (0002,0000), PS3.10 §7.1)."""
    (group_length,) = struct.unpack_from("<L", data, 132 + 8)
    return 132 + 12 + group_length


def deflated_instance(patient: str, frames: int = 512) -> tuple[bytes, int]:
    """A deflated instance of ``frames`` 512x512 16-bit frames of zeros (512: 256 MiB) and its
    inflated size, compressed chunk by chunk so that the test never holds the dataset."""
    dataset = make_dataset(PatientID=patient, frames=frames)
    dataset.Rows = dataset.Columns = 512
    del dataset.PixelData
    explicit = to_bytes(dataset)
    dataset.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    deflated_meta = to_bytes(dataset)[: _meta_end(to_bytes(dataset))]
    pixels = 512 * 512 * 2 * frames
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = explicit[_meta_end(explicit) :] + struct.pack("<HH2sHL", 0x7FE0, 0x10, b"OW", 0, pixels)
    out = [deflated_meta, compressor.compress(head)]
    zeros = bytes(MIB)
    for _ in range(pixels // MIB):
        out.append(compressor.compress(zeros))
    out.append(compressor.flush())
    return b"".join(out), len(head) + pixels


def _group_memory(server: Server) -> dict[int, tuple[int, int]]:
    """(VmRSS, VmHWM) in bytes of each process of the server's group (supervisor, workers)."""
    assert server.process is not None
    found: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[2]) != server.process.pid:  # pgrp
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        kilobytes = [int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM") if name in fields]
        if len(kilobytes) == 2:
            found[int(entry)] = (kilobytes[0] * 1024, kilobytes[1] * 1024)
    return found


def _peak_growth(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]) -> int:
    """How far above its resident size before the request each process peaked, summed."""
    return sum(peak - before.get(pid, (0, 0))[0] for pid, (_, peak) in after.items())


def _blob_files(server: Server) -> list[Path]:
    return sorted(path for path in (server.data_dir / "blobs").rglob("*") if path.is_file())


@pytest.fixture(scope="module", params=[None, LOWERED_LIMIT], ids=["default-limit", "64-MiB"])
def own_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, httpx.Client]]:
    """A server of the module's own (its memory is measured), with the default inflation limit
    or a lowered one, and a writer client for it."""
    limit = request.param
    environment = {} if limit is None else {"DICOMITE_DICOM_MAX_INFLATED_BYTES": str(limit)}
    running = make_server(tmp_path_factory.mktemp("deflated"), extra_env=environment)
    running.start()
    context = open_context(Settings(data_dir=running.data_dir, tenant_id=running.tenant_id))
    app = Admin(context).register(roles=("Dicom.ReadWrite",))
    context.store.dispose()
    assert app.secret is not None
    with dicom_client(running, token_for(running, app.app_id, app.secret)) as client:
        client.timeout = httpx.Timeout(300)
        yield running, client
    running.stop()


def test_a_256_mib_deflated_instance_is_stored_in_bounded_memory(
    own_server: tuple[Server, httpx.Client],
) -> None:
    server, client = own_server
    small, _ = deflated_instance(f"warm-{uuid.uuid4().hex}", frames=4)
    assert client.post("/studies", content=small, headers=SINGLE_PART).status_code == 200
    bomb, inflated = deflated_instance(patient := f"bomb-{uuid.uuid4().hex}")
    assert len(bomb) < 400 * 1024 and inflated > 256 * MIB
    files = _blob_files(server)
    before = _group_memory(server)
    response = client.post("/studies", content=bomb, headers=SINGLE_PART)
    growth = _peak_growth(before, _group_memory(server))
    if server.env.get("DICOMITE_DICOM_MAX_INFLATED_BYTES"):
        assert response.status_code == 409, response.text
        [(reason, comments)] = failures(response)
        assert reason == 272
        assert comments == [
            f"The dataset, Deflate-compressed (transfer syntax {DeflatedExplicitVRLittleEndian}),"
            f" inflates to more than this server's limit of {LOWERED_LIMIT} bytes (64 MiB)."
        ]
        assert client.get("/instances", params={"PatientID": patient}).status_code == 204
        assert _blob_files(server) == files  # nothing stored, nothing left behind
    else:
        assert response.status_code == 200, response.text
        found = client.get("/instances", params={"PatientID": patient}).json()
        [instance] = found
        path = "/studies/{}/series/{}/instances/{}".format(
            *(instance[tag]["Value"][0] for tag in ("0020000D", "0020000E", "00080018"))
        )
        assert client.get(path, headers=AS_STORED).content == bomb  # the deflated bytes
    assert growth <= 300 * MIB, f"the server grew by {growth / MIB:.0f} MiB"


def test_a_corrupt_deflate_stream_is_272(writer: httpx.Client) -> None:
    data, _ = deflated_instance(patient := f"corrupt-{uuid.uuid4().hex}", frames=1)
    corrupt = data[: _meta_end(data)] + b"\xff" * 1000
    response = writer.post("/studies", content=corrupt, headers=SINGLE_PART)
    assert response.status_code == 409, response.text
    [(reason, comments)] = failures(response)
    assert reason == 272
    assert len(comments) == 1 and "not a valid Deflate stream" in comments[0], comments
    assert writer.get("/instances", params={"PatientID": patient}).status_code == 204
