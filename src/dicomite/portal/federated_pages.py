"""Certificates & secrets → Federated credentials: add one from a scenario (GitHub Actions,
Kubernetes, or any other issuer) whose subject the domain builds (``federated_scenarios``), and
delete. The list itself is a tab of the credentials page (``credentials_pages``).

While a person types, the form asks ``…/federated/subject`` (htmx) for the subject it would
trust, so the exact string is seen before it is saved.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from dicomite.identity import federated_credentials as federated
from dicomite.identity import federated_scenarios as scenarios
from dicomite.identity.federated_scenarios import GitHubEntity, Trust
from dicomite.identity.problems import Conflict, InvalidInput
from dicomite.portal.apps_pages import changeable_app, manageable_app
from dicomite.portal.web import Page, Portal

SCENARIOS = {
    "github": "GitHub Actions",
    "kubernetes": "Kubernetes",
    "other": "Other issuer",
}
GITHUB_ENTITIES = {
    GitHubEntity.ENVIRONMENT: "Environment",
    GitHubEntity.BRANCH: "Branch",
    GitHubEntity.PULL_REQUEST: "Pull request",
    GitHubEntity.TAG: "Tag",
}
# The form's fields, kept as typed when the form comes back with an error.
FIELDS = (
    "organization",
    "repository",
    "entity",
    "value",
    "cluster_issuer",
    "namespace",
    "service_account",
    "issuer",
    "subject",
    "name",
    "description",
    "audience",
)


def routes(portal: Portal) -> list[Route]:
    base = "/apps/{app}/credentials/federated"
    return [
        portal.route(f"{base}/new", credential_form),
        portal.route(f"{base}/new", add_credential, methods=["POST"]),
        portal.route(f"{base}/subject", subject_preview, methods=["POST"]),
        portal.route(f"{base}/{{credential}}/delete", delete_credential, methods=["POST"]),
    ]


def _scenario(page: Page) -> str:
    chosen = page.field("scenario") or page.query.get("scenario", "")
    return chosen if chosen in SCENARIOS else "github"


def credential_form(page: Page, error: str = "", status: int = 200) -> Response:
    with page.read() as session:
        app = changeable_app(page, session)
    typed = {name: page.field(name) for name in FIELDS}
    typed["audience"] = typed["audience"] or federated.DEFAULT_AUDIENCE
    typed["entity"] = typed["entity"] or GitHubEntity.ENVIRONMENT.value
    return page.render(
        "app_credentials_federated_new.html",
        status,
        title="Add a federated credential",
        app=app,
        error=error,
        scenario=_scenario(page),
        scenarios=SCENARIOS,
        entities=GITHUB_ENTITIES,
        github_issuer=scenarios.GITHUB_ISSUER,
        subject=_preview(page),
        typed=typed,
    )


def trust_of(page: Page) -> Trust:
    """The issuer and subject the form describes, built by the domain for its scenario."""
    scenario = _scenario(page)
    if scenario == "github":
        return scenarios.github_actions(
            page.field("organization"),
            page.field("repository"),
            page.field("entity"),
            page.field("value"),
        )
    if scenario == "kubernetes":
        return scenarios.kubernetes(
            page.field("cluster_issuer"), page.field("namespace"), page.field("service_account")
        )
    return scenarios.other_issuer(page.field("issuer"), page.field("subject"))


def _preview(page: Page) -> str:
    """The subject the fields typed so far make ("" while they make none)."""
    try:
        return trust_of(page).subject
    except InvalidInput:
        return ""


def subject_preview(page: Page) -> Response:
    with page.read() as session:
        manageable_app(page, session)
    return page.render("app_credentials_federated_subject.html", subject=_preview(page))


def add_credential(page: Page) -> Response:
    try:
        trust = trust_of(page)
        with page.write() as session:
            federated.add_federated_credential(
                session,
                changeable_app(page, session),
                page.now,
                name=page.field("name"),
                issuer=trust.issuer,
                subject=trust.subject,
                audiences=[page.field("audience") or federated.DEFAULT_AUDIENCE],
                description=page.field("description") or None,
            )
    except (InvalidInput, Conflict) as problem:
        return credential_form(page, problem.message, 400)
    return _back(page, "federated-added")


def delete_credential(page: Page) -> Response:
    with page.write() as session:
        app = changeable_app(page, session)
        federated.remove_federated_credential(session, app, page.params["credential"])
    return _back(page, "federated-deleted")


def _back(page: Page, notice: str) -> Response:
    return page.redirect(f"/apps/{page.params['app']}/credentials", notice=notice, tab="federated")
