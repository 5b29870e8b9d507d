"""``create_app(settings)``: one ASGI app serving identity, management API, DICOM and portal.

Nothing happens at import time; ``dicomite serve`` prepares the store before workers start
and each worker builds its app through ``create_app_from_env`` (uvicorn's factory mode).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from dicomite.bootstrap import open_context
from dicomite.graph.routes import graph_app
from dicomite.identity.http import IdentityRoutes
from dicomite.services import Services, build_services
from dicomite.settings import Settings


def create_app(settings: Settings) -> Starlette:
    services = build_services(open_context(settings))

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        services.signins.start()
        try:
            yield
        finally:
            services.signins.stop()
            services.context.store.dispose()

    routes = [
        Route("/healthz", _health),
        Mount("/graph/v1.0", app=graph_app(services)),
        *IdentityRoutes(services.tokens, services.keys).routes(),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.services = services
    return app


def create_app_from_env() -> Starlette:
    return create_app(Settings())


async def _health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


__all__ = ["Services", "create_app", "create_app_from_env"]
