"""STOW-RS from the wire: status codes and failure/warning reason codes of the conformance
statement (272, 43264, 43265, 45070, 45071, warning 1 and 45063), v1 strictness and v2
leniency."""

from __future__ import annotations

import io
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from pydicom.uid import generate_uid

from dicomite.dicom.stow.body import PARALLEL_COMMITS
from tests.fixtures.dicom import TokenFactory, make_dataset, multipart, stow_headers, to_bytes
from tests.fixtures.server import Server

FAILED, REFERENCED, REASON, WARNING = "00081198", "00081199", "00081197", "00081196"


def reasons(body: dict[str, Any]) -> list[int]:
    return [item[REASON]["Value"][0] for item in body.get(FAILED, {}).get("Value", [])]


def stow(
    client: httpx.Client, *parts: bytes, path: str = "/studies", method: str = "POST"
) -> httpx.Response:
    return client.request(method, path, content=multipart(*parts), headers=stow_headers())


def test_single_part_application_dicom(writer: httpx.Client) -> None:
    dataset = make_dataset()
    response = writer.post(
        "/studies", content=to_bytes(dataset), headers={"Content-Type": "application/dicom"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/dicom+json")
    item = response.json()[REFERENCED]["Value"][0]
    assert item["00081155"]["Value"] == [dataset.SOPInstanceUID]
    assert item["00081190"]["Value"][0].endswith(f"/instances/{dataset.SOPInstanceUID}")


def test_no_type_parameter_and_form_data_part_headers(writer: httpx.Client) -> None:
    """Microsoft's tutorial: ``multipart/related; boundary=…`` with form-data part headers."""
    head = b"--B\r\nContent-Disposition: form-data; name=file; filename=a.dcm\r\n"
    body = (
        head + b"Content-Type: application/dicom\r\n\r\n" + to_bytes(make_dataset()) + b"\r\n--B--"
    )
    response = writer.post(
        "/studies", content=body, headers={"Content-Type": "multipart/related; boundary=B"}
    )
    assert response.status_code == 200


def test_chunked_body_over_one_megabyte(writer: httpx.Client) -> None:
    dataset = make_dataset(frames=40)
    dataset.Rows = dataset.Columns = 128
    dataset.PixelData = bytes(128 * 128 * 2 * 40)
    body = multipart(to_bytes(dataset))
    assert len(body) > 1024 * 1024

    def chunks() -> Any:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = writer.post("/studies", content=chunks(), headers=stow_headers())
    assert response.status_code == 200
    retrieved = writer.get(
        f"/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}"
        f"/instances/{dataset.SOPInstanceUID}",
        headers={"Accept": "application/dicom; transfer-syntax=*"},
    )
    assert retrieved.content == to_bytes(dataset)


def test_duplicate_is_45070_and_409(writer: httpx.Client) -> None:
    data = to_bytes(make_dataset())
    assert stow(writer, data).status_code == 200
    again = stow(writer, data)
    assert again.status_code == 409
    assert reasons(again.json()) == [45070]


def test_partial_success_is_202(writer: httpx.Client) -> None:
    good, stored = to_bytes(make_dataset()), to_bytes(make_dataset())
    stow(writer, stored)
    response = stow(writer, good, stored)
    assert response.status_code == 202
    assert reasons(response.json()) == [45070]
    assert len(response.json()[REFERENCED]["Value"]) == 1


def test_study_mismatch_is_43265(writer: httpx.Client) -> None:
    study = generate_uid()
    response = stow(writer, to_bytes(make_dataset()), path=f"/studies/{study}")
    assert response.status_code == 409
    assert reasons(response.json()) == [43265]
    matching = stow(writer, to_bytes(make_dataset(study=study)), path=f"/studies/{study}")
    assert matching.status_code == 200
    assert matching.json()["00081190"]["Value"][0].endswith(f"/studies/{study}")


@pytest.mark.parametrize(
    "attributes",
    [
        pytest.param({"PatientID": None}, id="missing-PatientID"),
        pytest.param({"SOPInstanceUID": "../../etc/passwd"}, id="hostile-uid"),
        pytest.param({"StudyInstanceUID": "1." * 40}, id="uid-over-64"),
        pytest.param({"SeriesInstanceUID": None}, id="missing-series"),
    ],
)
def test_required_attribute_failures_are_43264(
    writer: httpx.Client, attributes: dict[str, Any]
) -> None:
    response = stow(writer, to_bytes(make_dataset(**attributes)))
    assert response.status_code == 409
    assert reasons(response.json()) == [43264]
    assert response.json()[FAILED]["Value"][0]["00741048"]["Value"]


def test_not_dicom_and_truncated_parts_fail(writer: httpx.Client) -> None:
    data = to_bytes(make_dataset())
    response = stow(writer, b"not a dicom file at all", data[:200])
    assert response.status_code == 409
    assert reasons(response.json()) == [272, 43264]  # unreadable; cut before its UIDs
    cut_pixels = stow(writer, data[:-10])
    assert reasons(cut_pixels.json()) == [43264]


def test_searchable_attribute_failure_v1_fails_v2_warns(
    writer: httpx.Client, writer_v2: httpx.Client
) -> None:
    bad_date = make_dataset(StudyDate="2024-01-15")
    v1 = stow(writer, to_bytes(bad_date))
    assert (v1.status_code, reasons(v1.json())) == (409, [43264])
    v2 = stow(writer_v2, to_bytes(bad_date))
    assert v2.status_code == 202
    item = v2.json()[REFERENCED]["Value"][0]
    assert item[WARNING]["Value"] == [1]
    assert "DA" in item["00741048"]["Value"][0]["00000902"]["Value"][0]


def test_sop_class_mismatch_warns_45063(writer_v2: httpx.Client) -> None:
    dataset = make_dataset()
    dataset.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    dataset.file_meta.FileMetaInformationVersion = b"\x00\x01"
    dataset.preamble = bytes(128)
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=False)  # keeps the mismatching file meta
    response = stow(writer_v2, out.getvalue())
    assert response.status_code == 202
    assert response.json()[REFERENCED]["Value"][0][WARNING]["Value"] == [45063]


def test_put_replaces_in_v2_only(writer: httpx.Client, writer_v2: httpx.Client) -> None:
    dataset = make_dataset(PatientName="Before^Name")
    study, series, sop = dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID
    assert stow(writer_v2, to_bytes(dataset), method="PUT").status_code == 200
    dataset.PatientName = "After^Name"
    assert stow(writer_v2, to_bytes(dataset), method="PUT").status_code == 200
    metadata = writer.get(f"/studies/{study}/series/{series}/instances/{sop}/metadata").json()
    assert metadata[0]["00100010"]["Value"] == [{"Alphabetic": "After^Name"}]
    assert stow(writer, to_bytes(dataset), method="PUT").status_code == 405


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        pytest.param("application/json", b"{}", 415, id="wrong-content-type"),
        pytest.param('multipart/related; type="image/jpeg"; boundary=b', b"", 415, id="wrong-type"),
        pytest.param("multipart/related", b"--b\r\n\r\nx\r\n--b--", 400, id="no-boundary"),
        pytest.param(
            "multipart/related; boundary=b", b"--b\r\n\r\nunterminated", 400, id="unterminated"
        ),
        pytest.param("multipart/related; boundary=b", b"garbage", 400, id="boundary-less-body"),
        pytest.param("multipart/related; boundary=b", b"--b--", 204, id="no-parts"),
        pytest.param(
            "multipart/related; boundary=b",
            b"--b\r\nX: " + b"a" * 70000 + b"\r\n\r\n",
            400,
            id="huge-part-headers",
        ),
        pytest.param(
            "multipart/related; boundary=b",
            b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--",
            415,
            id="wrong-part-type",
        ),
    ],
)
def test_bad_requests(writer: httpx.Client, content_type: str, body: bytes, status: int) -> None:
    response = writer.post("/studies", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status
    if status >= 400:
        assert response.text


def test_bad_study_uid_in_url_is_400_and_accept_406(writer: httpx.Client) -> None:
    data = to_bytes(make_dataset())
    assert stow(writer, data, path="/studies/1.2.abc$").status_code == 400
    response = writer.post(
        "/studies", content=multipart(data), headers={**stow_headers(), "Accept": "application/xml"}
    )
    assert response.status_code == 406


def test_request_over_the_limit_is_413(server: Server, dicom_token: TokenFactory) -> None:
    """Refused from the declared Content-Length, before a byte of the body is read."""
    context = ssl.create_default_context(cafile=server.ca_file)
    with (
        socket.create_connection(("localhost", server.port), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(
            f"POST /dicom/v1/studies HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: Bearer {dicom_token('Dicom.ReadWrite')}\r\n"
            f"Content-Type: application/dicom\r\nContent-Length: {3 * 1024**3}\r\n\r\n".encode()
        )
        status_line = tls.recv(4096).split(b"\r\n", 1)[0]
    assert status_line.split()[1] == b"413"


def test_concurrent_uploads_into_one_new_study(writer: httpx.Client) -> None:
    """Parallel requests create the same study and series at once (PostgreSQL: a unique
    violation in one of them, retried); every instance is stored."""
    study, series = generate_uid(), generate_uid()
    bodies = [to_bytes(make_dataset(study=study, series=series)) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda data: stow(writer, data).status_code, bodies))
    assert statuses == [200] * 8
    found = writer.get(f"/studies/{study}/instances")
    assert len(found.json()) == 8


def test_instance_being_stored_by_another_request_is_45071(writer: httpx.Client) -> None:
    """While a request's instance is between "header checked" and "indexed", another request
    storing the same instance gets 45071 (conformance statement: "being created by another
    process"); the first request then stores it. A request that comes too early stores it
    itself (and the first one meets 45070): tried again with a longer head start."""
    for head_start in (0.3, 1.0, 3.0):
        dataset = make_dataset()
        instance, other = to_bytes(dataset), to_bytes(make_dataset())
        rest = threading.Event()
        body = _held_body(instance, other, rest)
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(writer.post, "/studies", content=body, headers=stow_headers())
            time.sleep(head_start)
            second = stow(writer, instance)
            rest.set()
            stored_first = first.result(timeout=120)
        if reasons(second.json()) == [45071]:
            assert second.status_code == 409
            failed = second.json()[FAILED]["Value"][0]
            assert failed["00081155"]["Value"] == [dataset.SOPInstanceUID]
            assert stored_first.status_code == 200
            assert len(stored_first.json()[REFERENCED]["Value"]) == 2
            return
        assert second.status_code == 200, second.text
        assert reasons(stored_first.json()) == [45070]
    pytest.fail("the second request never met the first one's instance in flight")


def _held_body(first: bytes, second: bytes, rest: threading.Event) -> Iterator[bytes]:
    """A two-part body whose first part ends (its delimiter is sent), then stalls until
    ``rest`` is set."""
    yield b"--b0undary\r\nContent-Type: application/dicom\r\n\r\n" + first
    yield b"\r\n--b0undary\r\n"
    rest.wait(60)
    yield b"Content-Type: application/dicom\r\n\r\n" + second + b"\r\n--b0undary--\r\n"


def test_one_request_storing_an_instance_twice(
    writer: httpx.Client, writer_v2: httpx.Client
) -> None:
    """Indexed one instance at a time (not as one batch): the second copy is a duplicate for
    POST, and replaces the first for PUT, next to a new instance of the same request."""
    data, other = to_bytes(make_dataset()), to_bytes(make_dataset())
    twice = stow(writer, data, data, other)
    assert twice.status_code == 202
    assert reasons(twice.json()) == [45070]
    assert len(twice.json()[REFERENCED]["Value"]) == 2
    again = stow(writer_v2, data, to_bytes(make_dataset()), method="PUT")
    assert again.status_code == 200
    assert len(again.json()[REFERENCED]["Value"]) == 2


def test_parts_past_the_parallel_commits_are_answered_in_body_order(writer: httpx.Client) -> None:
    """More parts than are committed at once: each answered in the order of the body, the
    unreadable one among them failing alone (272)."""
    study = generate_uid()
    datasets = [make_dataset(study=study, frames=1) for _ in range(PARALLEL_COMMITS * 2 + 3)]
    parts = [to_bytes(d) for d in datasets]
    parts[11] = b"not a DICOM file"
    response = stow(writer, *parts)
    assert response.status_code == 202
    assert reasons(response.json()) == [272]
    referenced = [item["00081155"]["Value"][0] for item in response.json()[REFERENCED]["Value"]]
    assert referenced == [d.SOPInstanceUID for i, d in enumerate(datasets) if i != 11]
    found = writer.get(f"/studies/{study}/instances", params={"limit": 200})
    assert len(found.json()) == len(datasets) - 1


def test_a_body_failing_midway_keeps_the_parts_before_it(writer: httpx.Client) -> None:
    """As if each part were stored before the next one is read: the parts that ended before a
    part of the wrong type are stored, none after it, and the request is answered 415."""
    study = generate_uid()
    before = [make_dataset(study=study, frames=1) for _ in range(5)]
    after = [make_dataset(study=study, frames=1) for _ in range(2)]
    body = (
        multipart(*(to_bytes(d) for d in before))[: -len(b"--b0undary--\r\n")]
        + b"--b0undary\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        + multipart(*(to_bytes(d) for d in after))
    )
    response = writer.post("/studies", content=body, headers=stow_headers())
    assert response.status_code == 415
    found = writer.get(f"/studies/{study}/instances")
    assert sorted(i["00080018"]["Value"][0] for i in found.json()) == sorted(
        d.SOPInstanceUID for d in before
    )
