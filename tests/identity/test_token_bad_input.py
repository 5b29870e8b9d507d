"""Malformed requests to the token endpoint: always AADSTS JSON, never a 500."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest

from tests.fixtures.directory import DICOM_SCOPE, Admin, RegisteredApp
from tests.fixtures.server import Server
from tests.identity.wire import assert_aadsts, post_token


@pytest.fixture(scope="module")
def app(admin: Admin) -> RegisteredApp:
    return admin.register(roles=("Dicom.Read",))


def encoded(app: RegisteredApp) -> str:
    assert app.secret is not None
    return (
        f"grant_type=client_credentials&client_id={app.app_id}"
        f"&client_secret={quote(app.secret, safe='')}&scope={quote(DICOM_SCOPE, safe='')}"
    )


FORM_HEADERS = {"content-type": "application/x-www-form-urlencoded"}


def test_body_over_one_megabyte_is_413(server: Server, app: RegisteredApp) -> None:
    body = encoded(app) + "&padding=" + "a" * (1024 * 1024)
    response = post_token(server, content=body, headers=FORM_HEADERS)
    assert_aadsts(response, 413, "invalid_request", 9002313)


def test_chunked_body_over_one_megabyte_is_413(server: Server, app: RegisteredApp) -> None:
    def chunks():  # no Content-Length: the limit is enforced while streaming
        yield encoded(app).encode()
        for _ in range(20):
            yield b"&x=" + b"a" * 65536

    response = post_token(server, content=chunks(), headers=FORM_HEADERS)
    assert_aadsts(response, 413, "invalid_request", 9002313)


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_wrong_content_type(server: Server, app: RegisteredApp, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = post_token(server, content=encoded(app).encode(), headers=headers)
    assert_aadsts(response, 400, "invalid_request", 9002313)


def test_duplicate_parameter(server: Server, app: RegisteredApp) -> None:
    body = encoded(app) + "&client_id=other"
    response = post_token(server, content=body, headers=FORM_HEADERS)
    assert_aadsts(response, 400, "invalid_request", 90015)


def test_invalid_utf8(server: Server, app: RegisteredApp) -> None:
    response = post_token(
        server, content=encoded(app).encode() + b"&x=%ff\xff", headers=FORM_HEADERS
    )
    assert_aadsts(response, 400, "invalid_request", 9002313)


def test_get_is_refused(server: Server) -> None:
    with server.client() as client:
        response = client.get(f"/{server.tenant_id}/oauth2/v2.0/token")
    assert_aadsts(response, 400, "invalid_request", 900561)


def test_unknown_fields_are_ignored(server: Server, app: RegisteredApp) -> None:
    body = encoded(app) + "&client_info=1&claims=%7B%7D&x-client-SKU=test"
    response = post_token(server, content=body, headers=FORM_HEADERS)
    assert response.status_code == 200, response.text


def test_http_basic_client_authentication(server: Server, app: RegisteredApp) -> None:
    assert app.secret is not None
    pair = f"{quote(app.app_id, safe='')}:{quote(app.secret, safe='')}"
    headers = {"authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
    data = {"grant_type": "client_credentials", "scope": DICOM_SCOPE}
    response = post_token(server, data, headers=headers)
    assert response.status_code == 200, response.text


def test_http_basic_with_wrong_secret(server: Server, app: RegisteredApp) -> None:
    headers = {"authorization": "Basic " + base64.b64encode(f"{app.app_id}:nope".encode()).decode()}
    data = {"grant_type": "client_credentials", "scope": DICOM_SCOPE}
    assert_aadsts(post_token(server, data, headers=headers), 401, "invalid_client", 7000215)


@pytest.mark.parametrize("header", ["Basic !!!", "Basic " + base64.b64encode(b"\xff\xfe").decode()])
def test_malformed_basic_header(server: Server, header: str) -> None:
    data = {"grant_type": "client_credentials", "scope": DICOM_SCOPE}
    response = post_token(server, data, headers={"authorization": header})
    assert_aadsts(response, 400, "invalid_request", 9002313)


@pytest.mark.parametrize(
    "value", ["", "x" * 5000, "../../etc/passwd", "<script>alert(1)</script>", "\u0000", "é" * 300]
)
def test_hostile_client_id(server: Server, app: RegisteredApp, value: str) -> None:
    data = {
        "grant_type": "client_credentials",
        "client_id": value,
        "client_secret": "s",
        "scope": DICOM_SCOPE,
    }
    response = post_token(server, data)
    assert response.status_code in (400, 401)
    assert response.json()["error"] in ("invalid_request", "unauthorized_client")


@pytest.mark.parametrize("tenant", ["x" * 3000, "%00", "..%2F..%2Fetc"])
def test_hostile_tenant(server: Server, tenant: str) -> None:
    with server.client() as client:
        response = client.post(f"/{tenant}/oauth2/v2.0/token", data={"grant_type": "x"})
    assert response.status_code in (400, 404)
