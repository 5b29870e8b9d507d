"""Every row of CONTRACT.md's token error table, produced from the wire."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from dicomite.clock import utcnow
from tests.fixtures.directory import DICOM_SCOPE, Admin, RegisteredApp
from tests.fixtures.server import Server
from tests.identity.wire import assert_aadsts, post_token


@pytest.fixture(scope="module")
def app(admin: Admin) -> RegisteredApp:
    return admin.register(roles=("Dicom.Read",))


def form(app: RegisteredApp, **changes: str | None) -> dict[str, str]:
    fields = {
        "grant_type": "client_credentials",
        "client_id": app.app_id,
        "client_secret": app.secret,
        "scope": DICOM_SCOPE,
    } | changes
    return {k: v for k, v in fields.items() if v is not None}


def test_wrong_secret_is_7000215(server: Server, app: RegisteredApp) -> None:
    response = post_token(server, form(app, client_secret="x" * 40))
    body = assert_aadsts(response, 401, "invalid_client", 7000215)
    assert app.app_id in body["error_description"]


def test_secret_id_instead_of_value_is_7000215(server: Server, app: RegisteredApp) -> None:
    response = post_token(server, form(app, client_secret=app.secret_key_id))
    assert_aadsts(response, 401, "invalid_client", 7000215)


def test_expired_secret_is_7000222(server: Server, admin: Admin, app: RegisteredApp) -> None:
    now = utcnow()
    secret, _ = admin.add_secret(app.app_id, start=now - timedelta(days=30), end=now)
    response = post_token(server, form(app, client_secret=secret))
    assert_aadsts(response, 401, "invalid_client", 7000222)


def test_no_secret_or_assertion_is_7000216(server: Server, app: RegisteredApp) -> None:
    response = post_token(server, form(app, client_secret=None))
    assert_aadsts(response, 401, "invalid_client", 7000216)


def test_app_not_in_tenant_is_700016(server: Server, app: RegisteredApp) -> None:
    unknown = str(uuid.uuid4())
    response = post_token(server, form(app, client_id=unknown))
    body = assert_aadsts(response, 400, "unauthorized_client", 700016)
    assert unknown in body["error_description"]


def test_scope_without_default_is_1002012(server: Server, app: RegisteredApp) -> None:
    response = post_token(server, form(app, scope="https://dicom.healthcareapis.azure.com/read"))
    assert_aadsts(response, 400, "invalid_scope", 1002012)


def test_two_resources_in_scope_is_1002012(server: Server, app: RegisteredApp) -> None:
    scope = f"{DICOM_SCOPE} https://graph.microsoft.com/.default"
    assert_aadsts(post_token(server, form(app, scope=scope)), 400, "invalid_scope", 1002012)


def test_resource_not_in_tenant_is_500011(server: Server, app: RegisteredApp) -> None:
    response = post_token(server, form(app, scope="https://nowhere.example/.default"))
    body = assert_aadsts(response, 400, "invalid_resource", 500011)
    assert "https://nowhere.example" in body["error_description"]


def test_v1_resource_not_in_tenant_is_500011(server: Server, app: RegisteredApp) -> None:
    data = form(app, scope=None, resource="api://unknown")
    assert_aadsts(post_token(server, data, version=1), 400, "invalid_resource", 500011)


@pytest.mark.parametrize("tenant", ["00000000-0000-0000-0000-000000000001", "nope.example"])
def test_tenant_not_found_is_90002(server: Server, app: RegisteredApp, tenant: str) -> None:
    response = post_token(server, form(app), tenant=tenant)
    assert_aadsts(response, 400, "invalid_tenant", 90002)


@pytest.mark.parametrize(
    "path",
    [
        "v2.0/.well-known/openid-configuration",
        ".well-known/openid-configuration",
        "discovery/v2.0/keys",
        "discovery/keys",
    ],
)
def test_tenant_not_found_on_discovery_is_90002(server: Server, path: str) -> None:
    with server.client() as client:
        response = client.get(f"/{uuid.uuid4()}/{path}")
    assert_aadsts(response, 400, "invalid_tenant", 90002)


@pytest.mark.parametrize(
    "grant_type", ["password", "urn:ietf:params:oauth:grant-type:jwt-bearer", "implicit"]
)
def test_unsupported_grant_type_is_70003(
    server: Server, app: RegisteredApp, grant_type: str
) -> None:
    response = post_token(server, form(app, grant_type=grant_type))
    body = assert_aadsts(response, 400, "unsupported_grant_type", 70003)
    assert grant_type in body["error_description"]


@pytest.mark.parametrize("missing", ["grant_type", "client_id", "scope"])
def test_missing_parameter_is_900144(server: Server, app: RegisteredApp, missing: str) -> None:
    response = post_token(server, form(app, **{missing: None}))
    body = assert_aadsts(response, 400, "invalid_request", 900144)
    assert f"'{missing}'" in body["error_description"]


def test_v1_missing_resource_is_900144(server: Server, app: RegisteredApp) -> None:
    response = post_token(server, form(app, scope=None), version=1)
    assert_aadsts(response, 400, "invalid_request", 900144)


def test_app_without_service_principal_is_refused(server: Server, admin: Admin) -> None:
    lonely = admin.register(service_principal=False)
    response = post_token(server, form(lonely))
    assert_aadsts(response, 400, "unauthorized_client", 7000229)
