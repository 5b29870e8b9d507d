"""The device login page (``/devicelogin``): its forms' CSRF tokens, the way through the
portal's sign-in and back, wrong codes counted per address, and consent only an administrator
may give, which the device is told of."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest

from dicomite.bootstrap import Context
from dicomite.clock import utcnow
from dicomite.identity import directory
from dicomite.portal.auth_pages import HOME, safe_next
from tests.portal.conftest import CSRF_FIELD, PASSWORD, PortalClient, sign_in

DICOM = "https://dicom.healthcareapis.azure.com"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass
class Device:
    """A command-line tool of the tenant: asks for codes and polls, as msal would."""

    client: PortalClient
    tenant_id: str
    app_id: str

    def codes(self, scope: str = "openid") -> dict[str, Any]:
        data = {"client_id": self.app_id, "scope": scope}
        response = self.client.post(f"/{self.tenant_id}/oauth2/v2.0/devicecode", data=data)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def polled(self, device_code: str) -> str:
        form = {"grant_type": DEVICE_GRANT, "client_id": self.app_id, "device_code": device_code}
        answer = self.client.post(f"/{self.tenant_id}/oauth2/v2.0/token", data=form)
        return str(answer.json().get("error"))


@pytest.fixture
def device(portal_client: PortalClient, portal_context: Context) -> Device:
    with portal_context.store.write() as session:
        app, _ = directory.register_app(session, portal_context.tenant_id, utcnow(), "CLI tool")
        directory.update_application(session, app, is_fallback_public_client=True)
        return Device(portal_client, portal_context.tenant_id, app.app_id)


# The code form's own token (a signed-in page also carries the session's, for signing out).
CODE_FORM_TOKEN = re.compile(
    r'action="/devicelogin">\s*<input [^>]*name="csrf_token" value="([^"]+)"'
)


def enter(client: PortalClient, code: str, **kwargs: Any) -> Any:
    token = CODE_FORM_TOKEN.search(client.get("/devicelogin").text)
    assert token
    return client.post("/devicelogin", data={"csrf_token": token.group(1), "code": code}, **kwargs)


def test_the_code_form_is_a_hardened_portal_page(portal_client: PortalClient) -> None:
    response = portal_client.get("/devicelogin")
    assert response.status_code == 200
    assert '<label for="code">Code</label>' in response.text
    assert ">Next</button>" in response.text
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-dicomite-device-csrf=") and "samesite=strict" in cookie.lower()


def test_the_code_form_needs_its_csrf_cookie(device: Device) -> None:
    codes = device.codes()
    device.client.get("/devicelogin")
    forged = {"csrf_token": "forged", "code": codes["user_code"]}
    response = device.client.post("/devicelogin", data=forged, follow_redirects=False)
    assert response.status_code == 403


def test_a_code_leads_through_the_sign_in_and_back(
    device: Device, person: Callable[[str], str]
) -> None:
    user_code = device.codes()["user_code"]
    typed = f"{user_code[:4].lower()}-{user_code[4:]}"  # read leniently
    response = enter(device.client, typed, follow_redirects=False)
    assert response.status_code == 303
    back = f"/devicelogin?code={user_code}"
    assert response.headers["location"] == f"/portal/signin?{urlencode({'next': back})}"
    signin = device.client.get(response.headers["location"])
    assert f'name="next" value="{back}"' in signin.text
    token = CSRF_FIELD.search(signin.text)
    assert token
    form = {"csrf_token": token.group(1), "username": person("reader"), "password": PASSWORD}
    signed_in = device.client.post(
        "/portal/signin", data=form | {"next": back}, follow_redirects=False
    )
    assert signed_in.headers["location"] == back
    confirm = device.client.get(back)
    assert "Are you trying to sign in to CLI tool?" in confirm.text
    assert ">Continue</button>" in confirm.text


@pytest.mark.parametrize("target", ["/deviceloginx", "//devicelogin", "/devicelogin/../portal"])
def test_the_sign_in_returns_only_to_the_device_login_itself(target: str) -> None:
    assert safe_next(target) == HOME
    assert safe_next("/devicelogin?code=ABC") == "/devicelogin?code=ABC"


def test_wrong_codes_lock_the_address(device: Device) -> None:
    user_code = device.codes()["user_code"]
    statuses = [enter(device.client, "BBBBBBBBB").status_code for _ in range(10)]
    assert statuses == [400] * 9 + [429]
    locked = enter(device.client, user_code)  # even the right code waits now
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert "too many wrong codes" in locked.text


def test_decisions_need_the_session_csrf_token(
    device: Device, signed_in: Callable[[str], PortalClient]
) -> None:
    codes = device.codes()
    forged = {"csrf_token": "forged", "code": codes["user_code"], "decision": "continue"}
    assert signed_in("reader").post("/devicelogin/decide", data=forged).status_code == 403
    assert device.polled(codes["device_code"]) == "authorization_pending"


def test_permissions_only_an_administrator_may_grant_are_refused_and_the_device_told(
    device: Device, signed_in: Callable[[str], PortalClient]
) -> None:
    codes = device.codes(f"{DICOM}/Dicom.ReadWrite")  # "Admin" consent: not for a reader
    decision = {"code": codes["user_code"], "decision": "continue"}
    decided = signed_in("reader").submit("/devicelogin/decide", decision)
    assert decided.status_code == 400 and "AADSTS65001" in decided.text
    assert device.polled(codes["device_code"]) == "authorization_declined"


def test_a_decided_code_cannot_be_entered_again(
    device: Device, signed_in: Callable[[str], PortalClient]
) -> None:
    user_code = device.codes()["user_code"]
    client = signed_in("reader")
    cancel = {"code": user_code, "decision": "cancel"}
    assert "You did not sign in" in client.submit("/devicelogin/decide", cancel).text
    again = client.get(f"/devicelogin?code={user_code}")
    assert again.status_code == 400 and "Check the code and try again" in again.text


def test_signed_in_already_the_code_leads_to_the_confirmation(
    device: Device, person: Callable[[str], str]
) -> None:
    sign_in(device.client, person("reader"), PASSWORD)
    confirm = enter(device.client, device.codes()["user_code"])
    assert "Are you trying to sign in to CLI tool?" in confirm.text
    assert re.search(r'name="code" value="[A-Z2-9]{9}"', confirm.text)
