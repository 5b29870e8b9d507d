"""Certificates & secrets → Federated credentials: scenarios that build the subject, the list,
delete, refusals shown on the form, and who may do it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from dicomite.bootstrap import Context
from dicomite.identity import directory, federated_credentials
from dicomite.store.tables import FederatedIdentityCredential
from tests.portal.conftest import AdminApp, PortalClient, register_app
from tests.portal.test_permissions_pages import XSS

SignedIn = Callable[[str], PortalClient]
GITHUB = "https://token.actions.githubusercontent.com"


def stored(context: Context, app: str) -> list[FederatedIdentityCredential]:
    with context.store.read() as session:
        found = directory.get_application(session, context.tenant_id, app)
        return list(federated_credentials.federated_credentials_of(session, found))


def add(client: PortalClient, app: str, scenario: str, **fields: str):  # type: ignore[no-untyped-def]
    form = {"scenario": scenario, "name": "deploy", **fields}
    return client.submit(f"/portal/apps/{app}/credentials/federated/new", form)


GITHUB_PROD = {"organization": "contoso", "repository": "imaging", "entity": "environment"}


@pytest.mark.parametrize(
    ("scenario", "fields", "issuer", "subject"),
    [
        (
            "github",
            {**GITHUB_PROD, "value": "prod"},
            GITHUB,
            "repo:contoso/imaging:environment:prod",
        ),
        (
            "github",
            {**GITHUB_PROD, "entity": "branch", "value": "main"},
            GITHUB,
            "repo:contoso/imaging:ref:refs/heads/main",
        ),
        (
            "github",
            {**GITHUB_PROD, "entity": "pull_request"},
            GITHUB,
            "repo:contoso/imaging:pull_request",
        ),
        (
            "kubernetes",
            {
                "cluster_issuer": "https://oidc.cluster.example/abc/",
                "namespace": "imaging",
                "service_account": "uploader",
            },
            "https://oidc.cluster.example/abc/",
            "system:serviceaccount:imaging:uploader",
        ),
        (
            "other",
            {"issuer": "https://idp.example", "subject": "workload-7"},
            "https://idp.example",
            "workload-7",
        ),
    ],
)
def test_a_scenario_builds_the_credential(
    admin_app: AdminApp,
    portal_context: Context,
    scenario: str,
    fields: dict[str, str],
    issuer: str,
    subject: str,
) -> None:
    admin, app = admin_app
    response = add(admin, app, scenario, description="CI", **fields)
    assert response.status_code == 200, response.text
    assert "Federated credential added." in response.text
    assert 'aria-selected="true">Federated credentials (1)</a>' in response.text
    assert f"<code>{subject}</code>" in response.text and f"<code>{issuer}</code>" in response.text
    [credential] = stored(portal_context, app)
    assert (credential.name, credential.issuer, credential.subject) == ("deploy", issuer, subject)
    assert credential.audiences == [federated_credentials.DEFAULT_AUDIENCE]
    assert credential.description == "CI"


def test_the_tab_lists_and_deletes(admin_app: AdminApp, portal_context: Context) -> None:
    admin, app = admin_app
    empty = admin.get(f"/portal/apps/{app}/credentials?tab=federated").text
    assert "No federated credentials have been added" in empty and "+ Add credential" in empty
    assert 'aria-selected="false">Client secrets (0)</a>' in empty
    add(admin, app, "github", **GITHUB_PROD, value="prod")
    [credential] = stored(portal_context, app)
    action = f"/portal/apps/{app}/credentials/federated/{credential.id}/delete"
    page = admin.get(f"/portal/apps/{app}/credentials?tab=federated").text
    assert f'action="{action}" data-confirm="Delete the federated credential deploy?' in page
    removed = admin.submit(action)
    assert "Federated credential deleted." in removed.text
    assert "Federated credentials (0)" in removed.text
    assert stored(portal_context, app) == []


def test_each_scenario_shows_its_own_fields(admin_app: AdminApp) -> None:
    admin, app = admin_app
    url = f"/portal/apps/{app}/credentials/federated/new"
    github = admin.get(url).text
    assert '<option value="github" selected>GitHub Actions</option>' in github
    assert f"<code>{GITHUB}</code>" in github and 'name="organization"' in github
    assert 'value="api://AzureADTokenExchange"' in github
    kubernetes = admin.get(url, params={"scenario": "kubernetes"}).text
    assert 'name="service_account"' in kubernetes and 'name="organization"' not in kubernetes
    other = admin.get(url, params={"scenario": "other"}).text
    assert 'name="subject"' in other and 'name="namespace"' not in other


def test_the_subject_preview_is_the_domains(admin_app: AdminApp) -> None:
    admin, app = admin_app
    url = f"/portal/apps/{app}/credentials/federated/subject"
    fields = {"scenario": "github", **GITHUB_PROD, "entity": "tag", "value": "v1"}
    headers = {"x-csrf-token": admin.csrf(), "hx-request": "true"}
    preview = admin.post(url, data=fields, headers=headers)
    assert preview.status_code == 200
    assert preview.text.strip() == "<code>repo:contoso/imaging:ref:refs/tags/v1</code>"
    unfinished = admin.post(url, data={**fields, "repository": ""}, headers=headers)
    assert "Fill in the fields above" in unfinished.text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "a b"}, "Federated identity credential name &#39;a b&#39; is invalid."),
        ({"repository": ""}, "Enter the GitHub repository."),
        ({"value": ""}, "Enter the GitHub environment name."),
        ({"audience": "a" * 601}, "Audiences must be at most 600 characters."),
    ],
)
def test_refusals_are_shown_on_the_form_with_what_was_typed(
    admin_app: AdminApp,
    portal_context: Context,
    fields: dict[str, str],
    message: str,
) -> None:
    admin, app = admin_app
    response = add(admin, app, "github", **{**GITHUB_PROD, "value": "prod", **fields})
    assert response.status_code == 400
    assert message in response.text
    assert 'value="contoso"' in response.text or fields.get("organization") == ""
    assert stored(portal_context, app) == []


def test_a_taken_name_or_subject_is_refused(admin_app: AdminApp, portal_context: Context) -> None:
    admin, app = admin_app
    add(admin, app, "github", **GITHUB_PROD, value="prod")
    again = add(admin, app, "github", **GITHUB_PROD, value="qa")
    assert again.status_code == 400
    assert "FederatedIdentityCredential with name deploy already exists." in again.text
    same = add(admin, app, "github", **{**GITHUB_PROD, "value": "prod"}, name="other")
    assert same.status_code == 400 and "must be unique for the application" in same.text
    assert len(stored(portal_context, app)) == 1


def test_descriptions_and_subjects_are_escaped(admin_app: AdminApp) -> None:
    admin, app = admin_app
    add(admin, app, "other", issuer="https://idp.example", subject=XSS, description=XSS)
    page = admin.get(f"/portal/apps/{app}/credentials?tab=federated").text
    assert XSS not in page and "&lt;script&gt;alert(" in page


def test_developer_manages_the_federated_credentials_of_their_own_apps_only(
    signed_in: SignedIn, portal_context: Context
) -> None:
    developer = signed_in("developer")
    own = register_app(developer)
    assert add(developer, own, "github", **GITHUB_PROD, value="prod").status_code == 200
    other = register_app(signed_in("global-admin"))
    base = f"/portal/apps/{other}/credentials/federated"
    refusals: list[Any] = [
        developer.get(f"{base}/new"),
        add(developer, other, "github", **GITHUB_PROD, value="prod"),
        developer.submit(f"{base}/subject", {"scenario": "other"}),
    ]
    assert [r.status_code for r in refusals] == [403, 403, 403]
    assert stored(portal_context, other) == []
    assert re.search(
        r"Federated credentials \(1\)",
        developer.get(f"/portal/apps/{own}/credentials?tab=federated").text,
    )
