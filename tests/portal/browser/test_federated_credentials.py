"""A GitHub Actions federated credential added in Chromium: the subject appears as the fields are
filled (htmx asks the domain), the credential is listed, another scenario shows its own fields,
and the credential is deleted after the confirmation.

Screenshots of each step: test-artifacts/portal/<test name>/.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Dialog, Page, expect

from tests.fixtures.browser import Screenshots
from tests.fixtures.server import Server
from tests.portal.browser.test_walkthrough import register, sign_in

pytestmark = pytest.mark.browser
SUBJECT = "repo:contoso/imaging:environment:prod"


def open_federated_tab(page: Page) -> None:
    page.get_by_role("link", name="Certificates & secrets").first.click()
    page.get_by_role("tab", name="Federated credentials (0)").click()
    expect(page.get_by_text("No federated credentials have been added")).to_be_visible()


def fill_github_scenario(page: Page) -> None:
    expect(page.get_by_label("Federated credential scenario")).to_have_value("github")
    page.get_by_label("Organization").fill("contoso")
    page.get_by_label("Repository").fill("imaging")
    page.get_by_label("Entity type").select_option(label="Branch")
    page.get_by_label("Based on selection").fill("main")
    expect(page.locator("#subject-preview")).to_have_text(
        "repo:contoso/imaging:ref:refs/heads/main"
    )
    page.get_by_label("Entity type").select_option(label="Environment")
    page.get_by_label("Based on selection").fill("prod")
    expect(page.locator("#subject-preview")).to_have_text(SUBJECT)


def test_add_a_github_actions_credential_in_the_portal(
    server: Server, page: Page, screenshots: Screenshots
) -> None:
    sign_in(page, server)
    register(page, "Federated pipeline")
    open_federated_tab(page)
    page.get_by_role("link", name="+ Add credential").click()
    fill_github_scenario(page)
    page.get_by_label("Name", exact=True).fill("github-prod")
    page.get_by_label("Description").fill("Deployments from GitHub")
    expect(page.get_by_label("Audience")).to_have_value("api://AzureADTokenExchange")
    screenshots.take("github-scenario")
    page.get_by_role("button", name="Add").click()

    expect(page.get_by_role("status")).to_have_text("Federated credential added.")
    row = page.get_by_role("row", name="github-prod")
    expect(row).to_contain_text(SUBJECT)
    expect(row).to_contain_text("https://token.actions.githubusercontent.com")
    screenshots.take("listed")

    page.get_by_role("link", name="+ Add credential").click()
    page.get_by_label("Federated credential scenario").select_option(label="Kubernetes")
    expect(page.get_by_label("Service account name")).to_be_visible()
    expect(page.get_by_label("Organization")).to_have_count(0)
    screenshots.take("kubernetes-scenario")
    page.get_by_role("link", name="Cancel").click()

    messages: list[str] = []

    def accept(dialog: Dialog) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.get_by_role("button", name="Delete federated credential github-prod").click()
    expect(page.get_by_role("status")).to_have_text("Federated credential deleted.")
    assert messages and messages[0].startswith("Delete the federated credential github-prod?")
    expect(page.get_by_role("tab", name="Federated credentials (0)")).to_be_visible()
