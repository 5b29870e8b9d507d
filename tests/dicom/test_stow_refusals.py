"""STOW from the wire refuses what could be stored but never read back: several values in an
instance's UIDs (43264) and elements declaring more bytes than the file holds (272), by the
fast header reader (Explicit VR Little Endian) and by pydicom (Implicit VR Little Endian), each
with an ErrorComment that names the attribute."""

from __future__ import annotations

import struct
import uuid
from typing import Any

import httpx
import pytest
from pydicom import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from tests.fixtures.dicom import make_dataset, multipart, stow_headers, to_bytes

FAILED, REASON, FAILED_ATTRIBUTES, ERROR_COMMENT = "00081198", "00081197", "00741048", "00000902"
READERS = [
    pytest.param(ExplicitVRLittleEndian, id="fast-reader"),
    pytest.param(ImplicitVRLittleEndian, id="pydicom"),
]
MARKER = b"\xab\xcd" * 4  # the value of the element whose length is made a lie
LIE = 0xFFFFFFF0


def _encoded(dataset: Dataset, syntax: str) -> bytes:
    dataset.file_meta.TransferSyntaxUID = syntax
    return to_bytes(dataset)


def failures(response: httpx.Response) -> list[tuple[int, list[str]]]:
    """(FailureReason, ErrorComments) of each instance of the FailedSOPSequence."""
    return [
        (item[REASON]["Value"][0], _error_comments(item))
        for item in response.json().get(FAILED, {}).get("Value", [])
    ]


def _error_comments(item: dict[str, Any]) -> list[str]:
    attributes = item.get(FAILED_ATTRIBUTES, {}).get("Value", [])
    return [attribute[ERROR_COMMENT]["Value"][0] for attribute in attributes]


def _stored_for(client: httpx.Client, patient: str) -> int:
    response = client.get("/instances", params={"PatientID": patient})
    return 0 if response.status_code == 204 else len(response.json())


def _post(client: httpx.Client, data: bytes) -> httpx.Response:
    return client.post("/studies", content=multipart(data), headers=stow_headers())


# ----------------------------------------------------------------- item 9: one UID, one value


@pytest.mark.parametrize("syntax", READERS)
@pytest.mark.parametrize(
    ("keyword", "tag"),
    [
        ("StudyInstanceUID", "(0020,000d)"),
        ("SeriesInstanceUID", "(0020,000e)"),
        ("SOPInstanceUID", "(0008,0018)"),
    ],
)
@pytest.mark.parametrize("version", [1, 2])
def test_a_uid_of_two_values_is_43264(
    writer: httpx.Client,
    writer_v2: httpx.Client,
    syntax: str,
    keyword: str,
    tag: str,
    version: int,
) -> None:
    client = writer if version == 1 else writer_v2
    patient = f"multi-{uuid.uuid4().hex}"
    values = [generate_uid(), generate_uid()]
    dataset = make_dataset(PatientID=patient, **{keyword: values})
    response = _post(client, _encoded(dataset, syntax))
    assert response.status_code == 409, response.text
    [(reason, comments)] = failures(response)
    assert reason == 43264
    assert any(tag in c and keyword in c and "2 values" in c for c in comments), comments
    assert "\\".join(values) in comments[0]
    assert _stored_for(client, patient) == 0


# ------------------------------------------------ item 10: a length past the end of the file


def _with_private(dataset: Dataset, group: int) -> None:
    dataset.add_new((group, 0x0010), "LO", "DICOMITE TEST")  # private creator
    dataset.add_new((group, 0x1010), "OB", MARKER)


def _lying(data: bytes, syntax: str) -> bytes:
    """``data`` with the length of the element holding MARKER made LIE (PS3.5 §7.1.1: the
    32-bit length field just before the value, in both encodings)."""
    at = data.index(MARKER)
    assert at == data.rindex(MARKER)
    return data[: at - 4] + struct.pack("<L", LIE) + data[at:]


def _in_the_middle(syntax: str, patient: str) -> bytes:
    """After the required attributes, before the image attributes and the pixel data."""
    dataset = make_dataset(PatientID=patient)
    _with_private(dataset, 0x0021)
    return _lying(_encoded(dataset, syntax), syntax)


def _at_the_end(syntax: str, patient: str) -> bytes:
    """The file's last element: nothing follows its first bytes."""
    dataset = make_dataset(PatientID=patient)
    del dataset.PixelData
    _with_private(dataset, 0x0029)
    data = _lying(_encoded(dataset, syntax), syntax)
    assert data.endswith(MARKER)
    return data


@pytest.mark.parametrize("syntax", READERS)
@pytest.mark.parametrize(
    ("build", "tag"),
    [
        pytest.param(_in_the_middle, "(0021,1010)", id="middle"),
        pytest.param(_at_the_end, "(0029,1010)", id="end"),
    ],
)
def test_an_element_longer_than_the_file_is_272(
    writer: httpx.Client, syntax: str, build: Any, tag: str
) -> None:
    patient = f"overrun-{uuid.uuid4().hex}"
    response = _post(writer, build(syntax, patient))
    assert response.status_code == 409, response.text
    [(reason, comments)] = failures(response)
    assert reason == 272
    assert len(comments) == 1 and tag in comments[0] and str(LIE) in comments[0], comments
    assert _stored_for(writer, patient) == 0
