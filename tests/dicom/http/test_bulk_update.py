"""Bulk update from the wire (Azure DICOM service, "Update DICOM files"), on both deployments:
the operation and its results in v1 and v2, the new values in QIDO, metadata and WADO (through
dicomweb-client), the original version with ``msdicom-request-original``, the change feed's
``update`` rows, one update at a time, each documented refusal and the role it needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom import Dataset
from pydicom.uid import generate_uid
from sqlalchemy import update

from dicomite.clock import utcnow
from dicomite.dicom.operations import records
from dicomite.dicom.operations.bulk_update import UPDATE
from dicomite.store.tables import DicomOperation
from tests.dicom.http.test_management import base, store_dataset, wait_done
from tests.fixtures.dicom import TokenFactory, dicom_client, make_dataset, to_bytes
from tests.fixtures.directory import Admin
from tests.fixtures.server import Server

ORIGINAL = {"msdicom-request-original": "true"}
ANY_SYNTAX = {"Accept": "application/dicom; transfer-syntax=*"}
NEW_NAME = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Roe^Jane"}]}}


def stored(client: httpx.Client, **uids: str) -> Dataset:
    dataset = make_dataset(frames=1, **uids)
    assert store_dataset(client, dataset).status_code == 200
    return dataset


def bulk_update(client: httpx.Client, studies: list[str], change: dict[str, Any]) -> Any:
    body = {"studyInstanceUids": studies, "changeDataset": change}
    response = client.post("/studies/$bulkUpdate", json=body)
    assert response.status_code == 202, response.text
    reference = response.json()
    assert reference["href"] == f"{base(client)}/operations/{reference['id']}"
    assert response.headers["location"] == reference["href"]
    return wait_done(client, reference["href"])


def instance_url(dataset: Dataset) -> str:
    return (
        f"/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}"
        f"/instances/{dataset.SOPInstanceUID}"
    )


@pytest.fixture
def owner(server: Server, dicom_token: TokenFactory) -> Iterator[httpx.Client]:
    with dicom_client(server, dicom_token("Dicom.ReadWrite"), 2) as client:
        yield client


@pytest.fixture
def owner_v1(server: Server, dicom_token: TokenFactory) -> Iterator[httpx.Client]:
    with dicom_client(server, dicom_token("Dicom.ReadWrite")) as client:
        yield client


@pytest.fixture
def dicomweb(server: Server, dicom_token: TokenFactory) -> DICOMwebClient:
    session = requests.Session()
    session.verify = str(server.ca_file)
    token = dicom_token("Dicom.ReadWrite")
    return DICOMwebClient(
        url=f"{server.base_url}/dicom/v2",
        session=session,
        headers={"Authorization": f"Bearer {token}"},
    )


def test_an_update_shows_in_search_metadata_retrieve_and_the_change_feed(
    owner: httpx.Client, owner_v1: httpx.Client, dicomweb: DICOMwebClient
) -> None:
    study, patient = generate_uid(), f"P-{generate_uid()[-12:]}"
    datasets = [stored(owner, study=study), stored(owner, study=study)]
    before = owner.get("/changefeed/latest").json()["Sequence"]
    change = {
        **NEW_NAME,
        "00100020": {"vr": "LO", "Value": [patient]},
        "00081030": {"vr": "LO", "Value": ["Updated description"]},
    }

    done = bulk_update(owner, [study], change)

    assert (done["type"], done["status"], done["percentComplete"]) == (UPDATE, "succeeded", 100)
    assert done["results"] == {"studyUpdated": 1, "instanceUpdated": 2}
    [found] = dicomweb.search_for_studies(search_filters={"PatientID": patient})
    assert found["0020000D"]["Value"] == [study]
    assert found["00100010"]["Value"] == [{"Alphabetic": "Roe^Jane"}]
    assert found["00081030"]["Value"] == ["Updated description"]
    for metadata in dicomweb.retrieve_study_metadata(study):
        assert metadata["00100020"]["Value"] == [patient]
    for dataset in datasets:
        latest = dicomweb.retrieve_instance(
            study, dataset.SeriesInstanceUID, dataset.SOPInstanceUID
        )
        assert (str(latest.PatientName), latest.PixelData) == ("Roe^Jane", dataset.PixelData)
        original = owner.get(instance_url(dataset), headers={**ANY_SYNTAX, **ORIGINAL})
        assert original.content == to_bytes(dataset)
        [first] = owner.get(f"{instance_url(dataset)}/metadata", headers=ORIGINAL).json()
        assert first["00100010"]["Value"] == [{"Alphabetic": "Doe^John"}]
    feed = owner_v1.get("/changefeed", params={"offset": before, "limit": 100}).json()
    ours = [
        (e["SopInstanceUid"], e["Action"], e["State"])
        for e in feed
        if e["StudyInstanceUid"] == study
    ]
    assert ours == [(d.SOPInstanceUID, "update", "current") for d in datasets]


def test_v1_says_completed_and_an_unknown_study_fails_as_documented(
    owner_v1: httpx.Client,
) -> None:
    dataset, missing = stored(owner_v1), generate_uid()
    done = bulk_update(owner_v1, [dataset.StudyInstanceUID], NEW_NAME)
    assert (done["status"], done["results"]) == (
        "completed",
        {"studyUpdated": 1, "instanceUpdated": 1},
    )

    failed = bulk_update(owner_v1, [missing], NEW_NAME)

    assert (failed["status"], failed["percentComplete"]) == ("failed", 100)
    assert failed["results"] == {
        "studyUpdated": 0,
        "studyFailed": 1,
        "instanceUpdated": 0,
        "errors": [f"Failed to update instances for study {missing}"],
    }


def test_one_update_at_a_time(owner: httpx.Client, admin: Admin) -> None:
    with admin.context.store.transaction(write=True) as db:
        running = records.create(db, UPDATE, [], {}, utcnow())
        db.execute(
            update(DicomOperation)
            .where(DicomOperation.id == running)
            .values(lease_owner="elsewhere/1/x", lease_until=utcnow().replace(year=2100))
        )
    try:
        body = {"studyInstanceUids": [generate_uid()], "changeDataset": NEW_NAME}
        response = owner.post("/studies/$bulkUpdate", json=body)
        assert response.status_code == 409
        assert response.text == (
            f"There is already an active bulk update operation with ID '{running}'."
        )
        assert response.headers["location"] == f"{base(owner)}/operations/{running}"
    finally:
        with admin.context.store.transaction(write=True) as db:
            db.execute(
                update(DicomOperation)
                .where(DicomOperation.id == running)
                .values(status=records.CANCELED)
            )


def _name(value: Any) -> dict[str, Any]:
    return {"00100010": {"vr": "PN", "Value": value}}


REFUSALS: list[tuple[Any, str]] = [
    ({"changeDataset": NEW_NAME}, "must specify studyInstanceUids and changeDataset"),
    ({"studyInstanceUids": ["1.2"]}, "must specify studyInstanceUids and changeDataset"),
    ({"studyInstanceUids": [], "changeDataset": NEW_NAME}, "non-empty list"),
    ({"studyInstanceUids": ["1..2"], "changeDataset": NEW_NAME}, "'1..2' is invalid"),
    ({"studyInstanceUids": ["1.2"] * 51, "changeDataset": NEW_NAME}, "maximum of 50"),
    ({"studyInstanceUids": ["1.2"], "changeDataset": {}}, "non-empty DICOM JSON"),
    (
        {
            "studyInstanceUids": ["1.2"],
            "changeDataset": {"00080060": {"vr": "CS", "Value": ["MR"]}},
        },
        "Modality (00080060) cannot be updated",
    ),
    (
        {
            "studyInstanceUids": ["1.2"],
            "changeDataset": {"0020000D": {"vr": "UI", "Value": ["1.3"]}},
        },
        "UID attribute StudyInstanceUID (0020000D) is not supported",
    ),
    (
        {
            "studyInstanceUids": ["1.2"],
            "changeDataset": {"00100020": {"vr": "SH", "Value": ["X"]}},
        },
        "must be given with VR LO",
    ),
    ({"studyInstanceUids": ["1.2"], "changeDataset": {"00100010": {"vr": "PN"}}}, "null value"),
    ({"studyInstanceUids": ["1.2"], "changeDataset": _name([None])}, "null value"),
    (
        {
            "studyInstanceUids": ["1.2"],
            "changeDataset": {"00100030": {"vr": "DA", "Value": ["2020131"]}},
        },
        "The value of PatientBirthDate (00100030) is invalid",
    ),
    ({"studyInstanceUids": ["1.2"], "changeDataset": _name(["Doe"])}, "is invalid"),
]


def test_each_documented_refusal(owner: httpx.Client) -> None:
    for body, message in REFUSALS:
        response = owner.post("/studies/$bulkUpdate", json=body)
        assert (response.status_code, message in response.text) == (400, True), response.text
    assert owner.post("/studies/$bulkUpdate", content=b"{").status_code == 415


def test_only_data_owners_update(server: Server, dicom_token: TokenFactory) -> None:
    body = {"studyInstanceUids": [generate_uid()], "changeDataset": NEW_NAME}
    with dicom_client(server, dicom_token("Dicom.Read"), 2) as reader:
        assert reader.post("/studies/$bulkUpdate", json=body).status_code == 403
    with dicom_client(server, None, 2) as anonymous:
        assert anonymous.post("/studies/$bulkUpdate", json=body).status_code == 401
