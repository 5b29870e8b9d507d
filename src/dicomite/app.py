"""``create_app(settings)``: one ASGI app serving identity, management API, DICOM and portal.

Nothing happens at import time; ``dicomite serve`` prepares the store before workers start
and each worker builds its app through ``create_app_from_env`` (the server's factory mode).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from dicomite.arm.routes import ArmRoutes
from dicomite.blocking import run_blocking
from dicomite.bootstrap import open_context
from dicomite.client_address import trusted_proxies
from dicomite.cors import (
    EXPOSED_HEADERS,
    METHODS,
    PREFLIGHT_MAX_AGE_SECONDS,
    REQUEST_HEADERS,
    CorsPolicy,
    cors_policy,
)
from dicomite.dicom.http.routes import dicom_app
from dicomite.graph.endpoint import GRAPH_PATH
from dicomite.graph.endpoint import routing_error as graph_routing_error
from dicomite.graph.routes import graph_app
from dicomite.graph.userinfo import userinfo_app
from dicomite.identity.http import IdentityRoutes, TokenEndpoint
from dicomite.portal import authorize_pages, device_pages
from dicomite.portal.routes import portal_app
from dicomite.portal.web import Portal
from dicomite.services import Services, build_services
from dicomite.settings import Settings
from dicomite.viewer.web import viewer_routes


def create_app(settings: Settings) -> Starlette:
    services = build_services(open_context(settings))

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        services.signins.start()
        services.dicom.start_sweeper()
        services.dicom.operations.start()
        # Startup objects live for the whole process: moving them out of the collector's
        # generations keeps full collections (and their latency spikes) short.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:  # joins threads and writes the last sign-in log rows: in the pool
            await run_blocking(_stop, services)

    cors = cors_policy(settings.cors_origins)
    portal = Portal(services)
    routes = [
        Route("/healthz", _health),
        Mount("/graph/v1.0", app=_cross_origin(graph_app(services), cors)),
        Mount("/graph/oidc", app=_cross_origin(userinfo_app(services), cors)),
        Mount("/dicom/v1", app=_cross_origin(dicom_app(services.dicom, 1), cors)),
        Mount("/dicom/v2", app=_cross_origin(dicom_app(services.dicom, 2), cors)),
        Mount("/portal", app=portal_app(portal)),
        *authorize_pages.routes(portal),
        *device_pages.routes(portal),
        Route("/", _to_portal),
        *ArmRoutes(services).routes(),
        *IdentityRoutes(services.tokens, services.keys).routes(),
        *viewer_routes(services.context),  # last: the build's file names shadow no route
    ]
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: _routing_error}
    )
    app.state.services = services
    trusted = trusted_proxies(settings.forwarded_allow_ips)
    app.add_middleware(TokenFastPath, endpoint=TokenEndpoint(services.tokens, trusted))
    return app


def _cross_origin(app: ASGIApp, policy: CorsPolicy) -> ASGIApp:
    """``app`` answering CORS preflights and marking responses for the policy's origins; as it
    is when no origin is allowed (then browsers refuse cross-origin calls, the default)."""
    if not policy.enabled:
        return app
    return CORSMiddleware(
        app,
        allow_origins=policy.origins,
        allow_methods=METHODS,
        allow_headers=REQUEST_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
    )


class TokenFastPath:
    """Plain ASGI middleware sending token requests straight to the token endpoint."""

    def __init__(self, app: ASGIApp, endpoint: TokenEndpoint) -> None:
        self._app = app
        self._endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self._endpoint.target(scope)
        if target is None:
            await self._app(scope, receive, send)
        else:
            await self._endpoint.serve(target, scope, receive, send)


def _stop(services: Services) -> None:
    services.dicom.operations.stop()
    services.dicom.stop_sweeper()
    services.signins.stop()
    services.context.store.dispose()


def create_app_from_env() -> Starlette:
    return create_app(Settings())


async def _routing_error(request: Request, exc: Exception) -> Response:
    """404/405 from the top-level router (paths no mount matched) in the format of the API
    the path belongs to."""
    if request.url.path.startswith(GRAPH_PATH):
        return await graph_routing_error(request, exc)
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = "NotFound" if status == 404 else "MethodNotAllowed"
    body = {"error": {"code": code, "message": "No such endpoint."}}
    return JSONResponse(body, status_code=status)


async def _to_portal(_request: Request) -> Response:
    return RedirectResponse("/portal/", status_code=307)


async def _health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


__all__ = ["Services", "create_app", "create_app_from_env"]
