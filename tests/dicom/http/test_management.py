"""Extended query tags and operations from the wire (Azure DICOM service, "Extended query tags"
overview), on both deployments: add → 202 and a reindex operation, the tags' lifecycle, QIDO on
them at their level, new STOWs indexed at once, indexing errors and the hand-enabled query with
``erroneous-dicom-attributes``, and each documented error."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydicom import Dataset
from pydicom.uid import generate_uid
from sqlalchemy import update

from dicomite.clock import utcnow
from dicomite.dicom.operations import records
from dicomite.dicom.operations.reindex import REINDEX
from dicomite.store.tables import DicomOperation
from tests.fixtures.dicom import TokenFactory, dicom_client, make_dataset, to_bytes
from tests.fixtures.directory import Admin
from tests.fixtures.server import Server

PRIVATE = "00091001"  # (0009,1001) SS in the block "DICOMITE TEST"
CREATOR = "DICOMITE TEST"
JSON = {"Content-Type": "application/json"}
# The "Extended query tags" overview's table of VRs, and the others (its implementation's list)
TEXT_VRS = ["AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "PN", "SH", "TM", "UI"]
SUPPORTED_VRS = [*TEXT_VRS, "FD", "FL", "SL", "SS", "UL", "US"]
UNSUPPORTED_VRS = ["AT", "LT", "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "ST", "SV", "UC", "UN"]
UNSUPPORTED_VRS += ["UR", "UT", "UV"]


def store(client: httpx.Client, **attributes: Any) -> httpx.Response:
    return store_dataset(client, make_dataset(**attributes))


def store_dataset(client: httpx.Client, dataset: Dataset) -> httpx.Response:
    return client.post(
        "/studies",
        content=to_bytes(dataset),
        headers={"Content-Type": "application/dicom", "Accept": "application/dicom+json"},
    )


def store_private(client: httpx.Client, value: int, **attributes: Any) -> str:
    dataset = make_dataset(**attributes)
    block = dataset.private_block(0x0009, CREATOR, create=True)
    block.add_new(0x01, "SS", value)
    response = store_dataset(client, dataset)
    assert response.status_code == 200, response.text
    return str(dataset.SOPInstanceUID)


def base(client: httpx.Client) -> str:
    return str(client.base_url).rstrip("/")


def wait_done(client: httpx.Client, href: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(href)
        if response.status_code == 200:
            return dict(response.json())
        assert response.status_code == 202, response.text
        assert response.headers["location"] == href
        assert time.monotonic() < deadline, response.json()
        time.sleep(0.1)


def add_tags(client: httpx.Client, *entries: dict[str, str]) -> dict[str, Any]:
    response = client.post("/extendedquerytags", json=list(entries))
    assert response.status_code == 202, response.text
    reference = response.json()
    assert response.headers["location"] == reference["href"]
    assert reference["href"].endswith(f"/operations/{reference['id']}")
    return wait_done(client, reference["href"])


@pytest.fixture
def owner(server: Server, dicom_token: TokenFactory) -> Iterator[httpx.Client]:
    """A DICOM Data Owner on v1; the tags it leaves are deleted (they are the deployment's)."""
    with dicom_client(server, dicom_token("Dicom.ReadWrite")) as client:
        yield client
        for tag in client.get("/extendedquerytags").json():
            if "operation" in tag:
                wait_done(client, tag["operation"]["href"])
            assert client.delete(f"/extendedquerytags/{tag['path']}").status_code == 204


def test_a_tag_is_added_reindexed_and_searched_at_its_level(
    owner: httpx.Client, writer_v2: httpx.Client
) -> None:
    code, head, number = f"F{uuid.uuid4().hex[:8].upper()}", f"Head {uuid.uuid4()}", 3000
    study = generate_uid()
    store_private(owner, number, study=study, PatientSex=code, SeriesDescription=head)
    store_private(owner, number + 1, PatientSex=f"M{code}", SeriesDescription=f"Chest {head}")
    assert owner.get("/series", params={"SeriesDescription": head}).status_code == 400

    done = add_tags(
        owner,
        {"path": "PatientSex", "level": "Study"},
        {"Path": "0008103E", "VR": "LO", "Level": "series"},
        {"path": PRIVATE, "vr": "SS", "privateCreator": CREATOR, "level": "Instance"},
    )
    assert (done["type"], done["status"], done["percentComplete"]) == ("reindex", "completed", 100)
    assert done["createdTime"] <= done["lastUpdatedTime"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", done["createdTime"])
    assert sorted(done["resources"]) == sorted(
        f"{base(owner)}/extendedquerytags/{path}" for path in ("00100040", "0008103E", PRIVATE)
    )
    v2 = writer_v2.get(f"/operations/{done['operationId']}").json()
    assert v2["status"] == "succeeded"
    assert writer_v2.get("/extendedquerytags/00100040").json()["status"] == "ready"
    assert owner.get("/extendedquerytags/PatientSex").json() == {
        "path": "00100040",
        "vr": "CS",
        "level": "study",
        "status": "ready",
        "queryStatus": "enabled",
    }

    studies = owner.get("/studies", params={"PatientSex": code.lower()}).json()
    assert [s["0020000D"]["Value"] for s in studies] == [[study]]
    assert studies[0]["00100040"] == {"vr": "CS", "Value": [code]}
    series = owner.get("/series", params={"SeriesDescription": head.upper()}).json()
    assert [s["0008103E"]["Value"] for s in series] == [[head]]
    # within one study, the tag's condition is checked per series (qido_tags' correlated form)
    within = owner.get(f"/studies/{study}/series", params={"SeriesDescription": head}).json()
    assert [s["0008103E"]["Value"] for s in within] == [[head]]
    elsewhere = {"SeriesDescription": f"Chest {head}"}
    assert owner.get(f"/studies/{study}/series", params=elsewhere).status_code == 204
    instances = owner.get("/instances", params={PRIVATE: str(number + 1)}).json()
    assert [i[PRIVATE]["Value"] for i in instances] == [[number + 1]]
    assert owner.get(f"/studies/{study}/series", params={"PatientSex": code}).status_code == 400

    later = store_private(owner, number + 2, PatientSex=code)  # indexed by its STOW, at once
    found = owner.get("/instances", params={PRIVATE: str(number + 2), "PatientSex": code}).json()
    assert [i["00080018"]["Value"] for i in found] == [[later]]


def test_values_that_cannot_be_indexed_disable_queries_until_enabled_by_hand(
    owner: httpx.Client, writer_v2: httpx.Client
) -> None:
    bad = make_dataset(PatientAge="12")  # not an AS (nnnD/W/M/Y): no tag checks it yet
    assert store_dataset(owner, bad).status_code == 200
    assert store(owner, PatientAge="12").status_code == 200  # a second error, to page through
    study = generate_uid()
    store(owner, study=study, PatientAge="097Y")
    add_tags(owner, {"path": "PatientAge", "level": "Study"})

    tag = owner.get("/extendedquerytags/00101010").json()
    assert tag["queryStatus"] == "disabled" and tag["errors"]["count"] >= 1
    errors = owner.get(tag["errors"]["href"], params={"limit": "200"}).json()
    ours = [e for e in errors if e["sopInstanceUid"] == bad.SOPInstanceUID]
    assert [(e["studyInstanceUid"], e["errorMessage"]) for e in ours] == [
        (bad.StudyInstanceUID, "Value length is not 4.")
    ]
    assert ours[0]["seriesInstanceUid"] == bad.SeriesInstanceUID
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?", ours[0]["createdTime"])
    assert len(errors) == tag["errors"]["count"] >= 2
    assert owner.get(tag["errors"]["href"], params={"limit": "1", "offset": "1"}).json() == [
        errors[1]
    ]
    refused = owner.get("/studies", params={"PatientAge": "097Y"})
    assert refused.status_code == 400
    assert refused.text == "Query is disabled on specified attribute 'PatientAge'."

    patched = owner.patch("/extendedquerytags/PatientAge", json={"QueryStatus": "Enabled"})
    assert patched.status_code == 200 and patched.json()["queryStatus"] == "enabled"
    found = owner.get("/studies", params={"PatientAge": "097Y"})
    assert study in [s["0020000D"]["Value"][0] for s in found.json()]
    assert found.headers["erroneous-dicom-attributes"] == "PatientAge"

    # Once the tag exists, STOW checks it: v1 refuses the value, v2 stores the instance unindexed.
    refused_stow = store(owner, PatientAge="1Y")
    assert refused_stow.status_code == 409 and "(0010,1010)" in refused_stow.text
    warned = store(writer_v2, PatientAge="1Y", PatientID="WARNED")
    assert warned.status_code == 202
    assert owner.get("/studies", params={"PatientID": "WARNED"}).status_code == 200
    assert owner.get("/studies", params={"PatientAge": "1Y"}).status_code == 204


def test_each_documented_error(owner: httpx.Client) -> None:
    cases: list[tuple[Any, int, str]] = [
        ([], 400, "The extended query tag(s) is missing."),
        ([{"path": "NoSuchKeyword", "level": "Study"}], 400, "cannot be parsed into a valid Dicom"),
        ([{"path": "00101010.00100010", "level": "Study"}], 400, "Sequential dicom tags"),
        ([{"path": "PatientName", "level": "Study"}], 400, "is already supported"),
        ([{"path": "PatientAge"}], 400, "The level for extended query tag 'PatientAge' is missing"),
        ([{"path": "PatientAge", "level": "Patient"}], 400, "'Study', 'Series' or 'Instance'"),
        ([{"path": "ReferencedStudySequence", "level": "Study"}], 400, "VR code 'SQ'"),
        ([{"path": "AdditionalPatientHistory", "level": "Study"}], 400, "VR code 'LT'"),
        ([{"path": "PatientAge", "vr": "LO", "level": "Study"}], 400, "expected VR code"),
        ([{"path": "PatientAge", "vr": "A!", "level": "Study"}], 400, "is invalid"),
        ([{"path": PRIVATE, "privateCreator": "X", "level": "Study"}], 400, "vr for tag"),
        ([{"path": PRIVATE, "vr": "SS", "level": "Study"}], 400, "private creator for private"),
        ([{"path": "PatientAge", "privateCreator": "X", "level": "Study"}], 400, "standard tag"),
        ([{"path": "PatientAge", "level": "Study"}] * 2, 400, "has been specified before"),
    ]
    for body, status, message in cases:
        response = owner.post("/extendedquerytags", json=body)
        assert (response.status_code, message in response.text) == (status, True), body
    assert owner.post("/extendedquerytags", content=b"[", headers=JSON).status_code == 400
    wrong_type = owner.post(
        "/extendedquerytags", content=b"[]", headers={"Content-Type": "text/csv"}
    )
    assert wrong_type.status_code == 415

    add_tags(owner, {"path": "PatientAge", "level": "Study"})
    again = owner.post("/extendedquerytags", json=[{"path": "00101010", "level": "Study"}])
    assert (again.status_code, again.text) == (
        409,
        "One or more extended query tags already exist.",
    )
    for vr in UNSUPPORTED_VRS:
        entry = {"path": PRIVATE, "vr": vr, "privateCreator": CREATOR, "level": "Study"}
        refused = owner.post("/extendedquerytags", json=[entry])
        assert refused.status_code == 400 and f"'{vr}'" in refused.text, vr
    many = [  # each documented VR, on private tags (any VR may be declared for them)
        {
            "path": f"0011{n:04X}",
            "vr": SUPPORTED_VRS[n % 18],
            "privateCreator": "C",
            "level": "Study",
        }
        for n in range(0x1000, 0x1080)
    ]
    over = owner.post("/extendedquerytags", json=many)
    assert (over.status_code, over.text) == (
        400,
        "Extended query tags exceeds max allowed count '128'.",
    )
    assert owner.post("/extendedquerytags", json=many[:127]).status_code == 202
    listed = [t["path"] for t in owner.get("/extendedquerytags", params={"limit": "200"}).json()]
    assert len(listed) == 128 and len(owner.get("/extendedquerytags").json()) == 100
    page = owner.get("/extendedquerytags", params={"limit": "2", "offset": "126"}).json()
    assert [t["path"] for t in page] == listed[126:128]
    assert owner.get("/extendedquerytags", params={"offset": "128"}).json() == []

    assert owner.get("/extendedquerytags/PatientWeight").status_code == 404
    for method, url in [
        ("GET", "/extendedquerytags/NotATag"),
        ("GET", "/extendedquerytags/0010101G/errors"),
        ("DELETE", "/extendedquerytags/(0010,1010)"),
        ("PATCH", "/extendedquerytags/00101010.00100010"),
    ]:
        invalid = owner.request(method, url, json={"queryStatus": "Enabled"})
        assert invalid.status_code == 400 and "tag" in invalid.text, (method, url)
    assert owner.get("/extendedquerytags/PatientWeight/errors").status_code == 404
    assert (
        owner.patch("/extendedquerytags/PatientWeight", json={"queryStatus": "Enabled"}).status_code
        == 404
    )
    assert (
        owner.patch("/extendedquerytags/PatientAge", json={"queryStatus": "On"}).status_code == 400
    )
    assert owner.patch("/extendedquerytags/PatientAge", json={"vr": "AS"}).status_code == 400
    assert owner.delete("/extendedquerytags/PatientWeight").status_code == 404
    assert owner.get("/extendedquerytags", params={"limit": "0"}).status_code == 400
    assert owner.get("/extendedquerytags", params={"offset": "-1"}).status_code == 400
    assert owner.get("/operations/not-a-guid").status_code == 404
    assert owner.get(f"/operations/{records.new_id()}").status_code == 404


SYNTAX = "The syntax of the request body is invalid."
HOSTILE_BODIES: list[tuple[bytes, str, int, str]] = [
    (b"[" * 5000 + b"]" * 5000, "application/json", 400, SYNTAX),
    (b'{"a":' * 3000 + b"1" + b"}" * 3000, "application/json", 400, SYNTAX),
    (b"\xff\xfe[", "application/json", 400, SYNTAX),
    (b"[" + b" " * 70_000 + b"]", "application/json", 413, "allowed limit of 65536 bytes"),
    (b"[]", "text/plain", 415, "The specified content type 'text/plain' is not supported."),
    (b"[]", "", 415, "The specified content type '' is not supported."),
]


def test_hostile_bodies_and_parameters_are_refused_in_the_error_format(owner: httpx.Client) -> None:
    """Deep, oversized, undecodable or mistyped bodies and out-of-range paging are a 4xx in
    text/plain, never a 500, and change nothing."""
    add_tags(owner, {"path": "PatientAge", "level": "Study"})
    before = owner.get("/extendedquerytags").json()
    targets = [
        ("POST", "/extendedquerytags"),
        ("PATCH", "/extendedquerytags/PatientAge"),
        ("POST", "/export"),
    ]
    for method, url in targets:
        for body, media, status, message in HOSTILE_BODIES:
            headers = {"Content-Type": media} if media else {}
            response = owner.request(method, url, content=body, headers=headers)
            outcome = (response.status_code, message in response.text)
            assert outcome == (status, True), (url, body[:9])
            assert response.headers["content-type"] == "text/plain; charset=utf-8"
    huge = str(2**63)
    for url in ("/extendedquerytags", "/extendedquerytags/PatientAge/errors"):
        for params in ({"offset": huge}, {"offset": "-1"}, {"limit": huge}, {"limit": "x"}):
            response = owner.get(url, params=params)
            assert response.status_code == 400, (url, params)
            assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert owner.get("/extendedquerytags").json() == before
    enabled = {"queryStatus": "Enabled"}  # other tests' files may hold values it cannot index
    assert owner.patch("/extendedquerytags/PatientAge", json=enabled).status_code == 200
    for value in ("é", "\x00", "9" * 5000, "*", "097Y-", "1Y\\2Y", "%"):
        found = owner.get("/studies", params={"PatientAge": value})
        assert found.status_code in (200, 204, 400), value
        assert found.status_code != 400 or found.headers["content-type"].startswith("text/plain")


def test_a_tag_cannot_be_added_while_a_reindex_runs(owner: httpx.Client, admin: Admin) -> None:
    """409 with the running operation's Location (it is held by another host's runner)."""
    with admin.context.store.transaction(write=True) as db:
        running = records.create(db, REINDEX, [], {"cursor": 0, "done": 0, "total": 0}, utcnow())
        db.execute(
            update(DicomOperation)
            .where(DicomOperation.id == running)
            .values(
                status=records.RUNNING,
                lease_owner="elsewhere/1/x",
                lease_until=utcnow().replace(year=2100),
            )
        )
    try:
        response = owner.post("/extendedquerytags", json=[{"path": "PatientAge", "level": "Study"}])
        assert response.status_code == 409
        assert (
            response.text == f"There is already an active re-index operation with ID '{running}'."
        )
        assert response.headers["location"] == f"{base(owner)}/operations/{running}"
        assert owner.get(f"/operations/{running}").status_code == 202
    finally:
        with admin.context.store.transaction(write=True) as db:
            db.execute(
                update(DicomOperation)
                .where(DicomOperation.id == running)
                .values(status=records.CANCELED)
            )


def test_a_deleted_tag_is_gone_from_search_and_stow(owner: httpx.Client) -> None:
    store(owner, PatientWeight="71.25")
    add_tags(owner, {"path": "PatientWeight", "level": "Study"})
    enabled = {"queryStatus": "enabled"}  # other tests' files may hold values it cannot index
    assert owner.patch("/extendedquerytags/PatientWeight", json=enabled).status_code == 200
    assert owner.get("/studies", params={"PatientWeight": "71.25"}).status_code == 200
    assert owner.delete("/extendedquerytags/00101030").status_code == 204
    assert owner.get("/extendedquerytags/PatientWeight").status_code == 404
    assert owner.get("/studies", params={"PatientWeight": "71.25"}).status_code == 400


def test_readers_read_tags_and_operations_but_only_owners_change_them(
    server: Server, dicom_token: TokenFactory, owner: httpx.Client
) -> None:
    done = add_tags(owner, {"path": "PatientSize", "level": "Study"})
    with dicom_client(server, dicom_token("Dicom.Read")) as reader:
        assert reader.get("/extendedquerytags").status_code == 200
        assert reader.get(f"/operations/{done['operationId']}").status_code == 200
        for response in (
            reader.post("/extendedquerytags", json=[{"path": "PatientAge", "level": "Study"}]),
            reader.patch("/extendedquerytags/PatientSize", json={"queryStatus": "Disabled"}),
            reader.delete("/extendedquerytags/PatientSize"),
        ):
            assert response.status_code == 403
            assert "'manageExtendedQueryTags'" in response.text
    with dicom_client(server, None) as anonymous:
        assert anonymous.get("/extendedquerytags").status_code == 401
