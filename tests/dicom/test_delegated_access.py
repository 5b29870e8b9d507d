"""A person's delegated token reaches the DICOM service with what both its scopes and the
person's DICOM data role allow (tokens issued over the wire: sign-in, code, redemption)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.fixtures.dicom import dicom_client, make_dataset, multipart, stow_headers, to_bytes
from tests.fixtures.directory import DICOM, Admin
from tests.fixtures.server import Server
from tests.identity.people import person_token


def stow(server: Server, token: str, study: str | None = None) -> int:
    body = multipart(to_bytes(make_dataset(study)))
    with dicom_client(server, token) as client:
        return client.post("/studies", content=body, headers=stow_headers()).status_code


def read(server: Server, token: str, study: str) -> int:
    with dicom_client(server, token) as client:
        return client.get(f"/studies/{study}/metadata").status_code


def search(server: Server, token: str) -> int:
    with dicom_client(server, token) as client:
        return client.get("/studies", params={"limit": "1"}).status_code


def test_a_reader_searches_and_reads_but_cannot_store(
    server: Server, admin: Admin, writer: httpx.Client
) -> None:
    study = f"1.2.826.0.1.3680043.8.498.{uuid.uuid4().int % 10**20}"
    stored = writer.post(
        "/studies", content=multipart(to_bytes(make_dataset(study))), headers=stow_headers()
    )
    assert stored.status_code == 200, stored.text
    token = person_token(server, admin, admin.add_person("DICOM Data Reader"))
    assert search(server, token) == 200
    assert read(server, token, study) == 200
    assert stow(server, token) == 403


def test_an_owner_stores_with_user_impersonation(server: Server, admin: Admin) -> None:
    token = person_token(server, admin, admin.add_person("DICOM Data Owner"))
    assert stow(server, token) == 200


def test_an_owner_with_only_the_read_scope_cannot_store(server: Server, admin: Admin) -> None:
    owner = admin.add_person("DICOM Data Owner")
    token = person_token(server, admin, owner, scope=f"{DICOM}/Dicom.Read")
    assert search(server, token) in (200, 204)
    assert stow(server, token) == 403


@pytest.mark.parametrize("scope", ["user_impersonation", "Dicom.ReadWrite"])
def test_a_person_without_a_dicom_role_is_refused_whatever_the_scopes(
    server: Server, admin: Admin, scope: str
) -> None:
    token = person_token(server, admin, admin.add_person(None), scope=f"{DICOM}/{scope}")
    assert search(server, token) == 403
    assert stow(server, token) == 403
