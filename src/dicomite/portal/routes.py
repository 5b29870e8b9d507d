"""The portal, mounted at ``{public_url}/portal``: server-rendered pages (Jinja2 + htmx)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from dicomite.identity import directory
from dicomite.portal import (
    apps_pages,
    auth_pages,
    authentication_pages,
    credentials_pages,
    dicom_manage_pages,
    dicom_pages,
    enterprise_pages,
    expose_pages,
    federated_pages,
    permissions_pages,
    signins_pages,
    users_pages,
)
from dicomite.portal.web import Page, Portal


def portal_app(portal: Portal) -> Starlette:
    routes = [
        portal.route("/", home),
        *auth_pages.routes(portal),
        *apps_pages.routes(portal),
        *authentication_pages.routes(portal),
        *permissions_pages.routes(portal),
        *credentials_pages.routes(portal),
        *federated_pages.routes(portal),
        *dicom_pages.routes(portal),
        *dicom_manage_pages.routes(portal),
        *expose_pages.routes(portal),
        *enterprise_pages.routes(portal),
        *signins_pages.routes(portal),
        *users_pages.routes(portal),
        Mount("/static", app=StaticFiles(packages=[("dicomite.portal", "static")]), name="static"),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        message = "There is no such page." if status == 404 else "That method is not allowed here."
        return portal.secured(portal.error_page(request, status, message))

    return Starlette(routes=routes, exception_handlers={HTTPException: not_found})


def home(page: Page) -> Response:
    with page.read() as session:
        app_count = len(directory.list_applications(session, page.tenant_id))
    return page.render("home.html", title="Home", app_count=app_count)
