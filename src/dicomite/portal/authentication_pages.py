"""Authentication: an application's platforms (Web, Single-page application, Mobile and desktop
applications) with their redirect URIs, Web's front-channel logout URL and implicit grant
settings, and "Allow public client flows", as on Entra's Authentication blade.

Every change goes through ``directory.update_application`` (or its add/remove helpers), which
applies Entra's redirect-URI rules; their message is shown above the form that was sent.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from dicomite.identity import directory
from dicomite.identity.problems import InvalidInput, NotFound
from dicomite.portal.apps_pages import manageable_app
from dicomite.portal.web import Page, Portal
from dicomite.store.tables import Application

# Graph's platform property -> what the Azure portal calls it, and what it is for.
PLATFORMS = {
    "web": (
        "Web",
        "Server-side web applications that keep a secret and redeem the code on the server.",
    ),
    "spa": (
        "Single-page application",
        "Browser applications (JavaScript) using the authorization code flow with PKCE.",
    ),
    "publicClient": (
        "Mobile and desktop applications",
        "Native applications; besides https and http://localhost they may use their own scheme, "
        "such as myapp://auth.",
    ),
}
PUBLIC_CLIENT_FLOWS = {"yes": True, "no": False}


def routes(portal: Portal) -> list[Route]:
    base = "/apps/{app}/authentication"
    return [
        portal.route(base, authentication),
        portal.route(f"{base}/platform", choose_platform),
        portal.route(f"{base}/platform/{{platform}}", uri_form),
        portal.route(f"{base}/platform/{{platform}}", add_uri, methods=["POST"]),
        portal.route(f"{base}/platform/{{platform}}/remove", remove_uri, methods=["POST"]),
        portal.route(f"{base}/web", save_web, methods=["POST"]),
        portal.route(f"{base}/public-client-flows", save_public_client_flows, methods=["POST"]),
    ]


def authentication(
    page: Page, error: str = "", status: int = 200, logout_url: str | None = None
) -> Response:
    """The blade; after a refused Web form, ``logout_url`` keeps what the person typed."""
    with page.read() as session:
        app = manageable_app(page, session)
    return page.render(
        "app_authentication.html",
        status,
        title=f"{app.display_name} | Authentication",
        app=app,
        error=error,
        platforms=PLATFORMS,
        configured=_configured(app),
        logout_url=app.logout_url or "" if logout_url is None else logout_url,
    )


def _configured(app: Application) -> dict[str, list[str]]:
    """The platforms shown as cards: those with redirect URIs, and Web when any of its other
    settings is in use."""
    shown = {p: directory.redirect_uris_of(app, p) for p in PLATFORMS}
    web_settings = (
        app.logout_url or app.enable_access_token_issuance or app.enable_id_token_issuance
    )
    return {p: uris for p, uris in shown.items() if uris or (p == "web" and web_settings)}


def _back(page: Page, notice: str) -> Response:
    return page.redirect(f"/apps/{page.params['app']}/authentication", notice=notice)


def _platform(page: Page) -> str:
    platform = page.params["platform"]
    if platform not in PLATFORMS:
        raise NotFound("There is no such platform.")
    return platform


def choose_platform(page: Page) -> Response:
    with page.read() as session:
        app = manageable_app(page, session)
    return page.render(
        "app_authentication_platforms.html",
        title=f"{app.display_name} | Add a platform",
        app=app,
        platforms=PLATFORMS,
    )


def uri_form(page: Page, error: str = "", status: int = 200) -> Response:
    platform = _platform(page)
    with page.read() as session:
        app = manageable_app(page, session)
    return page.render(
        "app_authentication_uri.html",
        status,
        title=f"{app.display_name} | Configure {PLATFORMS[platform][0]}",
        app=app,
        platform=platform,
        label=PLATFORMS[platform][0],
        hint=PLATFORMS[platform][1],
        error=error,
        value=page.field("redirect_uri"),
    )


def add_uri(page: Page) -> Response:
    platform = _platform(page)
    try:
        with page.write() as session:
            app = manageable_app(page, session)
            directory.add_redirect_uri(session, app, platform, page.field("redirect_uri"))
    except InvalidInput as problem:
        return uri_form(page, problem.message, 400)
    return _back(page, "redirect-uri-added")


def remove_uri(page: Page) -> Response:
    platform = _platform(page)
    with page.write() as session:
        app = manageable_app(page, session)
        directory.remove_redirect_uri(session, app, platform, page.field("redirect_uri"))
    return _back(page, "redirect-uri-removed")


def save_web(page: Page) -> Response:
    """Front-channel logout URL and the implicit grant checkboxes (unchecked: not sent)."""
    try:
        with page.write() as session:
            directory.update_application(
                session,
                manageable_app(page, session),
                logout_url=page.field("logout_url"),  # empty clears it
                enable_access_token_issuance=page.field("access_tokens") == "true",
                enable_id_token_issuance=page.field("id_tokens") == "true",
            )
    except InvalidInput as problem:
        return authentication(page, problem.message, 400, page.field("logout_url"))
    return _back(page, "authentication-saved")


def save_public_client_flows(page: Page) -> Response:
    choice = page.field("allow_public_client_flows")
    if choice not in PUBLIC_CLIENT_FLOWS:
        raise InvalidInput("Choose Yes or No for Allow public client flows.")
    with page.write() as session:
        directory.update_application(
            session,
            manageable_app(page, session),
            is_fallback_public_client=PUBLIC_CLIENT_FLOWS[choice],
        )
    return _back(page, "authentication-saved")
