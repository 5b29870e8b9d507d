"""Thin routes of the resource-manager surface: check ``api-version`` and the bearer token, read
the tenant in the blocking pool, answer ARM's JSON or ARM's error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dicomite.arm import resources
from dicomite.arm.auth import ArmAuth
from dicomite.arm.errors import ArmError, MissingApiVersion, SubscriptionNotFound
from dicomite.blocking import run_blocking
from dicomite.clock import utcnow
from dicomite.services import Services
from dicomite.store.tables import Tenant

Handler = Callable[[Request], dict[str, Any]]


class ArmRoutes:
    def __init__(self, services: Services) -> None:
        self._public_url = services.public_url
        self._tenant_id = services.context.tenant_id
        self._store = services.context.store
        self._auth = ArmAuth(services.published_keys, self._public_url, self._tenant_id)

    def routes(self) -> list[Route]:
        return [
            self._route("/metadata/endpoints", self._endpoints, anonymous=True),
            self._route("/subscriptions", self._subscriptions),
            self._route("/subscriptions/{subscription_id}", self._subscription),
            self._route("/tenants", self._tenants),
        ]

    def _route(self, path: str, handler: Handler, *, anonymous: bool = False) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                if "api-version" not in request.query_params:
                    raise MissingApiVersion()
                if not anonymous:
                    self._auth.authenticate(request.headers.get("authorization"), utcnow())
                body = await run_blocking(handler, request)
            except ArmError as error:
                return JSONResponse(error.body(), error.status, headers=error.headers())
            return JSONResponse(body)

        return Route(path, endpoint, methods=["GET"])

    def _endpoints(self, _request: Request) -> dict[str, Any]:
        return resources.cloud_endpoints(self._public_url, self._tenant_id)

    def _subscriptions(self, _request: Request) -> dict[str, Any]:
        return {"value": [self._shaped(resources.subscription)]}

    def _subscription(self, request: Request) -> dict[str, Any]:
        wanted = str(request.path_params["subscription_id"])
        if wanted.lower() != resources.subscription_id(self._tenant_id):
            raise SubscriptionNotFound(wanted)
        return self._shaped(resources.subscription)

    def _tenants(self, _request: Request) -> dict[str, Any]:
        return {"value": [self._shaped(resources.tenant_description)]}

    def _shaped(self, shape: Callable[[Tenant], dict[str, Any]]) -> dict[str, Any]:
        """The tenant as stored now, in one of ARM's shapes."""
        with self._store.read() as session:
            return shape(session.get_one(Tenant, self._tenant_id))
