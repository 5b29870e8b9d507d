"""dicomweb-client (Python) against the running server over HTTPS, token from msal."""

from __future__ import annotations

import time
from collections.abc import Iterator

import msal
import numpy as np
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import JPEG2000Lossless, generate_uid

from tests.fixtures.dicom import decoded_frame, make_dataset
from tests.fixtures.directory import DICOM_SCOPE, Admin
from tests.fixtures.server import Server

pytestmark = pytest.mark.acceptance
DICOM, JP2, J2K = "application/dicom", "image/jp2", str(JPEG2000Lossless)


@pytest.fixture(scope="module")
def session(server: Server, admin: Admin) -> requests.Session:
    """A DICOM Data Owner's session: its token from msal, in every request's headers."""
    app = admin.register(roles=("Dicom.ReadWrite",))
    session = requests.Session()
    session.verify = server.ca_file
    confidential = msal.ConfidentialClientApplication(
        app.app_id,
        client_credential=app.secret,
        authority=server.authority,
        instance_discovery=False,
        http_client=session,
    )
    token = confidential.acquire_token_for_client(scopes=[DICOM_SCOPE])["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    return session


@pytest.fixture(scope="module")
def client(server: Server, session: requests.Session) -> DICOMwebClient:
    return DICOMwebClient(url=f"{server.base_url}/dicom/v1", session=session)


def test_store_search_retrieve(client: DICOMwebClient) -> None:
    study, series = generate_uid(), generate_uid()
    pid = f"DWC-{study[-10:]}"
    datasets = [make_dataset(study=study, series=series, PatientID=pid) for _ in range(3)]
    big = make_dataset(study=study, series=series, PatientID=pid, frames=40)
    big.Rows = big.Columns = 128
    big.PixelData = bytes(128 * 128 * 2 * 40)  # over 1 MB: dicomweb-client sends it chunked
    response = client.store_instances([*datasets, big])
    assert len(response.ReferencedSOPSequence) == 4

    page1 = client.search_for_instances(search_filters={"PatientID": pid}, limit=3)
    page2 = client.search_for_instances(search_filters={"PatientID": pid}, limit=3, offset=3)
    assert len(page1) == 3 and len(page2) == 1
    assert len(client.search_for_studies(search_filters={"PatientID": pid})) == 1

    assert len(client.retrieve_study(study)) == 4
    assert len(client.retrieve_series(study, series)) == 4
    one = datasets[0]
    instance = client.retrieve_instance(study, series, one.SOPInstanceUID)
    assert instance.SOPInstanceUID == one.SOPInstanceUID
    metadata = client.retrieve_study_metadata(study)
    assert len(metadata) == 4
    frames = client.retrieve_instance_frames(study, series, one.SOPInstanceUID, frame_numbers=[2])
    assert frames == [one.PixelData[32:64]]


def test_retrieve_as_jpeg2000_lossless(client: DICOMwebClient) -> None:
    """dicomweb-client asks for JPEG 2000 Lossless by its media types: the instance comes back
    encoded with the same pixels, and its frames as image/jp2 codestreams."""
    dataset = make_dataset(frames=2, Rows=64, Columns=48)
    dataset.PixelData = np.arange(64 * 48 * 2, dtype=np.uint16).tobytes()
    client.store_instances([dataset])
    uids = dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID
    instance = client.retrieve_instance(*uids, media_types=((DICOM, J2K),))
    assert instance.file_meta.TransferSyntaxUID == J2K
    assert np.array_equal(instance.pixel_array, dataset.pixel_array)
    frames = client.retrieve_instance_frames(*uids, [2], media_types=((JP2, J2K),))
    assert frames[0].startswith(b"\xff\x4f\xff\x51")  # a JPEG 2000 codestream: SOC, SIZ
    assert np.array_equal(decoded_frame(dataset, frames[0], J2K), dataset.pixel_array[1])


@pytest.fixture
def station_tag(server: Server, session: requests.Session) -> Iterator[None]:
    """StationName as a series-level extended query tag, ready; deleted afterwards (the tags
    are the deployment's)."""
    tags = f"{server.base_url}/dicom/v1/extendedquerytags"
    added = session.post(tags, json=[{"path": "StationName", "level": "Series"}])
    assert added.status_code == 202, added.text
    deadline = time.monotonic() + 120
    while session.get(added.json()["href"]).status_code == 202:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    session.patch(f"{tags}/StationName", json={"queryStatus": "Enabled"}).raise_for_status()
    yield
    assert session.delete(f"{tags}/StationName").status_code == 204


def test_search_on_an_extended_query_tag(client: DICOMwebClient, station_tag: None) -> None:
    """dicomweb-client's searches use an extended query tag like any other attribute."""
    study, station = generate_uid(), f"DWC{generate_uid()[-12:]}"
    client.store_instances([make_dataset(study=study, StationName=station)])
    found = client.search_for_series(search_filters={"StationName": station.lower()})
    assert [s["0020000D"]["Value"] for s in found] == [[study]]
    assert found[0]["00081010"] == {"vr": "SH", "Value": [station]}
    assert client.search_for_series(search_filters={"StationName": "NONE" + station}) == []
