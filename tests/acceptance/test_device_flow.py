"""A command-line tool signs a person in with the device authorization grant: msal's
``initiate_device_flow`` and ``acquire_token_by_device_flow`` against Dicomite with only the
authority changed, while the person, in a real Chromium elsewhere, opens ``/devicelogin``,
types the code, signs in, confirms and consents."""

from __future__ import annotations

import threading
import time
from typing import Any

import jwt
import msal
import pytest
from playwright.sync_api import Page

from tests.fixtures.browser import Screenshots
from tests.fixtures.directory import DICOM, PASSWORD, Admin
from tests.fixtures.server import Server

pytestmark = pytest.mark.acceptance

IMPERSONATION = f"{DICOM}/user_impersonation"


class Poller:
    """msal's blocking poll, in a thread of its own while the person signs in."""

    def __init__(self, client: msal.PublicClientApplication, flow: dict[str, Any]) -> None:
        self.flow = flow
        self.result: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._poll, args=(client,), daemon=True)
        self._thread.start()

    def _poll(self, client: msal.PublicClientApplication) -> None:
        self.result = client.acquire_token_by_device_flow(self.flow)

    def wait(self, seconds: float) -> dict[str, Any]:
        self._thread.join(seconds)
        return self.result

    def stop(self) -> None:
        self.flow["expires_at"] = 0  # msal checks it every second between polls
        self._thread.join(10)


def test_msal_device_flow_signs_a_person_in_through_chromium(
    server: Server, admin: Admin, page: Page, screenshots: Screenshots
) -> None:
    person = admin.add_person("DICOM Data Reader")
    app = admin.register(secret=False)
    admin.allow_public_client_flows(app.app_id)
    client = msal.PublicClientApplication(
        app.app_id, authority=server.authority, instance_discovery=False, verify=server.ca_file
    )
    flow = client.initiate_device_flow([IMPERSONATION])
    assert "user_code" in flow, flow
    assert flow["verification_uri"] == f"{server.base_url}/devicelogin"
    flow["expires_at"] = time.time() + 120  # whatever happens, msal stops within two minutes
    poller = Poller(client, flow)
    try:
        page.goto(flow["verification_uri"])
        page.get_by_label("Code").fill(flow["user_code"])
        screenshots.take("code")
        page.get_by_role("button", name="Next").click()
        page.get_by_label("Username").fill(person)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("heading", name="Permissions requested").wait_for()
        page.get_by_role("button", name="Accept").click()
        page.get_by_text("You have signed in").wait_for()
        screenshots.take("signed-in")
        result = poller.wait(30)
    finally:
        poller.stop()
    assert "access_token" in result, result
    access = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert (access["scp"], access["upn"], access["roles"]) == (
        "user_impersonation",
        person,
        ["Dicom.Read"],
    )
    assert result["id_token_claims"]["preferred_username"] == person

    account = client.get_accounts()[0]
    refreshed = client.acquire_token_silent([IMPERSONATION], account, force_refresh=True)
    assert refreshed is not None and "access_token" in refreshed, refreshed
