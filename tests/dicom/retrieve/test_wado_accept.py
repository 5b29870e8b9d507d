"""Accept negotiation of WADO-RS (``wado.negotiate``): a ``type`` parameter holding a "/" is read
whether quoted (RFC 9110 §5.6.6) or bare, as OHIF sends it (its omitQuotationForMultipartRequest
default), for frames, instances, series and studies; a type not served is still a 406."""

from __future__ import annotations

import re
import time

import httpx
import pydicom
import pytest

from dicomite.dicom.errors import NotAcceptable
from dicomite.dicom.retrieve import wado
from tests.fixtures.dicom import make_dataset, multipart, stow_headers, to_bytes

AS_STORED = "multipart/related; type={}; transfer-syntax=*"  # OHIF's, once {} is filled in
TEXT = "text/plain; charset=utf-8"


def quoted(template: str, part_type: str) -> str:
    return template.format(f'"{part_type}"')


def bare(template: str, part_type: str) -> str:
    return template.format(part_type)


def normalized(response: httpx.Response) -> tuple[int, str, bytes]:
    """Status, Content-Type and body, with the (random) multipart boundary named ``B``."""
    content_type = response.headers["content-type"]
    found = re.search(r"boundary=([^;\s]+)", content_type)
    assert found is not None, content_type
    boundary = found.group(1)
    body = response.content.replace(boundary.encode(), b"B")
    return response.status_code, content_type.replace(boundary, "B"), body


@pytest.fixture(scope="module")
def stored(writer: httpx.Client) -> pydicom.Dataset:
    dataset = make_dataset(frames=3)
    body = multipart(to_bytes(dataset))
    assert writer.post("/studies", content=body, headers=stow_headers()).status_code == 200
    return dataset


def urls(dataset: pydicom.Dataset) -> dict[str, str]:
    study = f"/studies/{dataset.StudyInstanceUID}"
    series = f"{study}/series/{dataset.SeriesInstanceUID}"
    instance = f"{series}/instances/{dataset.SOPInstanceUID}"
    return {"study": study, "series": series, "instance": instance, "frames": f"{instance}/frames"}


def test_bare_frames_accept_gets_what_the_quoted_one_gets(
    writer: httpx.Client, stored: pydicom.Dataset
) -> None:
    url = f"{urls(stored)['frames']}/1,3"
    as_quoted = writer.get(url, headers={"Accept": quoted(AS_STORED, wado.OCTETS)})
    as_bare = writer.get(url, headers={"Accept": bare(AS_STORED, wado.OCTETS)})
    assert as_bare.status_code == 200, as_bare.text
    assert normalized(as_bare) == normalized(as_quoted)
    assert stored.PixelData[:32] in as_bare.content and stored.PixelData[64:96] in as_bare.content


@pytest.mark.parametrize("level", ["study", "series", "instance"])
def test_bare_dicom_accept_gets_what_the_quoted_one_gets(
    writer: httpx.Client, stored: pydicom.Dataset, level: str
) -> None:
    url = urls(stored)[level]
    as_quoted = writer.get(url, headers={"Accept": quoted(AS_STORED, wado.DICOM)})
    as_bare = writer.get(url, headers={"Accept": bare(AS_STORED, wado.DICOM)})
    assert as_bare.status_code == 200, as_bare.text
    assert as_bare.headers["content-type"].startswith('multipart/related; type="application/dicom"')
    assert normalized(as_bare) == normalized(as_quoted)
    assert to_bytes(stored) in as_bare.content


@pytest.mark.parametrize("what", ["study", "frames"])
def test_a_type_not_served_is_406_in_either_form(
    writer: httpx.Client, stored: pydicom.Dataset, what: str
) -> None:
    url = urls(stored)["study"] if what == "study" else f"{urls(stored)['frames']}/1"
    for accept in (bare(AS_STORED, "application/pdf"), quoted(AS_STORED, "application/pdf")):
        refused = writer.get(url, headers={"Accept": accept})
        assert refused.status_code == 406, accept
        assert refused.headers["content-type"] == TEXT
        assert refused.text.startswith("The Accept header"), refused.text


FRAMES, INSTANCES = wado.FRAME_TYPES, wado.INSTANCE_TYPES
EXPLICIT = wado.DEFAULT_SYNTAX
JPEG2000_LOSSLESS = "1.2.840.10008.1.2.4.90"


@pytest.mark.parametrize(
    ("accept", "types", "wanted"),
    [
        (AS_STORED, FRAMES, wado.Wanted(True, "*", wado.OCTETS)),
        (AS_STORED, INSTANCES, wado.Wanted(True, "*", wado.DICOM)),
        ("multipart/related; type={}", FRAMES, wado.Wanted(True, JPEG2000_LOSSLESS, wado.JP2)),
        ("multipart/related;type={}", INSTANCES, wado.Wanted(True, EXPLICIT, wado.DICOM)),
        (
            "multipart/related; type={}; transfer-syntax=1.2.840.10008.1.2.5",
            FRAMES,
            wado.Wanted(True, "1.2.840.10008.1.2.5", wado.OCTETS),
        ),
        (
            "multipart/related; type=application/pdf, multipart/related; type={}",
            INSTANCES,
            wado.Wanted(True, EXPLICIT, wado.DICOM),
        ),
    ],
)
def test_negotiate_reads_bare_and_quoted_types_alike(
    accept: str, types: dict[str, str], wanted: wado.Wanted
) -> None:
    for header in (bare(accept, wanted.part_type), quoted(accept, wanted.part_type)):
        assert wado.negotiate(header, types, single_allowed=True) == wanted, header


def test_a_hostile_accept_is_refused_in_linear_time() -> None:
    """About the largest header the server takes (~400 KiB): many items, each a long bare value."""
    hostile = ", ".join(["multipart/related; type=" + "a/" * 200] * 1000)
    started = time.perf_counter()
    with pytest.raises(NotAcceptable):
        wado.negotiate(hostile, wado.INSTANCE_TYPES, single_allowed=True)
    assert time.perf_counter() - started < 1
