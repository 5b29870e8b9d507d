"""What a browser does with the portal: payloads stay text, the session cookie stays out of
scripts' reach, and an Application Developer cannot grant consent."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.fixtures.browser import Screenshots
from tests.fixtures.dicom import make_dataset, to_bytes
from tests.fixtures.server import Server
from tests.portal.browser.test_walkthrough import add_dicom_permission, nav, register, sign_in

pytestmark = pytest.mark.browser

# Each would set window.__xss (or add an element) if the page let it become markup.
PAYLOADS = {
    "app": '<img src=x onerror="window.__xss=1">',
    "secret": "<script>window.__xss=2</script>",
    # PN values split at "=" (component groups) and "^" (parts), so no attribute here.
    "patient": "<script>window.alert(3)</script><b>bold</b>",
}


def assert_inert(page: Page, payload: str) -> None:
    expect(page.locator("main")).to_contain_text(payload)
    assert page.evaluate("window.__xss") is None
    assert page.locator("main img[src='x'], main script, main b").count() == 0


def test_payloads_in_names_descriptions_and_patient_names_stay_text(
    server: Server, page: Page, tmp_path: Path, screenshots: Screenshots
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, server)
    register(page, PAYLOADS["app"])
    assert_inert(page, PAYLOADS["app"])
    nav(page, "App registrations")
    assert_inert(page, PAYLOADS["app"])
    page.get_by_role("link", name=PAYLOADS["app"]).first.click()
    page.get_by_role("link", name="Certificates & secrets").first.click()
    page.get_by_role("link", name="New client secret").click()
    page.get_by_label("Description").fill(PAYLOADS["secret"])
    page.get_by_role("button", name="Add").click()
    assert_inert(page, PAYLOADS["secret"])
    page.reload()
    assert_inert(page, PAYLOADS["secret"])

    # The patient name arrives through the studies page's upload (the dropzone's file input).
    dataset = make_dataset(PatientName=PAYLOADS["patient"], PatientID=f"XSS-{uuid.uuid4().hex[:8]}")
    upload = tmp_path / "payload.dcm"
    upload.write_bytes(to_bytes(dataset))
    nav(page, "DICOM studies")
    page.locator(".dropzone input[type=file]").set_input_files(str(upload))
    expect(page.locator("#upload-status")).to_contain_text("Stored 1 of 1")
    page.get_by_label("Patient ID").fill(dataset.PatientID)
    page.get_by_role("button", name="Search").click()
    assert_inert(page, PAYLOADS["patient"])
    page.get_by_role("link", name=PAYLOADS["patient"]).first.click()
    assert_inert(page, PAYLOADS["patient"])
    screenshots.take("patient-name-payload")
    assert dialogs == []


def test_session_cookie_is_out_of_reach_of_scripts(
    server: Server, page: Page, browser_context: BrowserContext
) -> None:
    sign_in(page, server)
    cookie = next(c for c in browser_context.cookies() if c["name"] == "__Host-dicomite-session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    assert "dicomite-session" not in page.evaluate("document.cookie")


def test_an_application_developer_registers_but_cannot_consent(
    server: Server, page: Page, screenshots: Screenshots
) -> None:
    name, password = f"dev-{uuid.uuid4().hex[:8]}@dicomite.localhost", "Develop-3r-pass"
    server.cli(
        "users",
        "add",
        name,
        "--role",
        "application-developer",
        "--password-stdin",
        stdin=f"{password}\n",
    )
    sign_in(page, server, name, password)
    register(page, "Developer's service client")
    add_dicom_permission(page)

    grant = page.get_by_role("button", name="Grant admin consent for Dicomite")
    expect(grant).to_have_attribute("aria-disabled", "true")
    expect(page.locator("main")).to_contain_text("Ask a Global Administrator")
    expect(page.get_by_role("row", name="Dicom.ReadWrite")).to_contain_text("Not granted")
    screenshots.take("developer-consent-disabled")

    consent_url = page.url.split("?")[0].rstrip("/") + "/consent"
    page.goto(consent_url)
    expect(page.locator("main")).to_contain_text("Only an administrator can grant consent")

    page.goto(page.url.rsplit("/permissions", 1)[0])
    page.get_by_role("link", name="Certificates & secrets").first.click()
    page.get_by_role("link", name="New client secret").click()
    page.get_by_label("Description").fill("developer secret")
    page.get_by_role("button", name="Add").click()
    expect(page.locator("#new-secret-value")).not_to_be_empty()
