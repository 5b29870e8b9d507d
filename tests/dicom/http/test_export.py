"""Export from the wire (Azure DICOM service, "Export DICOM files"), on both deployments: to a
folder below ``--export-dir``, to Azure Blob Storage (Azurite) by SAS URI and by connection
string, the operation's ``results`` and ``errors.log``, and each documented error."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.storage.blob import ContainerClient, ContainerSasPermissions, generate_container_sas
from pydicom import Dataset
from pydicom.uid import generate_uid

from dicomite.clock import utcnow
from dicomite.dicom.blobs.azure import EMULATOR_ACCOUNT, EMULATOR_KEY
from tests.dicom.http.test_management import store_dataset, wait_done
from tests.fixtures.azurite import Azurite
from tests.fixtures.dicom import TokenFactory, dicom_client, make_dataset
from tests.fixtures.server import Server

MISSING = "1.2.3.999"


def stored(client: httpx.Client, **uids: str) -> Dataset:
    dataset = make_dataset(frames=1, **uids)
    assert store_dataset(client, dataset).status_code == 200
    return dataset


def path_of(dataset: Dataset) -> str:
    return f"{dataset.StudyInstanceUID}/{dataset.SeriesInstanceUID}/{dataset.SOPInstanceUID}"


def retrieved(client: httpx.Client, dataset: Dataset) -> bytes:
    url = "/studies/{}/series/{}/instances/{}".format(*path_of(dataset).split("/"))
    response = client.get(url, headers={"Accept": "application/dicom; transfer-syntax=*"})
    assert response.status_code == 200
    return response.content


def export(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/export", json=body)
    assert response.status_code == 202, response.text
    reference = response.json()
    assert response.headers["location"] == reference["href"]
    assert reference["href"] == f"{str(client.base_url).rstrip('/')}/operations/{reference['id']}"
    return wait_done(client, reference["href"])


def identifiers(*values: str) -> dict[str, Any]:
    return {"type": "identifiers", "settings": {"values": list(values)}}


@pytest.fixture
def owner(server: Server, dicom_token: TokenFactory) -> Iterator[httpx.Client]:
    with dicom_client(server, dicom_token("Dicom.ReadWrite")) as client:
        yield client


@pytest.fixture
def chosen(owner: httpx.Client) -> dict[str, list[Dataset]]:
    """A study of two series (exported whole), a series of another study, one instance of a
    third, and what none of them names (a series UID reused in a fourth study among it)."""
    study, other, third, fourth = generate_uid(), generate_uid(), generate_uid(), generate_uid()
    series = generate_uid()
    return {
        "exported": [
            stored(owner, study=study, series=series),
            stored(owner, study=study, series=series),
            stored(owner, study=study),
            stored(owner, study=other, series=series),
            stored(owner, study=third),
        ],
        "left": [
            stored(owner, study=other),
            stored(owner, study=third),
            stored(owner, study=fourth, series=series),
        ],
    }


def test_an_export_to_a_folder_writes_each_instance_and_logs_what_it_skipped(
    server: Server, owner: httpx.Client, chosen: dict[str, list[Dataset]]
) -> None:
    wanted = chosen["exported"]
    values = (
        wanted[0].StudyInstanceUID,
        f"{wanted[3].StudyInstanceUID}/{wanted[3].SeriesInstanceUID}",
        path_of(wanted[4]),
        MISSING,
    )
    folder = f"runs/{uuid.uuid4().hex}"
    destination = {"type": "folder", "settings": {"path": folder}}
    done = export(owner, {"source": identifiers(*values), "destination": destination})

    root = server.data_dir / "exports" / folder / done["operationId"]
    assert (done["type"], done["status"], done["percentComplete"]) == ("export", "completed", 100)
    errors = root / "errors.log"
    assert done["results"] == {"exported": 5, "skipped": 1, "errorHref": errors.as_uri()}
    files = sorted(p.relative_to(root / "results").as_posix() for p in root.rglob("*.dcm"))
    assert files == sorted(f"{path_of(d)}.dcm" for d in wanted)
    for dataset in wanted:
        assert (root / "results" / f"{path_of(dataset)}.dcm").read_bytes() == retrieved(
            owner, dataset
        )
    [line] = [json.loads(text) for text in errors.read_text().splitlines()]
    assert (line["Identifier"], line["Error"]) == (MISSING, "No instance matches the identifier.")
    assert "Timestamp" in line


def test_v2_exports_and_says_succeeded(
    server: Server, dicom_token: TokenFactory, owner: httpx.Client
) -> None:
    dataset = stored(owner)
    destination = {"type": "folder", "settings": {"path": f"v2/{uuid.uuid4().hex}"}}
    with dicom_client(server, dicom_token("Dicom.ReadWrite"), version=2) as owner_v2:
        done = export(
            owner_v2, {"source": identifiers(path_of(dataset)), "destination": destination}
        )
    assert (done["status"], done["results"]["exported"], done["results"]["skipped"]) == (
        "succeeded",
        1,
        0,
    )


def _container_sas_uri(azurite: Azurite, name: str) -> str:
    ContainerClient.from_connection_string(azurite.connection_string, name).create_container()
    token = generate_container_sas(
        EMULATOR_ACCOUNT,
        name,
        account_key=EMULATOR_KEY,
        permission=ContainerSasPermissions(read=True, add=True, create=True, write=True),
        expiry=utcnow() + timedelta(hours=1),
    )
    return f"{azurite.endpoint}/{name}?{token}"


@pytest.mark.azurite
def test_an_export_to_azure_blob_storage_by_sas_uri_or_connection_string(
    owner: httpx.Client, chosen: dict[str, list[Dataset]], azurite: Azurite
) -> None:
    dataset = chosen["exported"][4]
    sas_name, named = f"export-{uuid.uuid4().hex[:12]}", f"named-{uuid.uuid4().hex[:12]}"
    destinations = [
        {"blobContainerUri": _container_sas_uri(azurite, sas_name), "useManagedIdentity": False},
        {"connectionString": azurite.connection_string, "blobContainerName": named},
    ]
    for name, settings in zip((sas_name, named), destinations, strict=True):
        body = {
            "source": identifiers(path_of(dataset), MISSING),
            "destination": {"type": "azureBlob", "settings": settings},
        }
        done = export(owner, body)
        errors = f"{done['operationId']}/errors.log"
        assert done["results"] == {
            "exported": 1,
            "skipped": 1,
            "errorHref": f"{azurite.endpoint}/{name}/{errors}",
        }
        container = ContainerClient.from_connection_string(azurite.connection_string, name)
        result = f"{done['operationId']}/results/{path_of(dataset)}.dcm"
        assert sorted(container.list_blob_names()) == sorted([result, errors])
        content = container.download_blob(result).readall()
        assert content == retrieved(owner, dataset)
        log = container.download_blob(errors).readall().decode()
        assert [json.loads(line)["Identifier"] for line in log.splitlines()] == [MISSING]


def test_a_folder_outside_the_export_folder_is_refused(
    server: Server, owner: httpx.Client, tmp_path: Path
) -> None:
    exports = server.data_dir / "exports"
    exports.mkdir(exist_ok=True)
    link = f"link-{uuid.uuid4().hex}"
    os.symlink(tmp_path, exports / link)
    for path in ("../outside", "/tmp/x", "a/../../b", "a\\..\\b", "", ".", 7, f"{link}/x"):
        destination = {"type": "folder", "settings": {"path": path}}
        response = owner.post("/export", json={"destination": destination})
        assert response.status_code == 400, path
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert "export folder" in response.text
    assert list(tmp_path.iterdir()) == []


def test_each_documented_error(server: Server, owner: httpx.Client, tmp_path: Path) -> None:
    folder = {"type": "folder", "settings": {"path": "errors"}}
    cases: list[tuple[Any, str]] = [
        ({"source": identifiers("1.2")}, "The field 'destination' is required."),
        ({"destination": folder, "extra": 1}, 'The field is not supported: "extra".'),
        ([], "The request body must be a JSON object."),
        ({"destination": {"type": "s3"}}, "The export destination type 's3' is not supported"),
        (
            {"source": {"type": "query"}, "destination": folder},
            "The export source type 'query' is not supported",
        ),
        (
            {"source": identifiers(), "destination": folder},
            "must be a list of 1 to 1000 identifiers",
        ),
        (
            {"source": identifiers(*["1.2"] * 1001), "destination": folder},
            "must be a list of 1 to 1000 identifiers",
        ),
        (
            {"source": identifiers("1.2/3/4/5"), "destination": folder},
            "The identifier '1.2/3/4/5' is invalid",
        ),
        (
            {"source": identifiers("1.2/../3"), "destination": folder},
            "The identifier '1.2/../3' is invalid",
        ),
        (
            {"destination": {"type": "azureblob", "settings": {"useManagedIdentity": True}}},
            "Managed identities are not available in Dicomite",
        ),
        (
            {
                "destination": {
                    "type": "azureblob",
                    "settings": {"blobContainerUri": "https://a.blob.core.windows.net/c"},
                }
            },
            "The 'blobContainerUri' needs a SAS token",
        ),
        (
            {"destination": {"type": "azureblob", "settings": {"connectionString": "x=y"}}},
            "needs either 'blobContainerUri' (with a SAS token) or 'connectionString' and",
        ),
        (
            {
                "destination": {
                    "type": "azureblob",
                    "settings": {"connectionString": "AccountName=a", "blobContainerName": "A_"},
                }
            },
            "The azureblob destination is invalid: invalid container name 'A_'",
        ),
    ]
    for body, message in cases:
        response = owner.post("/export", json=body)
        assert response.status_code == 400, body
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert message in response.text, response.text
    not_json = owner.post("/export", content=b"{}", headers={"Content-Type": "text/plain"})
    assert not_json.status_code == 415
    broken = owner.post("/export", content=b"{", headers={"Content-Type": "application/json"})
    assert (broken.status_code, broken.text) == (400, "The syntax of the request body is invalid.")


def test_only_owners_export(server: Server, dicom_token: TokenFactory) -> None:
    body = {"destination": {"type": "folder", "settings": {"path": "readers"}}}
    with dicom_client(server, dicom_token("Dicom.Read")) as reader:
        response = reader.post("/export", json=body)
        assert response.status_code == 403
        assert "'export'" in response.text
    with dicom_client(server, None) as anonymous:
        assert anonymous.post("/export", json=body).status_code == 401


def test_an_export_that_cannot_write_ends_failed_with_its_error(
    server: Server, owner: httpx.Client, dicom_token: TokenFactory
) -> None:
    """A destination that breaks while the export runs (its folder is a file) ends the operation
    ``failed``: 200, as a finished operation, in both versions, with the error (not the
    server's own folders)."""
    exports = server.data_dir / "exports"
    exports.mkdir(exist_ok=True)
    blocked = f"file-{uuid.uuid4().hex}"
    (exports / blocked).write_bytes(b"not a folder")
    dataset = stored(owner)
    body = {
        "source": identifiers(path_of(dataset)),
        "destination": {"type": "folder", "settings": {"path": blocked}},
    }
    done = export(owner, body)
    assert (done["type"], done["status"]) == ("export", "failed")
    [error] = done["results"]["errors"]
    assert error == "FileExistsError: File exists", error  # the server's own paths are its own
    with dicom_client(server, dicom_token("Dicom.Read"), version=2) as reader:
        again = reader.get(f"/operations/{done['operationId']}")
        assert (again.status_code, again.json()["status"]) == (200, "failed")
    assert (exports / blocked).read_bytes() == b"not a folder"
