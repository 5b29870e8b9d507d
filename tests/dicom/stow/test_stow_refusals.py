"""STOW from the wire refuses what could be stored but never read back: several values in an
instance's UIDs (43264), elements declaring more bytes than the file holds, before or after the
pixel data, and sequences nested too deep to read (272), by the fast header reader (Explicit VR
Little Endian) and by pydicom (Implicit VR Little Endian), each with an ErrorComment that names
the attribute; none is a 500."""

from __future__ import annotations

import struct
import uuid
from typing import Any

import httpx
import pytest
from pydicom import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless, generate_uid

from dicomite.dicom.model.header import MAX_SEQUENCE_DEPTH
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


# ------------------------------- sequences nested deeper than header.MAX_SEQUENCE_DEPTH: 272

UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = (0xFFFE, 0xE000), (0xFFFE, 0xE00D), (0xFFFE, 0xE0DD)
REQUEST_ATTRIBUTES = (0x0040, 0x0275)  # an SQ in the data dictionary, for the implicit VR form


def _sequence_head(syntax: str, length: int) -> bytes:
    if syntax == ImplicitVRLittleEndian:
        return struct.pack("<HHL", *REQUEST_ATTRIBUTES, length)
    return struct.pack("<HH2sHL", *REQUEST_ATTRIBUTES, b"SQ", 0, length)


def _nested(depth: int, syntax: str, defined: bool) -> bytes:
    """(0040,0275) sequences, each item holding the next, ``depth`` deep; of undefined length
    (read by pydicom as it meets them) or of defined length (read by pydicom when used)."""
    if not defined:
        opening = _sequence_head(syntax, UNDEFINED) + struct.pack("<HHL", *ITEM, UNDEFINED)
        closing = struct.pack("<HHL", *ITEM_END, 0) + struct.pack("<HHL", *SEQUENCE_END, 0)
        return opening * depth + closing * depth
    nested = b""
    for _ in range(depth):
        item = struct.pack("<HHL", *ITEM, len(nested)) + nested
        nested = _sequence_head(syntax, len(item)) + item
    return nested


def _before_pixel_data(data: bytes, extra: bytes) -> bytes:
    at = data.index(struct.pack("<HH", 0x7FE0, 0x0010))
    return data[:at] + extra + data[at:]


def _nested_instance(dataset: Dataset, depth: int, syntax: str, defined: bool) -> bytes:
    return _before_pixel_data(_encoded(dataset, syntax), _nested(depth, syntax, defined))


def _stow(client: httpx.Client, version: int, data: bytes) -> httpx.Response:
    """v1 POST, v2 PUT (upsert)."""
    send = client.post if version == 1 else client.put
    return send("/studies", content=multipart(data), headers=stow_headers())


@pytest.mark.parametrize("defined", [False, True], ids=["undefined-length", "defined-length"])
@pytest.mark.parametrize("syntax", READERS)
@pytest.mark.parametrize("depth", [MAX_SEQUENCE_DEPTH + 1, 300, 3000])
@pytest.mark.parametrize("version", [1, 2])
def test_sequences_nested_too_deep_are_272(
    writer: httpx.Client,
    writer_v2: httpx.Client,
    syntax: str,
    depth: int,
    version: int,
    defined: bool,
) -> None:
    """pydicom reads sequences recursively: 300 levels (7 KB) raised RecursionError, a 500."""
    client = writer if version == 1 else writer_v2
    patient = f"nested-{uuid.uuid4().hex}"
    data = _nested_instance(make_dataset(PatientID=patient), depth, syntax, defined)
    response = _stow(client, version, data)
    assert response.status_code == 409, response.text
    [(reason, comments)] = failures(response)
    assert reason == 272
    assert any("(0040,0275)" in c and str(MAX_SEQUENCE_DEPTH) in c for c in comments), comments
    assert _stored_for(client, patient) == 0


@pytest.mark.parametrize("defined", [False, True], ids=["undefined-length", "defined-length"])
@pytest.mark.parametrize("syntax", READERS)
def test_sequences_nested_to_the_bound_are_stored_and_render(
    writer: httpx.Client, syntax: str, defined: bool
) -> None:
    """200 levels were stored, and /rendered then answered 406 'maximum recursion depth
    exceeded'."""
    dataset = make_dataset()
    stored = _post(writer, _nested_instance(dataset, MAX_SEQUENCE_DEPTH, syntax, defined))
    assert stored.status_code == 200, stored.text
    path = (
        f"/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}"
        f"/instances/{dataset.SOPInstanceUID}/rendered"
    )
    rendered = writer.get(path, headers={"Accept": "image/png"})
    assert rendered.status_code == 200, rendered.text


# ------------------------------ elements after the pixel data longer than the file: 272

AFTER_PIXELS = [
    pytest.param((0x7FE1, 0x1010), id="private"),
    pytest.param((0xFFFC, 0xFFFC), id="trailing-padding"),
]


def _trailing(tag: tuple[int, int], length: int, syntax: str) -> bytes:
    """An OB element declaring ``length`` bytes followed by 3 bytes."""
    if syntax == ImplicitVRLittleEndian:
        return struct.pack("<HHL", *tag, length) + b"abc"
    return struct.pack("<HH2sHL", *tag, b"OB", 0, length) + b"abc"


def _native(patient: str, syntax: str) -> bytes:
    return _encoded(make_dataset(PatientID=patient), syntax)


def _native_past_the_head(patient: str, syntax: str) -> bytes:
    """Pixel data of 256 KB: the element after it is beyond the bytes STOW keeps at hand."""
    dataset = make_dataset(PatientID=patient, frames=1, Rows=256, Columns=512)
    dataset.PixelData = bytes(2 * 256 * 512)
    return _encoded(dataset, syntax)


def _encapsulated(patient: str, syntax: str, fragment: int = 64) -> bytes:
    """RLE Lossless pixel data (PS3.5 §A.4): fragments, then a sequence delimiter."""
    dataset = make_dataset(PatientID=patient)
    dataset.PixelData = encapsulate([bytes(fragment), bytes(fragment)])
    dataset["PixelData"].VR = "OB"
    dataset["PixelData"].is_undefined_length = True
    return _encoded(dataset, RLELossless)


def _encapsulated_past_the_head(patient: str, syntax: str) -> bytes:
    return _encapsulated(patient, syntax, fragment=100_000)


LAYOUTS = [
    pytest.param(_native, ExplicitVRLittleEndian, id="native-fast-reader"),
    pytest.param(_native, ImplicitVRLittleEndian, id="native-pydicom"),
    pytest.param(_native_past_the_head, ExplicitVRLittleEndian, id="native-large-fast-reader"),
    pytest.param(_native_past_the_head, ImplicitVRLittleEndian, id="native-large-pydicom"),
    pytest.param(_encapsulated, ExplicitVRLittleEndian, id="encapsulated"),
    pytest.param(_encapsulated_past_the_head, ExplicitVRLittleEndian, id="encapsulated-large"),
]


@pytest.mark.parametrize("tag", AFTER_PIXELS)
@pytest.mark.parametrize(("build", "syntax"), LAYOUTS)
def test_an_element_after_pixel_data_longer_than_the_file_is_272(
    writer: httpx.Client, tag: tuple[int, int], build: Any, syntax: str
) -> None:
    """Elements were checked up to the pixel data only: one after it declaring 0xFFFFFFF0
    bytes (3 follow) was stored with 200."""
    patient = f"overrun-{uuid.uuid4().hex}"
    response = _post(writer, build(patient, syntax) + _trailing(tag, LIE, syntax))
    assert response.status_code == 409, response.text
    [(reason, comments)] = failures(response)
    assert reason == 272
    name = f"({tag[0]:04X},{tag[1]:04X})"
    assert len(comments) == 1 and name in comments[0] and str(LIE) in comments[0], comments
    assert _stored_for(writer, patient) == 0


@pytest.mark.parametrize(("build", "syntax"), LAYOUTS)
def test_an_element_after_pixel_data_that_fits_is_stored(
    writer: httpx.Client, build: Any, syntax: str
) -> None:
    patient = f"trailing-{uuid.uuid4().hex}"
    response = _post(writer, build(patient, syntax) + _trailing((0xFFFC, 0xFFFC), 3, syntax))
    assert response.status_code == 200, response.text
    assert _stored_for(writer, patient) == 1
