"""Data partitions from the wire (Azure DICOM service, "Enable data partitioning"), on both
deployments: one server per deployment, started without partitions (an instance stored), then
with ``--data-partitions``, then without the flag again (partitions stay on)."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom import Dataset, dcmread
from pydicom.uid import generate_uid

from dicomite.bootstrap import open_context
from dicomite.settings import Settings
from tests.dicom.conftest import DEPLOYMENTS
from tests.dicom.http.test_management import store_dataset, wait_done
from tests.fixtures.azurite import Azurite
from tests.fixtures.dicom import dicom_client, make_dataset, to_bytes, token_for
from tests.fixtures.directory import Admin, RegisteredApp
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.server import Server, make_server

DISABLED = "Data partitions feature is disabled."  # the messages of Azure's docs
MISSING = "PartitionName value is missing in the route segment."
JSON = {"Accept": "application/dicom+json"}


@dataclass
class Deployment:
    server: Server
    app: RegisteredApp
    token: str
    before: Dataset  # stored before partitions were turned on
    while_off: list[httpx.Response]  # partition routes answered before they were turned on

    def client(self, partition: str | None = None, version: int = 1) -> httpx.Client:
        client = dicom_client(self.server, self.token, version)
        if partition is not None:
            client.base_url = f"{client.base_url}partitions/{partition}"
        return client


@pytest.fixture(scope="module", params=DEPLOYMENTS)
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    environment: dict[str, str] = {}
    if request.param == "postgresql":
        postgres: PostgresServer = request.getfixturevalue("postgres_server")
        azurite: Azurite = request.getfixturevalue("azurite")
        environment = {
            "DICOMITE_DATABASE_URL": postgres.create_database(),
            "DICOMITE_BLOB_URL": azurite.new_url(),
        }
    server = make_server(tmp_path_factory.mktemp("partitions"), extra_env=environment)
    server.start()
    url = environment.get("DICOMITE_DATABASE_URL")
    context = open_context(
        Settings(data_dir=server.data_dir, tenant_id=server.tenant_id, database_url=url)
    )
    try:
        app = Admin(context).register(roles=("Dicom.ReadWrite",))
        assert app.secret is not None
        token = token_for(server, app.app_id, app.secret)
        made = Deployment(server, app, token, make_dataset(), [])
        with made.client() as client:
            assert store_dataset(client, made.before).status_code == 200
            made.while_off += [client.get("/partitions"), client.get("/partitions/p1/studies")]
            made.while_off.append(store_dataset(made.client("p1"), make_dataset()))
        server.stop()
        server.extra_args.append("--data-partitions")
        server.start()
        server.stop()
        server.extra_args.remove("--data-partitions")
        server.start()
        yield made
    finally:
        server.stop()
        context.store.dispose()


def test_partition_routes_are_refused_until_partitions_are_on(deployment: Deployment) -> None:
    assert [(r.status_code, r.text) for r in deployment.while_off] == [(400, DISABLED)] * 3


def test_data_stored_before_is_in_microsoft_default_and_partitions_stay_on(
    deployment: Deployment,
) -> None:
    """The server last started without the flag: partitions stayed on."""
    with deployment.client() as client:
        listed = client.get("/partitions")
    assert listed.status_code == 200
    [default] = listed.json()
    assert (default["partitionKey"], default["partitionName"]) == (1, "Microsoft.Default")
    assert default["createdDate"].endswith("Z")
    study = deployment.before.StudyInstanceUID
    with deployment.client("Microsoft.Default") as client:
        metadata = client.get(f"/studies/{study}/metadata", headers=JSON)
    assert metadata.status_code == 200


def test_the_viewer_reads_microsoft_default(deployment: Deployment) -> None:
    with deployment.server.client() as client:
        script = client.get("/viewer/app-config.js").text
    assert f"{deployment.server.base_url}/dicom/v2/partitions/Microsoft.Default" in script


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/studies"), ("GET", "/studies/1.2.3/metadata"), ("DELETE", "/studies/1.2.3")],
)
def test_a_study_route_without_a_partition_is_refused(
    deployment: Deployment, method: str, path: str
) -> None:
    with deployment.client() as client:
        response = client.request(method, path, headers=JSON)
    assert (response.status_code, response.text) == (400, MISSING)


def test_a_stow_without_a_partition_is_refused(deployment: Deployment) -> None:
    with deployment.client() as client:
        response = store_dataset(client, make_dataset())
    assert (response.status_code, response.text) == (400, MISSING)


def test_a_partition_never_stored_to_is_refused_and_not_created(deployment: Deployment) -> None:
    with deployment.client("never-stored") as client:
        search = client.get("/studies", headers=JSON)
        removal = client.delete("/studies/1.2.3")
    expected = (400, "Specified PartitionName never-stored does not exist.")
    assert (search.status_code, search.text) == expected
    assert (removal.status_code, removal.text) == expected
    with deployment.client() as client:
        names = [p["partitionName"] for p in client.get("/partitions").json()]
    assert "never-stored" not in names


@pytest.mark.parametrize("name", ["x" * 65, "a%20b", "a+b"])
def test_an_invalid_partition_name_is_refused(deployment: Deployment, name: str) -> None:
    with deployment.client(name) as client:
        response = store_dataset(client, make_dataset())
    assert response.status_code == 400
    assert "PartitionName" in response.text and "invalid" in response.text


def test_the_same_uids_live_in_two_partitions_independently(deployment: Deployment) -> None:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    patients = {"iso-a": f"A-{study[-8:]}", "iso-b": f"B-{study[-8:]}"}
    for partition, patient in patients.items():
        dataset = make_dataset(study, series, sop, PatientID=patient)
        with deployment.client(partition) as client:
            stored = store_dataset(client, dataset)
        assert stored.status_code == 200, stored.text
        [referenced] = stored.json()["00081199"]["Value"]
        url = referenced["00081190"]["Value"][0]
        assert f"/dicom/v1/partitions/{partition}/studies/{study}" in url
    instance = f"/studies/{study}/series/{series}/instances/{sop}"
    with deployment.client("iso-a") as a, deployment.client("iso-b") as b:
        assert _patients(a, f"/studies/{study}/metadata") == [patients["iso-a"]]
        assert _patients(b, f"/studies/{study}/metadata") == [patients["iso-b"]]
        assert a.get("/studies", params={"PatientID": patients["iso-b"]}).status_code == 204
        assert b.get(f"{instance}/frames/1").status_code == 200
        assert b.get(f"{instance}/rendered", headers={"Accept": "image/png"}).status_code == 200
        assert b.get(f"/studies/{study}/series/{series}/thumbnail").status_code == 200
        assert a.delete(f"/studies/{study}").status_code == 204
        assert a.get(f"/studies/{study}/metadata", headers=JSON).status_code == 404
        assert _patients(b, f"/studies/{study}/series/{series}/metadata") == [patients["iso-b"]]
        kept = b.get(instance, headers={"Accept": "application/dicom; transfer-syntax=*"})
        assert kept.status_code == 200  # its file too: the delete in iso-a left it
        assert dcmread(io.BytesIO(kept.content)).PatientID == patients["iso-b"]
        found = b.get("/studies", params={"StudyInstanceUID": study}, headers=JSON)
        assert found.status_code == 200 and len(found.json()) == 1


def test_an_export_in_a_partition_copies_its_instances_only(deployment: Deployment) -> None:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    for partition in ("export-a", "export-b"):
        dataset = make_dataset(study, series, sop, PatientID=partition)
        with deployment.client(partition) as client:
            assert store_dataset(client, dataset).status_code == 200
    folder = f"runs/{uuid.uuid4().hex}"
    body = {
        "source": {"type": "identifiers", "settings": {"values": [study]}},
        "destination": {"type": "folder", "settings": {"path": folder}},
    }
    with deployment.client("export-a") as client:
        started = client.post("/export", json=body)
    assert started.status_code == 202, started.text
    with deployment.client() as client:
        assert client.post("/export", json=body).text == MISSING
        done = wait_done(client, started.json()["href"])
    assert done["results"]["exported"] == 1
    root = deployment.server.data_dir / "exports" / folder / done["operationId"] / "results"
    assert dcmread(root / study / series / f"{sop}.dcm").PatientID == "export-a"


def test_a_bulk_update_in_a_partition_changes_its_copy_only(deployment: Deployment) -> None:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    for partition in ("update-a", "update-b"):
        with deployment.client(partition) as client:
            stored = store_dataset(client, make_dataset(study, series, sop, PatientID="OLD"))
            assert stored.status_code == 200
    body = {
        "studyInstanceUids": [study],
        "changeDataset": {"00100020": {"vr": "LO", "Value": ["NEW"]}},
    }
    with deployment.client("update-a") as client:
        started = client.post("/studies/$bulkUpdate", json=body)
    assert started.status_code == 202, started.text
    with deployment.client() as client:
        assert client.post("/studies/$bulkUpdate", json=body).text == MISSING
        done = wait_done(client, started.json()["href"])
    assert done["results"]["instanceUpdated"] == 1, done
    with deployment.client("update-a") as a, deployment.client("update-b") as b:
        assert _patients(a, f"/studies/{study}/metadata") == ["NEW"]
        assert _patients(b, f"/studies/{study}/metadata") == ["OLD"]
        original = {**JSON, "msdicom-request-original": "true"}
        response = a.get(f"/studies/{study}/metadata", headers=original)
        assert [item["00100020"]["Value"][0] for item in response.json()] == ["OLD"]


def test_change_feed_entries_name_their_partition(deployment: Deployment) -> None:
    dataset = make_dataset()
    with deployment.client("feed") as client:
        assert store_dataset(client, dataset).status_code == 200
    with deployment.client(version=2) as client:
        latest = client.get("/changefeed/latest").json()
    assert latest["PartitionName"] == "feed"
    assert latest["SopInstanceUid"] == dataset.SOPInstanceUID
    assert latest["Metadata"]["00100020"]["Value"] == [dataset.PatientID]


def test_dicomweb_client_works_in_a_partition(deployment: Deployment) -> None:
    """dicomweb-client with the partition in its base URL, on v2: store, search, retrieve."""
    session = requests.Session()
    session.verify = deployment.server.ca_file
    base = f"{deployment.server.base_url}/dicom/v2/partitions/dicomweb-client"
    client = DICOMwebClient(
        url=base, session=session, headers={"Authorization": f"Bearer {deployment.token}"}
    )
    dataset = make_dataset()
    client.store_instances([dataset])
    [found] = client.search_for_studies(search_filters={"PatientID": dataset.PatientID})
    assert found["0020000D"]["Value"] == [dataset.StudyInstanceUID]
    uids = dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID
    assert client.retrieve_instance(*uids).SOPInstanceUID == dataset.SOPInstanceUID


def test_cli_stores_and_searches_in_a_partition_and_lists_partitions(
    deployment: Deployment, tmp_path: Path
) -> None:
    server, app = deployment.server, deployment.app
    common = ["--client-id", app.app_id, "--client-secret", str(app.secret)]
    common += ["--url", f"{server.base_url}/dicom/v1", "--authority", server.authority]
    dataset = make_dataset()
    (tmp_path / "one.dcm").write_bytes(to_bytes(dataset))
    stored = server.cli("dicom", "upload", str(tmp_path), "--partition", "cli", *common)
    assert "stored: 1" in stored.stdout
    uid = f"StudyInstanceUID={dataset.StudyInstanceUID}"
    found = server.cli("dicom", "search", "--partition", "cli", "--filter", uid, *common)
    assert len(json.loads(found.stdout)) == 1
    elsewhere = server.cli(
        "dicom", "search", "--partition", "Microsoft.Default", "--filter", uid, *common
    )
    assert json.loads(elsewhere.stdout) == []
    listed = json.loads(server.cli("dicom", "partitions", *common).stdout)
    assert {"Microsoft.Default", "cli"} <= {p["partitionName"] for p in listed}


def _patients(client: httpx.Client, path: str) -> list[str]:
    response = client.get(path, headers=JSON)
    assert response.status_code == 200, response.text
    return [item["00100020"]["Value"][0] for item in response.json()]
