"""What a first-time user saw in Chromium: GUIDs, secrets, URLs and dates broken mid-string, an
empty progress bar, "Dicomite Dicomite", a two-line blade menu entry, no favicon, and a reload
that created a second client secret. Each check reads what the browser laid out.

Screenshots: test-artifacts/portal/<test name>/.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.fixtures.browser import Screenshots
from tests.fixtures.directory import DICOM_SCOPE
from tests.fixtures.server import Server
from tests.portal.browser.test_walkthrough import nav, new_secret, register, sign_in

pytestmark = pytest.mark.browser

# How many lines an element's text is laid out on (a Range has one client rect per line box).
LINES = """el => {
  const range = document.createRange();
  range.selectNodeContents(el);
  return new Set([...range.getClientRects()].filter(r => r.width > 0)
    .map(r => Math.round(r.top))).size;
}"""


def lines_of(locator: Locator) -> list[int]:
    """The number of lines of each element ``locator`` matches that has text (at least one must
    match; an empty cell, such as an unknown client's application ID, has no line)."""
    expect(locator.first).to_be_attached()
    handles = [
        element for element in locator.element_handles() if (element.text_content() or "").strip()
    ]
    return [int(element.evaluate(LINES)) for element in handles]


def no_page_scroll(page: Page) -> None:
    """Long values scroll inside their own box, never the whole page sideways."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def token_requests(server: Server, client_id: str, secret: str) -> None:
    """One successful and one failed sign-in of ``client_id``, for the sign-in log."""
    with server.client() as client:
        for given in (secret, "wrong-secret"):
            client.post(
                server.token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": given,
                    "scope": DICOM_SCOPE,
                },
            )


@pytest.mark.parametrize("width", [1280, 820])
def test_identifiers_urls_and_dates_stay_on_one_line(
    page: Page, server: Server, screenshots: Screenshots, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, server)
    register(page, "A service client with a rather long display name")
    screenshots.take("overview")
    assert lines_of(page.locator(".essentials code")) == [1] * 6  # 3 IDs, 3 endpoints
    no_page_scroll(page)

    new_secret(page, "one line")
    screenshots.take("new-secret")
    assert lines_of(page.locator("#new-secret-value, #new-secret-id")) == [1, 1]
    menu = page.get_by_role("navigation", name="A service client")
    current = menu.get_by_role("link", name="Certificates & secrets")  # in bold: the widest
    assert current.get_attribute("aria-current") == "page" and lines_of(current) == [1]
    no_page_scroll(page)

    token_requests(server, server.client_id, server.client_secret)
    nav(page, "Enterprise applications")
    screenshots.take("enterprise-applications")
    assert set(lines_of(page.locator("table td code, table td.nowrap"))) == {1}
    no_page_scroll(page)

    nav(page, "Sign-in logs")
    expect(page.locator("table.signins .status-bad").first).to_be_visible()
    screenshots.take("sign-in-logs")
    cells = page.locator("table.signins code, table.signins td.nowrap")
    assert set(lines_of(cells)) == {1}
    no_page_scroll(page)


def test_reloading_the_new_secret_page_creates_no_second_secret(
    page: Page, server: Server, screenshots: Screenshots
) -> None:
    sign_in(page, server)
    register(page, "Reload check")
    value, _ = new_secret(page, "reloaded")
    expect(page.get_by_role("tab", name="Client secrets (1)")).to_be_visible()
    page.reload()
    expect(page.get_by_role("tab", name="Client secrets (1)")).to_be_visible()
    expect(page.locator("#new-secret-value")).to_have_count(0)
    assert value not in page.content()
    expect(page.get_by_role("row", name="reloaded")).to_contain_text(value[:3])
    screenshots.take("after-reload")


def test_the_top_bar_names_the_directory(page: Page, server: Server) -> None:
    sign_in(page, server)
    topbar = " ".join(page.locator("header.topbar").inner_text().split())
    assert "Dicomite Dicomite" not in topbar
    assert topbar.startswith("Dicomite Directory: Dicomite"), topbar


def test_the_empty_upload_progress_bar_is_not_shown(
    page: Page, server: Server, screenshots: Screenshots
) -> None:
    sign_in(page, server)
    nav(page, "DICOM studies")
    progress = page.locator("#upload-progress")
    screenshots.take("studies")
    assert progress.get_attribute("hidden") is not None
    assert progress.evaluate("el => getComputedStyle(el).display") == "none"
    expect(progress).to_be_hidden()


def test_every_page_has_a_favicon(page: Page, server: Server) -> None:
    page.goto(f"{server.base_url}/portal/signin")
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert href and href.startswith("/portal/static/")
    answer = page.request.get(f"{server.base_url}{href}")
    assert answer.status == 200 and answer.headers["content-type"].startswith("image/svg+xml")
