"""The transfer syntax frames are labelled with (issue 13, item 2): a frame of a Deflated
Explicit VR Little Endian instance asked for by that syntax's name came back as the native pixel
bytes but labelled ``transfer-syntax=1.2.840.10008.1.2.1.99``, so a client trusting the label
would try to inflate raw pixels. Deflate encodes a data set, not pixels (PS3.18 §8.7.3.5): the
frame is refused (406, as for native instances), and served as native pixels labelled Explicit
VR Little Endian when asked for so or with ``transfer-syntax=*``."""

from __future__ import annotations

import zlib
from email.parser import BytesParser
from typing import Any

import httpx
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, generate_uid

from tests.fixtures.dicom import multipart, stow_headers, to_bytes

DEFLATED_FRAMES = (
    'multipart/related; type="application/octet-stream"; '
    f"transfer-syntax={DeflatedExplicitVRLittleEndian}"
)

AS_STORED_FRAMES = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


def test_a_deflated_instances_frame_is_what_its_label_says(writer: httpx.Client) -> None:
    source = get_testdata_file("image_dfl.dcm")
    assert source is not None
    dataset = pydicom.dcmread(source)
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    stored = writer.post("/studies", content=multipart(to_bytes(dataset)), headers=stow_headers())
    assert stored.status_code == 200, stored.text
    path = (
        f"/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}"
        f"/instances/{dataset.SOPInstanceUID}/frames/1"
    )
    refused = writer.get(path, headers={"Accept": DEFLATED_FRAMES})
    assert refused.status_code == 406 and "pixel data" in refused.text, refused.text
    response = writer.get(path, headers={"Accept": AS_STORED_FRAMES})
    assert response.status_code == 200, response.text
    head = b"Content-Type: " + response.headers["content-type"].encode() + b"\r\n\r\n"
    message = BytesParser().parsebytes(head + response.content)
    parts: Any = message.get_payload()
    [part] = parts
    label: str = part["Content-Type"]
    payload: bytes = part.get_payload(decode=True)
    if DeflatedExplicitVRLittleEndian in label:  # what the label promises
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            payload = inflater.decompress(payload)
        except zlib.error as error:
            raise AssertionError(f"labelled {label} but not a Deflate stream: {error}") from None
    assert ExplicitVRLittleEndian in label
    assert payload[: len(dataset.PixelData)] == dataset.PixelData, label
