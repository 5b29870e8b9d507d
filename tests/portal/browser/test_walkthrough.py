"""Microsoft's "register a service client application" guide, done in the portal in Chromium,
then used for real: msal gets a token with the secret copied from the page, dicomweb-client stores
a study with it, and the study shows up with thumbnails in the studies browser.

Screenshots of each step: test-artifacts/portal/<test name>/.
"""

from __future__ import annotations

import msal
import numpy as np
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from playwright.sync_api import BrowserContext, Page, expect
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.fixtures.browser import Screenshots
from tests.fixtures.dicom import make_dataset
from tests.fixtures.directory import DICOM_SCOPE
from tests.fixtures.server import Server

pytestmark = pytest.mark.browser


def sign_in(page: Page, server: Server, name: str = "", password: str = "") -> None:
    """Sign in as ``name`` (the bootstrap Global Administrator unless given)."""
    page.goto(f"{server.base_url}/portal/")
    page.get_by_label("Username").fill(name or server.admin_username)
    page.get_by_label("Password").fill(password or server.admin_password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def nav(page: Page, name: str) -> None:
    """Follow a link of the portal's main navigation."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


def register(page: Page, name: str) -> str:
    nav(page, "App registrations")
    page.get_by_role("link", name="New registration").click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("status")).to_contain_text("Successfully created")
    return page.locator("#client-id").inner_text().strip()


def add_dicom_permission(page: Page) -> None:
    page.get_by_role("link", name="API permissions", exact=True).first.click()
    page.get_by_role("link", name="Add a permission").click()
    page.get_by_role("tab", name="APIs my organization uses").click()
    page.get_by_role("searchbox").fill("DICOM")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="DICOM service").first.click()
    page.get_by_role("link", name="Application permissions").click()
    page.get_by_label("Dicom.ReadWrite").check()
    page.get_by_role("button", name="Add permissions").click()


def grant_consent(page: Page, tenant: str) -> None:
    page.get_by_role("link", name=f"Grant admin consent for {tenant}").click()
    page.get_by_role("button", name="Yes").click()
    row = page.get_by_role("row", name="Dicom.ReadWrite")
    expect(row).to_contain_text(f"Granted for {tenant}")


def new_secret(page: Page, description: str) -> tuple[str, str]:
    page.get_by_role("link", name="Certificates & secrets").first.click()
    page.get_by_role("link", name="New client secret").click()
    page.get_by_label("Description").fill(description)
    expect(page.get_by_label("Expires")).to_have_value("180")
    page.get_by_role("button", name="Add").click()
    value = page.locator("#new-secret-value").inner_text().strip()
    secret_id = page.locator("#new-secret-id").inner_text().strip()
    return value, secret_id


def copy_value(page: Page, context: BrowserContext, origin: str) -> str:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
    page.get_by_role("button", name="Copy Value").click()
    return str(page.evaluate("navigator.clipboard.readText()"))


def ct_slice(study: str, series: str, number: int) -> Dataset:
    """A 128 x 128 phantom: a bright disc whose radius changes along the series."""
    y, x = np.mgrid[-64:64, -64:64]
    disc = (x**2 + y**2 < (20 + 8 * number) ** 2).astype(np.uint16)
    pixels = (disc * 1200 + (x + 64) * 4).astype(np.uint16)
    dataset = make_dataset(
        study,
        series,
        frames=1,
        PatientName="Walkthrough^Portal",
        PatientID="WALK-1",
        StudyDescription="Portal walkthrough",
        InstanceNumber=number,
        Rows=128,
        Columns=128,
        NumberOfFrames=None,
        WindowCenter=600,
        WindowWidth=1400,
    )
    dataset.PixelData = pixels.tobytes()
    return dataset


def test_register_a_service_client_in_the_portal(
    server: Server, page: Page, browser_context: BrowserContext, screenshots: Screenshots
) -> None:
    tenant = "Dicomite"
    sign_in(page, server)
    screenshots.take("signed-in")

    client_id = register(page, "Walkthrough service client")
    screenshots.take("overview")

    add_dicom_permission(page)
    row = page.get_by_role("row", name="Dicom.ReadWrite")
    expect(row).to_contain_text("Application")
    expect(row).to_contain_text(f"Not granted for {tenant}")
    screenshots.take("permission-added")

    grant_consent(page, tenant)
    screenshots.take("consent-granted")

    value, secret_id = new_secret(page, "walkthrough")
    assert len(value) >= 32 and secret_id
    screenshots.take("secret-created")
    assert copy_value(page, browser_context, server.base_url) == value

    page.get_by_role("link", name="Overview").click()
    page.get_by_role("link", name="Certificates & secrets").first.click()
    expect(page.get_by_role("row", name="walkthrough")).to_contain_text(value[:3])
    assert value not in page.content()
    screenshots.take("secret-masked")

    token = msal.ConfidentialClientApplication(
        client_id,
        client_credential=value,
        authority=server.authority,
        instance_discovery=False,
        verify=server.ca_file,
    ).acquire_token_for_client(scopes=[DICOM_SCOPE])
    assert "access_token" in token, token

    session = requests.Session()
    session.verify = server.ca_file
    session.headers["Authorization"] = f"Bearer {token['access_token']}"
    dicomweb = DICOMwebClient(f"{server.base_url}/dicom/v1", session=session)
    study, series = generate_uid(), generate_uid()
    dicomweb.store_instances([ct_slice(study, series, n) for n in range(1, 4)])

    nav(page, "DICOM studies")
    page.get_by_role("link", name="Walkthrough, Portal").click()
    thumbnails = page.locator("img.thumbnail")
    expect(thumbnails).to_have_count(3)
    for index in range(3):
        thumbnails.nth(index).scroll_into_view_if_needed()
        expect(thumbnails.nth(index)).to_have_js_property("complete", True)
        assert thumbnails.nth(index).evaluate("img => img.naturalWidth") > 0
    screenshots.take("study-thumbnails")
