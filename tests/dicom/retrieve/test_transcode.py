"""Transcoding into JPEG 2000 Lossless from the wire (the data management issue, part 6): an
instance stored otherwise comes back as 1.2.840.10008.1.2.4.90, instances and frames (as
``image/jp2``), with every sample pydicom decodes from it; what OpenJPEG cannot encode is a 406
saying why, and other targets stay 406."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate_extended, generate_frames
from pydicom.pixels import pixel_array
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

from dicomite.dicom.blobs.folder import FileSystemBlobStore
from dicomite.dicom.errors import NotAcceptable
from dicomite.dicom.index.schema import StoredInstance
from dicomite.dicom.retrieve import transcode
from tests.dicom.retrieve.test_wado import instance_path, readable_test_files
from tests.fixtures.dicom import decoded_frame, make_dataset, multipart, stow_headers, to_bytes

J2K = str(JPEG2000Lossless)
INSTANCES_J2K = f'multipart/related; type="application/dicom"; transfer-syntax={J2K}'
FRAMES_J2K = f'multipart/related; type="image/jp2"; transfer-syntax={J2K}'
RNG = np.random.default_rng(6)
Made = Callable[[], pydicom.Dataset]
SIZES_REFUSED = ("more than the 24 OpenJPEG encodes", "OpenJPEG encodes frames of at least 32 x 32")


def image(
    frames: int = 1, bits: int = 16, stored: int = 16, signed: bool = False, **more: Any
) -> pydicom.Dataset:
    """A native instance of random samples within ``stored`` bits, 40 x 33 pixels (odd widths
    and a size OpenJPEG encodes)."""
    rows, columns, samples = 40, 33, more.pop("samples", 1)
    dataset = make_dataset(frames=frames, Rows=rows, Columns=columns, **more)
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = bits, stored, stored - 1
    dataset.PixelRepresentation = int(signed)
    low, high = (-(2 ** (stored - 1)), 2 ** (stored - 1)) if signed else (0, 2**stored)
    kind = np.dtype(f"{'i' if signed else 'u'}{bits // 8}")
    shape = (frames, rows, columns) + ((samples,) if samples > 1 else ())
    dataset.PixelData = RNG.integers(low, high, shape, dtype=kind).tobytes()
    if samples > 1:
        dataset.SamplesPerPixel, dataset.PlanarConfiguration = samples, 0
        dataset.PhotometricInterpretation = "RGB"
    return dataset


def store(writer: httpx.Client, dataset: pydicom.Dataset) -> pydicom.Dataset:
    response = writer.post("/studies", content=multipart(to_bytes(dataset)), headers=stow_headers())
    assert response.status_code == 200, response.text
    return dataset


def parts(response: httpx.Response) -> list[tuple[str, bytes]]:
    """Each part's Content-Type and payload."""
    head = b"Content-Type: " + response.headers["content-type"].encode() + b"\r\n\r\n"
    message = BytesParser().parsebytes(head + response.content)
    return [
        (str(part["Content-Type"]), part.get_payload(decode=True))
        for part in message.get_payload()  # type: ignore[union-attr]
    ]


def samples(source: pydicom.Dataset | Path | io.BytesIO) -> np.ndarray:
    """Every sample as stored (``raw``: no colour conversion)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pixel_array(source, raw=True)


def as_jpeg2000(writer: httpx.Client, dataset: pydicom.Dataset) -> pydicom.Dataset:
    response = writer.get(instance_path(dataset), headers={"Accept": INSTANCES_J2K})
    assert response.status_code == 200, response.text
    assert f"transfer-syntax={J2K}" in response.headers["content-type"]
    [(media, payload)] = parts(response)
    assert media == f"application/dicom; transfer-syntax={J2K}"
    again = pydicom.dcmread(io.BytesIO(payload))
    assert again.file_meta.TransferSyntaxUID == J2K
    assert again.SOPInstanceUID == dataset.SOPInstanceUID
    return again


@pytest.mark.parametrize(
    "made",
    [
        pytest.param(lambda: image(bits=8, stored=8), id="monochrome2-8-unsigned"),
        pytest.param(lambda: image(bits=8, stored=8, signed=True), id="monochrome2-8-signed"),
        pytest.param(lambda: image(), id="monochrome2-16-unsigned"),
        pytest.param(lambda: image(stored=12, signed=True), id="monochrome2-12-of-16-signed"),
        pytest.param(lambda: image(frames=3), id="multi-frame"),
        pytest.param(lambda: image(frames=2, bits=8, stored=8, samples=3), id="rgb"),
    ],
)
def test_a_native_instance_comes_back_pixel_identical(writer: httpx.Client, made: Made) -> None:
    dataset = store(writer, made())
    again = as_jpeg2000(writer, dataset)
    assert again.PhotometricInterpretation == dataset.PhotometricInterpretation
    assert np.array_equal(again.pixel_array, dataset.pixel_array)
    fragments = list(generate_frames(again.PixelData, number_of_frames=again.NumberOfFrames))
    assert len(fragments) == dataset.NumberOfFrames  # one fragment per frame
    assert all(fragment.startswith(b"\xff\x4f\xff\x51") for fragment in fragments)  # SOC, SIZ


def test_a_single_part_instance(writer: httpx.Client) -> None:
    dataset = store(writer, image())
    accept = {"Accept": f"application/dicom; transfer-syntax={J2K}"}
    response = writer.get(instance_path(dataset), headers=accept)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == f"application/dicom; transfer-syntax={J2K}"
    again = pydicom.dcmread(io.BytesIO(response.content))
    assert np.array_equal(again.pixel_array, dataset.pixel_array)


@pytest.mark.parametrize("accept", [FRAMES_J2K, 'multipart/related; type="image/jp2"'])
def test_frames_as_image_jp2(writer: httpx.Client, accept: str) -> None:
    """The conformance statement v2: image/jp2 frames, JPEG 2000 Lossless by default."""
    dataset = store(writer, image(frames=3))
    response = writer.get(f"{instance_path(dataset)}/frames/3,1", headers={"Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith('multipart/related; type="image/jp2"')
    got = parts(response)
    assert [media for media, _ in got] == [f"image/jp2; transfer-syntax={J2K}"] * 2
    for (_, codestream), index in zip(got, (2, 0), strict=True):
        assert np.array_equal(decoded_frame(dataset, codestream, J2K), dataset.pixel_array[index])


def test_a_study_mixes_encoded_and_stored_instances(writer: httpx.Client) -> None:
    """Instances already stored as JPEG 2000 Lossless are sent as stored, the others encoded."""
    native = store(writer, image(frames=2))
    compressed = image(study=native.StudyInstanceUID)
    compressed.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    store(writer, compressed)
    response = writer.get(f"/studies/{native.StudyInstanceUID}", headers={"Accept": INSTANCES_J2K})
    assert response.status_code == 200, response.text
    got = {
        pydicom.dcmread(io.BytesIO(payload)).SOPInstanceUID: payload
        for _, payload in parts(response)
    }
    assert got[compressed.SOPInstanceUID] == to_bytes(compressed)  # byte-identical: as stored
    again = pydicom.dcmread(io.BytesIO(got[native.SOPInstanceUID]))
    assert again.file_meta.TransferSyntaxUID == J2K
    assert np.array_equal(again.pixel_array, native.pixel_array)


@pytest.mark.parametrize("accept", [INSTANCES_J2K, "multipart/related; type=application/dicom"])
def test_the_extended_offset_table_is_not_sent_with_other_fragments(
    writer_v2: httpx.Client, accept: str
) -> None:
    """It locates the stored fragments (PS3.3 §C.7.6.3.1.8); after transcoding it would point
    a reader into the wrong bytes."""
    dataset = pydicom.dcmread(get_testdata_file("SC_rgb_rle_2frame.dcm"))
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    fragments = list(generate_frames(dataset.PixelData, number_of_frames=2))
    pixel_data, offsets, lengths = encapsulate_extended(fragments)
    dataset.PixelData, dataset.ExtendedOffsetTable = pixel_data, offsets
    dataset.ExtendedOffsetTableLengths = lengths
    expected = dataset.pixel_array
    store(writer_v2, dataset)
    response = writer_v2.get(instance_path(dataset), headers={"Accept": accept})
    assert response.status_code == 200, response.text
    again = pydicom.dcmread(io.BytesIO(parts(response)[0][1]))
    assert "ExtendedOffsetTable" not in again and "ExtendedOffsetTableLengths" not in again
    assert np.array_equal(again.pixel_array, expected)


JPEG_BASELINE = INSTANCES_J2K.replace(J2K, "1.2.840.10008.1.2.4.50")
LOSSY_FRAMES = FRAMES_J2K.replace(J2K, "1.2.840.10008.1.2.4.91")
OCTET_FRAMES = FRAMES_J2K.replace("image/jp2", "application/octet-stream")


@pytest.mark.parametrize(
    ("made", "target", "accept", "reason"),
    [
        (image, "", JPEG_BASELINE, "1.2.840.10008.1.2.4.50 is not supported"),
        (image, "/frames/1", LOSSY_FRAMES, "JPEG 2000 Lossless only"),
        (image, "/frames/1", OCTET_FRAMES, "JPEG 2000 frames are image/jp2"),
        (lambda: make_dataset(frames=1), "", INSTANCES_J2K, "at least 32 x 32"),
        (lambda: image(bits=32, stored=32), "", INSTANCES_J2K, "more than the 24"),
        (lambda: image(bits=32, stored=32), "/frames/1", FRAMES_J2K, "more than the 24"),
    ],
)
def test_what_cannot_be_sent_is_406_saying_why(
    writer: httpx.Client, made: Made, target: str, accept: str, reason: str
) -> None:
    dataset = store(writer, made())
    refused = writer.get(instance_path(dataset) + target, headers={"Accept": accept})
    assert refused.status_code == 406, refused.text
    assert refused.headers["content-type"].startswith("text/plain")
    assert reason in refused.text, refused.text


def test_the_test_files_keep_every_sample(writer_v2: httpx.Client) -> None:
    """Every test file pydicom decodes, whatever it is stored as (native, big endian,
    Deflated, RLE, JPEG, JPEG-LS, JPEG 2000; monochrome, palette, RGB, YBR): its JPEG 2000
    Lossless retrieval holds the samples decoded from the file itself, without colour
    conversion (YBR stays YBR), or it is a 406 naming what OpenJPEG cannot encode: more than
    24 bits a sample (RT doses), or frames under 32 x 32 pixels."""
    encoded, refused = 0, 0
    for path, dataset in readable_test_files():
        try:
            expected = samples(path)
        except Exception:
            continue  # no pixel data, or none pydicom can decode
        stored = writer_v2.put(
            "/studies", content=multipart(path.read_bytes()), headers=stow_headers()
        )
        if stored.status_code == 409:
            continue  # refused by validation (test_wado)
        response = writer_v2.get(instance_path(dataset), headers={"Accept": INSTANCES_J2K})
        if response.status_code == 406:
            assert any(reason in response.text for reason in SIZES_REFUSED), path.name
            refused += 1
            continue
        assert response.status_code == 200, (path.name, response.text)
        payload = parts(response)[0][1]
        again = pydicom.dcmread(io.BytesIO(payload))
        assert again.file_meta.TransferSyntaxUID == J2K, path.name
        assert np.array_equal(samples(io.BytesIO(payload)), expected), path.name
        encoded += 1
    assert encoded > 35 and refused < 50


def _stored(tmp_path: Path, dataset: pydicom.Dataset) -> tuple[FileSystemBlobStore, StoredInstance]:
    blobs = FileSystemBlobStore(tmp_path)
    data = to_bytes(dataset)
    (tmp_path / "instances").mkdir()
    (tmp_path / "instances" / "a.dcm").write_bytes(data)
    syntax = str(ExplicitVRLittleEndian)
    return blobs, StoredInstance(
        "1.2", "1.3", "1.4", "1.5", syntax, 1, "instances/a.dcm", len(data), "v"
    )


def test_encoding_counts_what_openjpeg_holds(tmp_path: Path) -> None:
    """A 1024 x 1024 16-bit frame: decoding holds about 6 MiB, encoding about 16 bytes a
    sample more (22 MiB in all); within 16 MiB it is transcoded to Explicit VR Little Endian
    but not encoded."""
    pixels = RNG.integers(0, 4096, (1024, 1024), dtype=np.uint16)
    dataset = make_dataset(frames=1, Rows=1024, Columns=1024, PixelData=pixels.tobytes())
    blobs, instance = _stored(tmp_path, dataset)
    limit = 16 * 1024 * 1024
    assert b"".join(transcode.transcoded(blobs, instance, transcode.EXPLICIT, limit))
    with pytest.raises(NotAcceptable, match="too large"):
        next(transcode.transcoded(blobs, instance, transcode.JPEG2000_LOSSLESS, limit))
