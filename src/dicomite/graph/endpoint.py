"""How one Graph operation runs: authenticate, check roles, read the body, call the handler in
the blocking pool (``dicomite.blocking``: the store is synchronous), and turn every outcome into
a Graph response.

Handlers are plain functions ``(Call) -> Reply`` that parse, call ``identity`` functions and
serialize; they never build HTTP responses or error bodies themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route

from dicomite.blocking import run_blocking
from dicomite.clock import utcnow
from dicomite.graph import odata
from dicomite.graph.auth import GraphAuth
from dicomite.graph.body import read_json
from dicomite.graph.errors import (
    BadRequest,
    GraphError,
    InternalError,
    MethodNotAllowed,
    error_response,
    from_problem,
)
from dicomite.graph.requestids import request_ids
from dicomite.identity import policy
from dicomite.identity.problems import DirectoryProblem
from dicomite.identity.resource_server import Principal
from dicomite.services import Services

log = logging.getLogger(__name__)
GRAPH_PATH = "/graph/v1.0"
ODATA_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
    "charset=utf-8"
)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Call:
    """One authorized request, as a handler sees it."""

    services: Services
    caller: Principal
    request: Request
    body: dict[str, Any]
    now: datetime

    @property
    def tenant_id(self) -> str:
        return self.services.context.tenant_id

    @property
    def actor(self) -> policy.ApiCaller:
        """The caller as ``identity.policy`` judges it: by the Graph roles of its token."""
        return policy.ApiCaller(self.caller.roles)

    def param(self, name: str) -> str:
        return str(self.request.path_params.get(name, ""))

    def has_param(self, name: str) -> bool:
        return name in self.request.path_params

    def query(self, *, max_top: int = odata.MAX_TOP) -> odata.Query:
        return odata.parse(self.request.query_params, max_top=max_top)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.services.context.store.read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self.services.context.store.write() as session:
            yield session

    def context(self, fragment: str) -> str:
        return f"{self.services.public_url}{GRAPH_PATH}/$metadata#{fragment}"

    def entity(self, fragment: str, value: Mapping[str, Any], status: int = 200) -> Reply:
        return Reply(status, {"@odata.context": self.context(fragment), **value})

    def collection(
        self, fragment: str, values: Sequence[dict[str, Any]], next_skip: int | None = None
    ) -> Reply:
        url = f"{self.services.public_url}{self.request.url.path}"
        link = odata.next_link(url, self.request.query_params, next_skip)
        return Reply(200, {"@odata.context": self.context(fragment), "value": list(values)} | link)


Handler = Callable[[Call], Reply]


class Endpoints:
    def __init__(self, services: Services) -> None:
        self._services = services
        tenant_id = services.context.tenant_id
        self._auth = GraphAuth(services.published_keys, services.public_url, tenant_id)

    def route(
        self, method: str, path: str, allowed: frozenset[str], handler: Handler, *, body: bool
    ) -> Route:
        async def endpoint(request: Request) -> Response:
            return await self._dispatch(request, allowed, handler, body)

        return Route(path, endpoint, methods=[method], name=f"{method} {path}")

    async def _dispatch(
        self, request: Request, allowed: frozenset[str], handler: Handler, body: bool
    ) -> Response:
        now = utcnow()
        try:
            caller = self._auth.authorize(request.headers.get("authorization"), now, allowed)
            data = await read_json(request) if body else {}
            call = Call(self._services, caller, request, data, now)
            reply = await run_blocking(handler, call)
        except GraphError as error:
            return graph_error(request, error)
        except DirectoryProblem as problem:
            return graph_error(request, from_problem(problem))
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception:
            log.exception("unexpected error in %s %s", request.method, request.url.path)
            return graph_error(request, InternalError())
        if reply.body is None:
            return Response(status_code=reply.status)
        return JSONResponse(reply.body, status_code=reply.status, media_type=ODATA_JSON)


def graph_error(request: Request, error: GraphError) -> JSONResponse:
    request_id, client_request_id = request_ids(request)
    return error_response(
        error, request_id=request_id, client_request_id=client_request_id, now=utcnow()
    )


async def routing_error(request: Request, exc: Exception) -> Response:
    """Starlette's routing 404/405 in Graph's words (OData: unknown segment is a 400)."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 405:
        error: GraphError = MethodNotAllowed(
            "Specified HTTP method is not allowed for the request uri."
        )
    elif status == 404:
        segment = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        error = BadRequest(f"Resource not found for the segment '{segment[:100]}'.")
    else:
        log.error("unexpected error in %s %s: %r", request.method, request.url.path, exc)
        error = InternalError()
    response = graph_error(request, error)
    if status == 405:
        response.headers["Allow"] = ", ".join(_allowed_methods(request))
    return response


def _allowed_methods(request: Request) -> list[str]:
    """Every method of every route on this path (Starlette reports only the first route's)."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] == Match.PARTIAL:
            methods |= route.methods or set()
    return sorted(methods)
