"""OHIF in Chromium against a running Dicomite: a person opens /viewer/, signs in on Dicomite's
sign-in page (authorization code + PKCE, as the built-in viewer app), finds the studies the
test stored in OHIF's study list, narrows it with a wildcard name search, opens a study and
sees its image (native and RLE frames decoded in the browser); the portal's Open in viewer
gets there with the portal's session. No request fails (4xx/5xx) and no CORS error is logged.
Signing out of the viewer ends the Dicomite session. Screenshots: test-artifacts/viewer/."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    Request,
    Response,
    expect,
)

from tests.fixtures.browser import ARTIFACTS, Screenshots
from tests.fixtures.server import Server
from tests.viewer.studies import Study

pytestmark = pytest.mark.browser

# The shades in a rendered picture; a blank or single-colour viewport has one or two.
DISTINCT_SHADES = """element => {
    const draw = source => {
        const canvas = document.createElement('canvas');
        canvas.width = source.naturalWidth || source.width;
        canvas.height = source.naturalHeight || source.height;
        const context = canvas.getContext('2d');
        context.drawImage(source, 0, 0);
        return context.getImageData(0, 0, canvas.width, canvas.height).data;
    };
    const pixels = draw(element);
    const shades = new Set();
    for (let i = 0; i < pixels.length; i += 4) shades.add(pixels[i]);
    return shades.size;
}"""


class Troubles:
    """What a session must not show: responses 4xx/5xx, requests that failed on the network,
    CORS errors. Requests the page itself abandoned (``net::ERR_ABORTED``: a script still
    loading when OHIF leaves for the sign-in page, an image no longer needed) did not fail."""

    def __init__(self, context: BrowserContext, page: Page) -> None:
        self.found: list[str] = []
        context.on("response", self._response)
        context.on("requestfailed", self._failed)
        page.on("console", self._console)

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.found.append(f"{response.status} {response.request.method} {response.url}")

    def _failed(self, request: Request) -> None:
        if request.failure != "net::ERR_ABORTED":
            self.found.append(f"failed {request.method} {request.url}: {request.failure}")

    def _console(self, message: ConsoleMessage) -> None:
        if "CORS" in message.text or "Access-Control" in message.text:
            self.found.append(f"console {message.type}: {message.text}")


@pytest.fixture
def watched(browser_context: BrowserContext, page: Page) -> Iterator[Troubles]:
    browser_context.set_default_timeout(60_000)  # OHIF's first load on a busy machine
    troubles = Troubles(browser_context, page)
    yield troubles
    assert troubles.found == []


@pytest.fixture
def shots(page: Page, request: pytest.FixtureRequest) -> Screenshots:
    return Screenshots(page, request.node.name, ARTIFACTS.parent / "viewer")


def sign_in(page: Page, server: Server) -> None:
    page.get_by_label("Username").fill(server.admin_username)
    page.get_by_label("Password").fill(server.admin_password)
    page.get_by_role("button", name="Sign in").click()


def shades_soon(page: Page, picture: Locator, seconds: float = 60) -> int:
    """The picture's shade count once it shows more than a flat colour, or at the deadline."""
    deadline = time.monotonic() + seconds
    while (shades := picture.evaluate(DISTINCT_SHADES)) <= 1 and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    return int(shades)


def expect_rendered(page: Page, study: Study) -> None:
    """The viewport and both series' thumbnails show pictures, not a flat colour."""
    expect(page).to_have_url(
        re.compile(re.escape(f"/viewer/viewer?StudyInstanceUIDs={study.uid}") + "$")
    )
    page.get_by_role("button", name="Skip all").click()  # OHIF's first-visit tour
    viewport = page.locator("canvas.cornerstone-canvas").first
    assert shades_soon(page, viewport) > 8
    thumbnails = page.locator('img[src^="data:image"]')
    expect(thumbnails).to_have_count(len(study.series))
    for index in range(len(study.series)):
        assert shades_soon(page, thumbnails.nth(index)) > 8


def test_a_person_signs_in_searches_and_sees_a_study(
    viewer_server: Server,
    stored: tuple[Study, ...],
    page: Page,
    watched: Troubles,
    shots: Screenshots,
) -> None:
    page.goto(f"{viewer_server.base_url}/viewer/")
    sign_in(page, viewer_server)
    for study in stored:
        expect(page.get_by_text(study.patient_name.replace("^", ", "))).to_be_visible()
    page.get_by_role("button", name="Confirm and hide").click()  # OHIF's investigational-use note
    shots.take("study-list")

    with page.expect_request("**/dicom/v2/studies?PatientName=*ich*&*"):
        page.locator('tr[data-filter-row="true"] input').first.fill("ich")
    expect(page.get_by_text("Doe, Jane")).to_be_hidden()
    page.get_by_text("Roe, Richard").click()
    shots.take("search")

    page.get_by_role("button", name="Basic Viewer").click()
    expect_rendered(page, stored[1])
    shots.take("viewer")


def test_open_in_viewer_from_the_portal_needs_no_second_sign_in(
    viewer_server: Server,
    stored: tuple[Study, ...],
    page: Page,
    watched: Troubles,
    shots: Screenshots,
) -> None:
    study = stored[0]
    page.goto(f"{viewer_server.base_url}/portal/dicom/studies/{study.uid}")
    sign_in(page, viewer_server)
    page.get_by_role("link", name="Open in viewer").click()
    expect_rendered(page, study)  # the portal's session signed the viewer in
    shots.take("viewer")


def test_signing_out_of_the_viewer_ends_the_session(
    viewer_server: Server, stored: tuple[Study, ...], page: Page, watched: Troubles
) -> None:
    page.goto(f"{viewer_server.base_url}/viewer/")
    sign_in(page, viewer_server)
    expect(page.get_by_text("Roe, Richard")).to_be_visible()
    page.goto(f"{viewer_server.base_url}/viewer/logout")  # OHIF's sign-out route
    expect(page.get_by_role("heading", name="You have signed out")).to_be_visible()
    page.goto(f"{viewer_server.base_url}/viewer/")
    expect(page.get_by_label("Username")).to_be_visible()  # signed in no more
