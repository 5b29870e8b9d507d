"""Every main page: labelled controls, named links and buttons, reachable by keyboard, and no
sideways scrolling on a laptop or a tablet."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.fixtures.server import Server
from tests.portal.browser.test_walkthrough import sign_in

pytestmark = pytest.mark.browser

PAGES = [
    "/portal/",
    "/portal/apps",
    "/portal/apps/new",
    "/portal/enterprise",
    "/portal/enterprise/consent",
    "/portal/signins",
    "/portal/users",
    "/portal/users/new",
    "/portal/dicom/studies",
    "/portal/dicom/tags",
]

UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button, a[href]')]
  .filter(el => el.type !== 'hidden' && el.offsetParent !== null)
  .filter(el => {
    const named = (el.labels && el.labels.length) || el.getAttribute('aria-label')
      || el.getAttribute('aria-labelledby') || el.getAttribute('title');
    const text = (el.innerText || el.value || '').trim();
    return !(named || (['BUTTON', 'A'].includes(el.tagName) && text));
  })
  .map(el => el.outerHTML.slice(0, 120))"""


def app_pages(page: Page, server: Server) -> list[str]:
    """The blades of one registered application."""
    page.goto(f"{server.base_url}/portal/apps/new")
    page.get_by_label("Name", exact=True).fill("Accessibility check")
    page.get_by_label("Redirect URI (optional)", exact=True).fill("https://app.example/cb")
    page.get_by_role("button", name="Register").click()
    base = page.url.split("?")[0].removeprefix(server.base_url)
    return [
        base,
        f"{base}/permissions",
        f"{base}/permissions/add",
        f"{base}/credentials",
        f"{base}/credentials/secrets/new",
        f"{base}/credentials?tab=federated",
        f"{base}/credentials/federated/new",
        f"{base}/credentials/federated/new?scenario=kubernetes",
        f"{base}/credentials/federated/new?scenario=other",
        f"{base}/expose",
        f"{base}/authentication",  # with the Web card: the URI given at registration
        f"{base}/authentication/platform",
        f"{base}/authentication/platform/publicClient",
    ]


@pytest.mark.parametrize("width", [1280, 820])
def test_main_pages_are_labelled_and_fit_the_screen(page: Page, server: Server, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, server)
    for path in PAGES + app_pages(page, server):
        page.goto(f"{server.base_url}{path}")
        assert page.evaluate(UNLABELLED) == [], path
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at {width}px"


def test_the_skip_link_and_the_keyboard_reach_the_content(page: Page, server: Server) -> None:
    sign_in(page, server)
    page.goto(f"{server.base_url}/portal/apps")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent.trim()")
    assert focused  # the next stop is a control inside the page, not the browser chrome
