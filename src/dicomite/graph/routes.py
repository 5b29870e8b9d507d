"""The management API in Microsoft Graph v1.0 shapes, mounted at ``{public_url}/graph/v1.0``.

Plain Starlette, so that every response (errors from routing included) has Graph's format.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from dicomite.graph import (
    applications,
    federated_credentials,
    grants,
    policies,
    principals,
    tenant,
)
from dicomite.graph.endpoint import Endpoints, routing_error
from dicomite.graph.requestids import RequestIds
from dicomite.services import Services


def graph_app(services: Services) -> Starlette:
    endpoints = Endpoints(services)
    routes = [
        *applications.routes(endpoints),
        *federated_credentials.routes(endpoints),
        *principals.routes(endpoints),
        *grants.routes(endpoints),
        *policies.routes(endpoints),
        *tenant.routes(endpoints),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(RequestIds)],
        exception_handlers={HTTPException: routing_error},
    )
