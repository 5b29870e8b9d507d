"""WADO-RS from the wire: byte-identical round trips, transcoding, metadata, frames, rendered."""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Iterator
from email.parser import BytesParser
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_files
from pydicom.encaps import generate_frames
from pydicom.uid import ExplicitVRLittleEndian

from dicomite.dicom.blobs.folder import FileSystemBlobStore
from dicomite.dicom.index.schema import StoredInstance
from dicomite.dicom.retrieve import wado
from tests.fixtures.dicom import make_dataset, multipart, stow_headers, to_bytes
from tests.fixtures.loops import run_async

NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
ANY = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}


def parts(response: httpx.Response) -> list[bytes]:
    message = BytesParser().parsebytes(
        b"Content-Type: "
        + response.headers["content-type"].encode()
        + b"\r\n\r\n"
        + response.content
    )
    return [part.get_payload(decode=True) for part in message.get_payload()]  # type: ignore[union-attr,misc]


def readable_test_files() -> list[tuple[Path, pydicom.Dataset]]:
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in sorted(get_testdata_files()):
            try:
                found.append((Path(name), pydicom.dcmread(name)))
            except Exception:
                continue
    return found


def instance_path(dataset: pydicom.Dataset) -> str:
    return (
        f"/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}"
        f"/instances/{dataset.SOPInstanceUID}"
    )


def test_pydicom_test_files_round_trip(writer: httpx.Client, writer_v2: httpx.Client) -> None:
    """Each readable file: stored (PUT, as files share UIDs) and retrieved byte-identically with
    transfer-syntax=*, or refused with 43264 when it lacks the required attributes, or with 272
    when an element declares more bytes than the file holds (it was cut short)."""
    stored = refused = transcoded = 0
    for path, dataset in readable_test_files():
        data = path.read_bytes()
        response = writer_v2.put("/studies", content=multipart(data), headers=stow_headers())
        if response.status_code == 409:
            failed = response.json()["00081198"]["Value"][0]
            [reason] = failed["00081197"]["Value"]
            if reason == 272:
                comment = failed["00741048"]["Value"][0]["00000902"]["Value"][0]
                assert "bytes of the file follow it" in comment, path.name
            else:
                assert reason == 43264, path.name
            refused += 1
            continue
        assert response.status_code in (200, 202), (path.name, response.text)
        got = writer.get(instance_path(dataset), headers=ANY)
        assert got.status_code == 200, path.name
        assert parts(got) == [data], path.name
        stored += 1
        syntax = str(dataset.file_meta.get("TransferSyntaxUID", ""))
        if syntax in NATIVE and "PixelData" in dataset:
            explicit = writer.get(instance_path(dataset))
            assert explicit.status_code == 200, path.name
            again = pydicom.dcmread(io.BytesIO(parts(explicit)[0]))
            assert again.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
            assert again.SOPInstanceUID == dataset.SOPInstanceUID
            transcoded += 1
    assert stored > 100 and refused < 25 and transcoded > 20


@pytest.fixture(scope="module")
def stored(writer: httpx.Client) -> pydicom.Dataset:
    dataset = make_dataset(frames=3)
    assert (
        writer.post(
            "/studies", content=multipart(to_bytes(dataset)), headers=stow_headers()
        ).status_code
        == 200
    )
    return dataset


def test_study_series_instance_retrieve(writer: httpx.Client, stored: pydicom.Dataset) -> None:
    series = make_dataset(study=stored.StudyInstanceUID, series=stored.SeriesInstanceUID)
    writer.post("/studies", content=multipart(to_bytes(series)), headers=stow_headers())
    study = writer.get(f"/studies/{stored.StudyInstanceUID}", headers=ANY)
    assert study.headers["content-type"].startswith('multipart/related; type="application/dicom"')
    assert len(parts(study)) == 2
    assert (
        len(
            parts(
                writer.get(f"/studies/{stored.StudyInstanceUID}/series/{stored.SeriesInstanceUID}")
            )
        )
        == 2
    )
    single = writer.get(
        instance_path(stored), headers={"Accept": "application/dicom; transfer-syntax=*"}
    )
    assert single.headers["content-type"].startswith("application/dicom")
    assert single.content == to_bytes(stored)


def test_metadata_etag_and_304(writer: httpx.Client, stored: pydicom.Dataset) -> None:
    url = f"{instance_path(stored)}/metadata"
    first = writer.get(url)
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("application/dicom+json")
    body = first.json()
    assert body[0]["00080018"]["Value"] == [stored.SOPInstanceUID]
    assert "7FE00010" not in body[0]  # no bulk data
    unchanged = writer.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert unchanged.status_code == 304 and not unchanged.content
    assert writer.get(f"/studies/{stored.StudyInstanceUID}/metadata").status_code == 200


def test_frames(writer: httpx.Client, stored: pydicom.Dataset) -> None:
    response = writer.get(f"{instance_path(stored)}/frames/1,3")
    assert response.status_code == 200
    frames = parts(response)
    assert frames[0] == stored.PixelData[:32] and frames[1] == stored.PixelData[64:96]
    assert writer.get(f"{instance_path(stored)}/frames/4").status_code == 404
    assert writer.get(f"{instance_path(stored)}/frames/0").status_code == 400
    assert writer.get(f"{instance_path(stored)}/frames/a,b").status_code == 400


def test_rendered(writer: httpx.Client, stored: pydicom.Dataset) -> None:
    jpeg = writer.get(f"{instance_path(stored)}/rendered")
    assert jpeg.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(jpeg.content)).size == (4, 4)
    png = writer.get(f"{instance_path(stored)}/frames/2/rendered", headers={"Accept": "image/png"})
    assert png.headers["content-type"] == "image/png"
    assert writer.get(f"{instance_path(stored)}/rendered?quality=0").status_code == 400
    assert (
        writer.get(f"{instance_path(stored)}/rendered", headers={"Accept": "image/gif"}).status_code
        == 406
    )


def test_not_found_not_acceptable_bad_uid(writer: httpx.Client, stored: pydicom.Dataset) -> None:
    assert writer.get("/studies/1.2.3.404").status_code == 404
    assert (
        writer.get(f"/studies/{stored.StudyInstanceUID}/series/1.2.3.404/metadata").status_code
        == 404
    )
    jpeg = {"Accept": ANY["Accept"].replace("*", "1.2.840.10008.1.2.4.50")}
    refused = writer.get(instance_path(stored), headers=jpeg)
    assert refused.status_code == 406 and "transfer-syntax" in refused.text
    assert writer.get(instance_path(stored), headers={"Accept": "text/html"}).status_code == 406
    assert writer.get("/studies/..%2F..%2Fetc").status_code in (400, 404)
    assert writer.get("/studies/1.2.a$b").status_code == 400


def test_frames_of_an_encapsulated_instance(writer: httpx.Client, writer_v2: httpx.Client) -> None:
    path = Path(get_testdata_files("SC_rgb_rle_2frame.dcm")[0])
    dataset = pydicom.dcmread(path)
    response = writer_v2.put(
        "/studies", content=multipart(path.read_bytes()), headers=stow_headers()
    )
    assert response.status_code in (200, 202)
    url = f"{instance_path(dataset)}/frames/2,1"
    as_stored = writer.get(
        url,
        headers={"Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'},
    )
    expected = list(generate_frames(dataset.PixelData, number_of_frames=dataset.NumberOfFrames))
    assert parts(as_stored) == [expected[1], expected[0]]
    decoded = parts(writer.get(url))
    assert decoded == [dataset.pixel_array[1].tobytes(), dataset.pixel_array[0].tobytes()]


def test_rendered_with_a_window(writer: httpx.Client, stored: pydicom.Dataset) -> None:
    """PS3.18 §8.3.5.1.3 ``window=center,width,function``; frame 1 holds the values 0..15."""
    url = f"{instance_path(stored)}/frames/1/rendered"
    png = {"Accept": "image/png"}

    def pixels(window: str) -> list[int]:
        response = writer.get(url, params={"window": window}, headers=png)
        assert response.status_code == 200, response.text
        return [int(v) for v in np.asarray(Image.open(io.BytesIO(response.content))).ravel()]

    assert pixels("7.5,1") == [0] * 8 + [255] * 8  # width 1: a threshold at centre - 0.5
    ramp = pixels("7.5,16,linear-exact")
    assert ramp == sorted(ramp) and ramp[0] < 20 and ramp[-1] > 235
    assert pixels("7.5,16,SIGMOID")[8] > 128 > pixels("7.5,16,sigmoid")[7]
    for bad in ("7.5", "a,b", "1,0", "1,-5", "1,2,cubic", "1,2,linear,4", "nan,2", "1,inf"):
        refused = writer.get(url, params={"window": bad}, headers=png)
        assert refused.status_code == 400, bad
        assert "window" in refused.text


def test_transcoding_keeps_the_pixels(writer: httpx.Client, writer_v2: httpx.Client) -> None:
    """The default retrieval (Explicit VR Little Endian, made one frame at a time) of every
    test file pydicom can decode holds the pixels pydicom decodes from the file itself."""
    checked = 0
    for path, dataset in readable_test_files():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                expected = dataset.pixel_array
            except Exception:
                continue  # no pixel data, or none pydicom can decode
        stored = writer_v2.put(
            "/studies", content=multipart(path.read_bytes()), headers=stow_headers()
        )
        if stored.status_code == 409:
            continue  # refused by validation (test_pydicom_test_files_round_trip)
        response = writer.get(instance_path(dataset))
        assert response.status_code == 200, (path.name, response.text)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            again = pydicom.dcmread(io.BytesIO(parts(response)[0]))
            assert again.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian, path.name
            assert np.array_equal(again.pixel_array, expected), path.name
        checked += 1
    assert checked > 60


class _RemoteStore(FileSystemBlobStore):
    """A store whose blobs have no local file (as Azure's)."""

    def local_path(self, key: str) -> None:
        return None


def _instance(key: str) -> StoredInstance:
    syntax = str(ExplicitVRLittleEndian)
    return StoredInstance("1.2", "1.3", "1.4", "1.5", syntax, 1, key, 4, "v")


def test_a_stored_file_is_sent_by_path_only_whole_as_stored_and_local(tmp_path: Path) -> None:
    local, remote = FileSystemBlobStore(tmp_path / "local"), _RemoteStore(tmp_path / "remote")
    instances = [_instance("instances/a.dcm"), _instance("instances/b.dcm")]
    single, part = wado.Wanted(False, "*"), wado.Wanted(True, "*")

    assert wado.stored_file(local, instances[:1], [True], single) == local.local_path(
        "instances/a.dcm"
    )
    assert wado.stored_file(local, instances[:1], [True], part) is None  # a multipart part
    assert wado.stored_file(local, instances[:1], [False], single) is None  # transcoded
    assert wado.stored_file(local, instances, [True, True], part) is None  # several
    assert wado.stored_file(remote, instances[:1], [True], single) is None  # no local file


def test_a_body_cut_short_closes_its_source_after_the_read_ahead() -> None:
    """Chunks are made in the pool one hop ahead of the one being sent (a few per hop); a
    response cut short still closes the source (its blob), once the read ahead has ended."""
    made: list[int] = []
    closed = threading.Event()

    def source() -> Iterator[bytes]:
        try:
            for number in range(100):
                made.append(number)
                yield bytes([number])
        finally:
            closed.set()

    kept = source()  # held here, so that only the body's own close can end it

    async def first_two() -> list[bytes]:
        body = wado.stream(kept)
        taken = [await anext(body), await anext(body)]
        await body.aclose()  # what the server does when the client goes away
        return taken

    assert run_async(first_two) == [b"\x00", b"\x01"]
    assert closed.wait(5)
    assert len(made) < 100  # read ahead is bounded: the source was not drained
    kept.close()


def test_a_body_is_sent_whole_and_in_order() -> None:
    chunks = [bytes([n]) * 1000 for n in range(50)]

    async def everything() -> list[bytes]:
        return [chunk async for chunk in wado.stream(iter(chunks))]

    assert run_async(everything) == chunks
