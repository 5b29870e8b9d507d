"""The DICOM service accepts tokens of a trusted external authority (another Entra ID tenant,
here the test OpenID provider) for the audience configured for it, with their ``roles``
deciding access, and refuses that issuer where it is not configured."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.dicom import dicom_client, make_dataset, multipart, stow_headers, to_bytes
from tests.fixtures.oidc_issuer import OidcIssuer
from tests.fixtures.server import Server, make_server

AUDIENCE = "api://3f1b8e0c-5b1c-4c35-9a63-0b1c2d3e4f50"
ISSUER_NAME = "other-tenant/v2.0"


@pytest.fixture(scope="module")
def trusting(tmp_path_factory: pytest.TempPathFactory, oidc_issuer: OidcIssuer) -> Iterator[Server]:
    authority = f"{oidc_issuer.issuer(ISSUER_NAME)}={AUDIENCE}"
    args = ["--trusted-authority", authority, "--issuer-ca-bundle", str(oidc_issuer.ca_file)]
    running = make_server(tmp_path_factory.mktemp("trusting"), extra_args=args)
    running.start()
    yield running
    running.stop()


def external_token(issuer: OidcIssuer, *roles: str, audience: str = AUDIENCE) -> str:
    return issuer.mint(
        ISSUER_NAME,
        subject="a-service-elsewhere",
        audience=audience,
        roles=list(roles),
        azp="9d3ad3c1-1bd5-4aa1-9c1a-17e6b0d4c0de",
        ver="2.0",
    )


def statuses(server: Server, token: str) -> tuple[int, int]:
    with dicom_client(server, token, 2) as client:
        found = client.get("/studies", params={"limit": "1"}).status_code
        body = multipart(to_bytes(make_dataset()))
        stored = client.post("/studies", content=body, headers=stow_headers()).status_code
    return found, stored


def test_roles_of_a_trusted_authoritys_token_decide(
    trusting: Server, oidc_issuer: OidcIssuer
) -> None:
    found, stored = statuses(trusting, external_token(oidc_issuer, "Dicom.Read"))
    assert found in (200, 204) and stored == 403
    assert statuses(trusting, external_token(oidc_issuer, "Dicom.ReadWrite"))[1] == 200
    assert statuses(trusting, external_token(oidc_issuer)) == (403, 403)


def test_another_audience_of_the_same_authority_is_refused(
    trusting: Server, oidc_issuer: OidcIssuer
) -> None:
    token = external_token(oidc_issuer, "Dicom.Read", audience="api://someone-else")
    with dicom_client(trusting, token, 2) as client:
        response = client.get("/studies")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_an_unconfigured_issuer_is_refused_without_a_fetch(
    server: Server, oidc_issuer: OidcIssuer
) -> None:
    before = len(oidc_issuer.requests)
    with dicom_client(server, external_token(oidc_issuer, "Dicom.ReadWrite"), 2) as client:
        response = client.get("/studies")
    assert response.status_code == 401
    assert "not issued by this tenant" in response.text
    assert len(oidc_issuer.requests) == before
