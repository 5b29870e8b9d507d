"""App registrations: list with search, New registration, Overview, delete."""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from dicomite.identity import directory, policy
from dicomite.identity.problems import InvalidInput
from dicomite.portal.web import Page, Portal
from dicomite.store.tables import Application

# The choices of "Redirect URI (optional)": Graph's platform property -> the Azure portal's name.
PLATFORM_NAMES = {
    "web": "Web",
    "spa": "Single-page application (SPA)",
    "publicClient": "Public client/native (mobile & desktop)",
}
SINGLE_TENANT = "Accounts in this organizational directory only ({tenant} only - Single tenant)"


def routes(portal: Portal) -> list[Route]:
    return [
        portal.route("/apps", list_apps),
        portal.route("/apps/new", new_form),
        portal.route("/apps/new", register, methods=["POST"]),
        portal.route("/apps/{app}", overview),
        portal.route("/apps/{app}/delete", delete, methods=["POST"]),
    ]


def manageable_app(page: Page, session: Session) -> Application:
    """The application in the path, if the signed-in person may manage it (else 404/403)."""
    app = directory.get_application(session, page.tenant_id, page.params["app"])
    policy.require(
        policy.can_manage_application(page.user, app),
        "You can manage only the applications you own. Ask an Application Administrator.",
    )
    return app


def changeable_app(page: Page, session: Session) -> Application:
    """``manageable_app``, when the signed-in person may also change its credentials, API
    permissions or consent: an app holding Microsoft Graph permissions needs a Global
    Administrator (``policy.require_access_change``)."""
    app = manageable_app(page, session)
    policy.require_access_change(session, page.user, app)
    return app


def list_apps(page: Page) -> Response:
    policy.require(policy.can_read_directory(page.user), policy.READ_DIRECTORY)
    search = page.query.get("search", "").strip()[:256]
    with page.read() as session:
        apps = directory.list_applications(session, page.tenant_id, search or None)
        rows = [a for a in apps if policy.can_manage_application(page.user, a)]
    return page.render(
        "apps_list.html",
        title="App registrations",
        apps=rows,
        search=search,
        can_register=policy.can_register_applications(page.user),
    )


def new_form(page: Page, error: str = "", status: int = 200) -> Response:
    policy.require(
        policy.can_register_applications(page.user),
        "Registering applications needs the Application Developer role or higher.",
    )
    return page.render(
        "app_new.html",
        status,
        title="Register an application",
        error=error,
        name=page.field("name"),
        redirect_uri=page.field("redirect_uri"),
        platform=page.field("platform") or "web",
        platforms=PLATFORM_NAMES,
        account_type=SINGLE_TENANT.format(tenant=page.portal.tenant_name),
    )


def register(page: Page) -> Response:
    policy.require(
        policy.can_register_applications(page.user),
        "Registering applications needs the Application Developer role or higher.",
    )
    redirect_uri = page.field("redirect_uri")
    try:
        keyword = directory.redirect_uris_keyword(page.field("platform") or "web")
        with page.write() as session:
            app, _ = directory.register_app(
                session,
                page.tenant_id,
                page.now,
                page.field("name"),
                owner_user_id=page.user.id,
                **{keyword: [redirect_uri] if redirect_uri else []},
            )
    except InvalidInput as problem:
        return new_form(page, problem.message, 400)
    return page.redirect(f"/apps/{app.id}", notice="registered")


def overview(page: Page) -> Response:
    with page.read() as session:
        app = manageable_app(page, session)
    base = f"{page.portal.services.public_url}/{page.tenant_id}"
    endpoints = {
        "OAuth 2.0 token endpoint (v2)": f"{base}/oauth2/v2.0/token",
        "OAuth 2.0 token endpoint (v1)": f"{base}/oauth2/token",
        "OpenID Connect metadata document": f"{base}/v2.0/.well-known/openid-configuration",
    }
    return page.render("app_overview.html", title=app.display_name, app=app, endpoints=endpoints)


def delete(page: Page) -> Response:
    with page.write() as session:
        directory.delete_application(session, changeable_app(page, session))
    return page.redirect("/apps", notice="deleted")
