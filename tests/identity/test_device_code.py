"""The device authorization grant (RFC 8628) on the wire, as Entra ID answers it: the device
authorization endpoint, the device's polls of the token endpoint (pending, slow_down, declined,
expired, unknown, another client's, a confidential client's), and the tokens an approval gives
once. The person approves at ``/devicelogin`` through the pages, as a browser would."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select, update

from dicomite.clock import utcnow
from dicomite.identity.codes import digest
from dicomite.store.tables import DeviceCode, SignIn
from tests.fixtures.directory import DICOM, PASSWORD, Admin, RegisteredApp
from tests.fixtures.server import Server
from tests.identity.wire import assert_aadsts, post_token

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
IMPERSONATION = f"{DICOM}/user_impersonation"
SCOPE = f"{IMPERSONATION} openid profile offline_access"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def start(
    server: Server, client_id: str, scope: str | None = SCOPE, **kwargs: Any
) -> httpx.Response:
    data = {"client_id": client_id, **({"scope": scope} if scope is not None else {})}
    tenant = kwargs.pop("tenant", server.tenant_id)
    with server.client() as client:
        return client.post(f"/{tenant}/oauth2/v2.0/devicecode", data=data, **kwargs)


def started(server: Server, client_id: str, scope: str = SCOPE) -> dict[str, Any]:
    response = start(server, client_id, scope)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def poll(server: Server, client_id: str, device_code: str, **extra: str) -> httpx.Response:
    form = {"grant_type": DEVICE_GRANT, "client_id": client_id, "device_code": device_code}
    return post_token(server, form | extra)


class DeviceLogin:
    """A person's browser at ``/devicelogin``: types the code, signs in, decides."""

    def __init__(self, server: Server) -> None:
        self.client = server.client()
        self.client.follow_redirects = True

    def enter(self, user_code: str, name: str) -> httpx.Response:
        form = self.client.get("/devicelogin")
        signin = self._post("/devicelogin", form, {"code": user_code})
        assert signin.url.path == "/portal/signin", signin.text
        next_field = re.search(r'name="next" value="([^"]+)"', signin.text)
        assert next_field, signin.text
        fields = {"username": name, "password": PASSWORD, "next": next_field.group(1)}
        return self._post("/portal/signin", signin, fields)

    def decide(self, page: httpx.Response, decision: str, user_code: str) -> httpx.Response:
        return self._post("/devicelogin/decide", page, {"decision": decision, "code": user_code})

    def approve(self, user_code: str, name: str) -> httpx.Response:
        confirm = self.enter(user_code, name)
        assert "Are you trying to sign in to" in confirm.text, confirm.text
        page = self.decide(confirm, "continue", user_code)
        if "Permissions requested" in page.text:
            page = self.decide(page, "accept", user_code)
        assert "You have signed in" in page.text, page.text
        return page

    def _post(self, path: str, page: httpx.Response, data: dict[str, str]) -> httpx.Response:
        token = CSRF.search(page.text)
        assert token, page.text
        return self.client.post(path, data={"csrf_token": token.group(1), **data})

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def browser(server: Server) -> Iterator[DeviceLogin]:
    login = DeviceLogin(server)
    yield login
    login.close()


@pytest.fixture(scope="module")
def public_app(admin: Admin) -> RegisteredApp:
    app = admin.register(secret=False)
    admin.allow_public_client_flows(app.app_id)
    return app


@pytest.fixture(scope="module")
def reader(admin: Admin) -> str:
    return admin.add_person("DICOM Data Reader")


def claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def test_codes_come_in_entras_shape(server: Server, public_app: RegisteredApp) -> None:
    response = start(server, public_app.app_id)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store, no-cache"
    body = response.json()
    uri = f"{server.base_url}/devicelogin"
    assert re.fullmatch(r"[ABCDEFGHJKLMNPQRSTUVWXYZ2-9]{9}", body["user_code"])
    assert len(body["device_code"]) >= 43
    assert (body["verification_uri"], body["expires_in"], body["interval"]) == (uri, 900, 5)
    assert body["message"] == (
        f"To sign in, use a web browser to open the page {uri} and enter the code "
        f"{body['user_code']} to authenticate."
    )
    assert started(server, public_app.app_id)["user_code"] != body["user_code"]


def test_discovery_names_the_endpoint_and_the_grant(server: Server) -> None:
    with server.client() as client:
        config = client.get(f"/{server.tenant_id}/v2.0/.well-known/openid-configuration").json()
    assert config["device_authorization_endpoint"] == (f"{server.authority}/oauth2/v2.0/devicecode")
    assert DEVICE_GRANT in config["grant_types_supported"]


def test_an_unknown_client_is_700016(server: Server) -> None:
    response = start(server, "00000000-0000-0000-0000-00000000abcd")
    assert_aadsts(response, 400, "unauthorized_client", 700016)


def test_a_missing_scope_is_900144(server: Server, public_app: RegisteredApp) -> None:
    body = assert_aadsts(start(server, public_app.app_id, None), 400, "invalid_request", 900144)
    assert "'scope'" in body["error_description"]


def test_a_resource_not_in_the_tenant_is_500011(server: Server, public_app: RegisteredApp) -> None:
    response = start(server, public_app.app_id, "https://nowhere.example/read openid")
    assert_aadsts(response, 400, "invalid_resource", 500011)


def test_an_unknown_tenant_is_90002(server: Server, public_app: RegisteredApp) -> None:
    response = start(server, public_app.app_id, tenant="no-such-tenant.example")
    assert_aadsts(response, 400, "invalid_tenant", 90002)


def test_polls_before_the_person_decides_are_pending_then_slow_down(
    server: Server, public_app: RegisteredApp
) -> None:
    codes = started(server, public_app.app_id)
    pending = poll(server, public_app.app_id, codes["device_code"])
    assert_aadsts(pending, 400, "authorization_pending", 70016)
    too_soon = poll(server, public_app.app_id, codes["device_code"])
    body = assert_aadsts(too_soon, 400, "slow_down", 70016)
    assert "every 10 seconds" in body["error_description"]


def test_the_sign_in_log_records_outcomes_not_polls(
    server: Server, admin: Admin, reader: str, browser: DeviceLogin
) -> None:
    """Pending polls (one every 5 s for up to 15 minutes) are not sign-ins; failures and the
    success are."""
    app = admin.register(secret=False)
    admin.allow_public_client_flows(app.app_id)
    codes = started(server, app.app_id)
    assert poll(server, app.app_id, codes["device_code"]).status_code == 400  # pending
    assert poll(server, app.app_id, codes["device_code"]).status_code == 400  # slow_down
    assert poll(server, app.app_id, "not-a-device-code").status_code == 400
    browser.approve(codes["user_code"], reader)
    assert poll(server, app.app_id, codes["device_code"]).status_code == 200
    assert logged_errors(admin, app.app_id, until=0) == [70018, 0]


def logged_errors(admin: Admin, app_id: str, until: int) -> list[int]:
    """The sign-in log's error codes for ``app_id``, once it holds ``until`` (it is written
    in batches, a quarter of a second apart)."""
    for _ in range(40):
        with admin.context.store.read() as session:
            rows = session.scalars(
                select(SignIn.error_code).where(SignIn.app_id == app_id).order_by(SignIn.created_at)
            ).all()
        if until in rows:
            return list(rows)
        time.sleep(0.25)
    raise AssertionError(f"the log never held {until}")


def test_an_approval_gives_tokens_once(
    server: Server, public_app: RegisteredApp, reader: str, browser: DeviceLogin
) -> None:
    codes = started(server, public_app.app_id)
    browser.approve(codes["user_code"], reader)
    response = poll(server, public_app.app_id, codes["device_code"], client_info="1")
    assert response.status_code == 200, response.text
    body = response.json()
    access = claims(body["access_token"])
    assert (access["scp"], access["appid"], access["appidacr"]) == (
        "user_impersonation",
        public_app.app_id,
        "0",
    )
    assert access["roles"] == ["Dicom.Read"] and access["upn"] == reader
    assert claims(body["id_token"])["preferred_username"] == reader
    assert body["scope"] == f"offline_access openid profile {IMPERSONATION}"
    assert body["refresh_token"] and body["client_info"]
    again = poll(server, public_app.app_id, codes["device_code"])
    assert_aadsts(again, 400, "bad_verification_code", 70018)
    refreshed = post_token(
        server,
        {
            "grant_type": "refresh_token",
            "client_id": public_app.app_id,
            "refresh_token": body["refresh_token"],
            "scope": SCOPE,
        },
    )
    assert refreshed.status_code == 200, refreshed.text


def test_without_offline_access_or_openid_only_an_access_token(
    server: Server, public_app: RegisteredApp, reader: str, browser: DeviceLogin
) -> None:
    codes = started(server, public_app.app_id, IMPERSONATION)
    browser.approve(codes["user_code"], reader)
    body = poll(server, public_app.app_id, codes["device_code"]).json()
    assert "access_token" in body, body
    assert not {"refresh_token", "id_token", "client_info"} & set(body)


def test_a_declined_sign_in_is_authorization_declined(
    server: Server, public_app: RegisteredApp, reader: str, browser: DeviceLogin
) -> None:
    codes = started(server, public_app.app_id)
    confirm = browser.enter(codes["user_code"], reader)
    done = browser.decide(confirm, "cancel", codes["user_code"])
    assert "You did not sign in" in done.text
    declined = poll(server, public_app.app_id, codes["device_code"])
    assert_aadsts(declined, 400, "authorization_declined", 70000)


def test_an_expired_code_is_70020(
    server: Server, admin: Admin, public_app: RegisteredApp, reader: str, browser: DeviceLogin
) -> None:
    codes = started(server, public_app.app_id)
    browser.approve(codes["user_code"], reader)
    with admin.context.store.write() as session:  # fifteen minutes later
        session.execute(
            update(DeviceCode)
            .where(DeviceCode.device_code_hash == digest(codes["device_code"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    expired = poll(server, public_app.app_id, codes["device_code"])
    assert_aadsts(expired, 400, "expired_token", 70020)


def test_an_unknown_device_code_is_bad_verification_code(
    server: Server, public_app: RegisteredApp
) -> None:
    response = poll(server, public_app.app_id, "not-a-device-code")
    assert_aadsts(response, 400, "bad_verification_code", 70018)


def test_another_clients_device_code_is_invalid_grant(
    server: Server, admin: Admin, public_app: RegisteredApp
) -> None:
    other = admin.register(secret=False)
    admin.allow_public_client_flows(other.app_id)
    codes = started(server, public_app.app_id)
    response = poll(server, other.app_id, codes["device_code"])
    body = assert_aadsts(response, 400, "invalid_grant", 70000)
    assert "another application" in body["error_description"]


def test_a_confidential_client_must_authenticate(
    server: Server, admin: Admin, reader: str, browser: DeviceLogin
) -> None:
    """Without Allow public client flows the app is confidential (Entra ID: AADSTS7000218)."""
    app = admin.register()
    codes = started(server, app.app_id)
    browser.approve(codes["user_code"], reader)
    refused = poll(server, app.app_id, codes["device_code"])
    assert_aadsts(refused, 401, "invalid_client", 7000218)
    assert app.secret is not None
    issued = poll(server, app.app_id, codes["device_code"], client_secret=app.secret)
    assert issued.status_code == 200, issued.text
    assert claims(issued.json()["access_token"])["appidacr"] == "1"


def test_a_public_client_sending_a_secret_is_700025(
    server: Server, admin: Admin, public_app: RegisteredApp
) -> None:
    codes = started(server, public_app.app_id)
    response = poll(server, public_app.app_id, codes["device_code"], client_secret="x" * 40)
    assert_aadsts(response, 400, "invalid_request", 700025)
