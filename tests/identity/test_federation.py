"""Federated client assertions refused from the wire, each with Entra ID's code, and an
issuer no credential names never fetched."""

from __future__ import annotations

import pytest

from tests.fixtures.directory import DICOM_SCOPE, Admin, RegisteredApp
from tests.fixtures.oidc_issuer import OidcIssuer
from tests.fixtures.server import Server
from tests.identity.wire import assert_aadsts, post_token

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ISSUER = "ci"
SUBJECT = "repo:Org/Repo:ref:refs/heads/main"


@pytest.fixture(scope="module")
def app(federating_admin: Admin, oidc_issuer: OidcIssuer) -> RegisteredApp:
    registered = federating_admin.register(roles=("Dicom.Read",), secret=False)
    federating_admin.add_federated(registered.app_id, oidc_issuer.issuer(ISSUER), SUBJECT)
    return registered


def exchange(server: Server, app_id: str, assertion: str):  # type: ignore[no-untyped-def]
    form = {
        "grant_type": "client_credentials",
        "client_id": app_id,
        "scope": DICOM_SCOPE,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    return post_token(server, form)


def test_a_matching_assertion_gets_a_token(
    federating: Server, app: RegisteredApp, oidc_issuer: OidcIssuer
) -> None:
    token = oidc_issuer.mint(ISSUER, subject=SUBJECT)
    for _ in range(2):  # the same assertion again: no jti replay guard for federation
        response = exchange(federating, app.app_id, token)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("issuer", "subject", "audience", "code"),
    [
        ("ci-other", SUBJECT, "api://AzureADTokenExchange", 700211),
        (ISSUER, SUBJECT.lower(), "api://AzureADTokenExchange", 700213),
        (ISSUER, SUBJECT, "api://SomethingElse", 700212),
    ],
)
def test_each_mismatch_has_its_code(
    federating: Server,
    app: RegisteredApp,
    oidc_issuer: OidcIssuer,
    issuer: str,
    subject: str,
    audience: str,
    code: int,
) -> None:
    before = len(oidc_issuer.requests)
    token = oidc_issuer.mint(issuer, subject=subject, audience=audience)
    body = assert_aadsts(exchange(federating, app.app_id, token), 401, "invalid_client", code)
    assert oidc_issuer.issuer(issuer) in body["error_description"]
    assert len(oidc_issuer.requests) == before  # refused before anything is fetched


def test_an_app_without_federated_credentials_is_70021(
    federating: Server, federating_admin: Admin, oidc_issuer: OidcIssuer
) -> None:
    bare = federating_admin.register(roles=("Dicom.Read",), secret=False)
    token = oidc_issuer.mint(ISSUER, subject=SUBJECT)
    assert_aadsts(exchange(federating, bare.app_id, token), 401, "invalid_client", 70021)


def test_an_expired_assertion_is_700024(
    federating: Server, app: RegisteredApp, oidc_issuer: OidcIssuer
) -> None:
    token = oidc_issuer.mint(ISSUER, subject=SUBJECT, lifetime=-3600)
    assert_aadsts(exchange(federating, app.app_id, token), 401, "invalid_client", 700024)


def test_an_unknown_key_is_700027(
    federating: Server, app: RegisteredApp, oidc_issuer: OidcIssuer
) -> None:
    kid = oidc_issuer.add_key()
    token = oidc_issuer.mint(ISSUER, subject=SUBJECT, kid=kid)
    del oidc_issuer.keys[kid]  # signed with a key the issuer does not publish
    assert_aadsts(exchange(federating, app.app_id, token), 401, "invalid_client", 700027)


def test_a_forged_signature_is_700027(
    federating: Server, app: RegisteredApp, oidc_issuer: OidcIssuer
) -> None:
    header, payload, signature = oidc_issuer.mint(ISSUER, subject=SUBJECT).split(".")
    forged = f"{header}.{payload}.{signature[:-6]}AAAAAA"
    assert_aadsts(exchange(federating, app.app_id, forged), 401, "invalid_client", 700027)
