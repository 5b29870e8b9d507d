"""``{public_url}/graph/oidc/userinfo`` (GET or POST): the UserInfo endpoint where Microsoft Graph
serves it for Entra ID (``https://graph.microsoft.com/oidc/userinfo``), named by discovery's
``userinfo_endpoint``. What it answers is ``identity.userinfo``'s.

The token comes in the ``Authorization`` header only (RFC 6750 §2.1) and is checked by the one
validator, ``identity.resource_server``, for Microsoft Graph's audience. A refusal carries RFC
6750 §3's challenge (``error``, ``error_description``) beside Graph's JSON error body.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dicomite.blocking import run_blocking
from dicomite.clock import utcnow
from dicomite.graph.auth import graph_error
from dicomite.graph.endpoint import graph_error as error_response
from dicomite.graph.endpoint import routing_error
from dicomite.graph.errors import CHALLENGE, Unauthenticated
from dicomite.graph.requestids import RequestIds
from dicomite.identity import userinfo
from dicomite.identity.builtin import GRAPH_AUDIENCES
from dicomite.identity.resource_server import BearerRefusal, Principal, ResourceServer
from dicomite.services import Services


class UserInfo:
    def __init__(self, services: Services) -> None:
        self._store = services.context.store
        self._server = ResourceServer(
            services.published_keys,
            services.public_url,
            services.context.tenant_id,
            GRAPH_AUDIENCES,
        )

    async def endpoint(self, request: Request) -> Response:
        try:
            principal = self._server.authenticate(request.headers.get("authorization"), utcnow())
            userinfo.check_token(principal)
            body = await run_blocking(self._claims, principal)
        except BearerRefusal as refusal:
            return _refused(request, refusal)
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    def _claims(self, principal: Principal) -> dict[str, str]:
        with self._store.read() as session:
            return userinfo.claims(session, principal)


def userinfo_app(services: Services) -> Starlette:
    endpoint = UserInfo(services).endpoint
    return Starlette(
        routes=[Route("/userinfo", endpoint, methods=["GET", "POST"])],
        middleware=[Middleware(RequestIds)],
        exception_handlers={HTTPException: routing_error},
    )


def _refused(request: Request, refusal: BearerRefusal) -> Response:
    no_person = isinstance(refusal, userinfo.NoPerson)
    response = error_response(
        request, Unauthenticated(str(refusal)) if no_person else graph_error(refusal)
    )
    challenge = CHALLENGE
    if refusal.error is not None:  # RFC 6750 §3.1: no error code when no token was sent
        challenge += f', error="{refusal.error}", error_description="{refusal}"'
    response.headers["WWW-Authenticate"] = challenge
    return response
