"""Errors of the management API, each knowing its Microsoft Graph wire format.

Exception tree::

    GraphError                     status, code, message
    ├── BadRequest                 400 BadRequest                 (OData layer: JSON, segments)
    ├── InvalidRequest             400 Request_BadRequest         (directory rules, properties)
    ├── HostNameNotOnVerifiedDomain 400 HostNameNotOnVerifiedDomain (identifierUris rule)
    ├── InvalidFederatedIdentityCredentialValue 400  (a federated identity credential's rules)
    ├── Unauthenticated            401 InvalidAuthenticationToken (+ WWW-Authenticate: Bearer)
    ├── Forbidden                  403 Authorization_RequestDenied
    ├── ResourceNotFound           404 Request_ResourceNotFound
    ├── MultipleObjectsWithSameKeyValue 409 Request_MultipleObjectsWithSameKeyValue
    ├── MethodNotAllowed           405 Request_BadRequest
    ├── PayloadTooLarge            413 RequestEntityTooLarge
    ├── UnsupportedMediaType       415 UnsupportedMediaType
    └── InternalError              500 InternalServerError        (only for bugs; logged)

The body is Graph's ``{"error": {"code", "message", "innerError": {"date", "request-id",
"client-request-id"}}}``; ``innerError.date`` has no fraction and no zone, as Graph writes it.
Domain errors (``identity.problems``) are translated in one place, :func:`from_problem`.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from starlette.responses import JSONResponse

from dicomite.identity.problems import (
    Conflict,
    DirectoryProblem,
    FederatedCredentialNameTaken,
    InvalidFederatedCredential,
    InvalidInput,
    NotAllowed,
    NotFound,
    UnverifiedIdentifierUri,
)

# Graph answers 401s with a challenge naming itself as the resource (RFC 6750 §3).
CHALLENGE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/'
    'authorize", client_id="00000003-0000-0000-c000-000000000000"'
)


class GraphError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "BadRequest"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def headers(self) -> dict[str, str]:
        return {}


class BadRequest(GraphError):
    pass


class InvalidRequest(GraphError):
    code = "Request_BadRequest"


class HostNameNotOnVerifiedDomain(GraphError):
    """An identifierUris value outside Entra ID's secure patterns (a URI another app or
    tenant could claim); Graph names the error after its most common cause."""

    code = "HostNameNotOnVerifiedDomain"


class InvalidFederatedIdentityCredentialValue(GraphError):
    """Graph names the property and the value it refused, as in (Azure/azure-workload-identity
    issue 434) "The combination of issuer and subject must be unique for the application. …
    paramName: FederatedIdentityCredential.Subject, paramValue: …, objectType: …"."""

    code = "InvalidFederatedIdentityCredentialValue"

    @classmethod
    def of(cls, problem: InvalidFederatedCredential) -> InvalidFederatedIdentityCredentialValue:
        return cls(
            f"{problem.message} paramName: FederatedIdentityCredential.{problem.prop}, "
            f"paramValue: {problem.value[:100]}, "
            "objectType: Microsoft.Online.DirectoryServices.Application"
        )


class Unauthenticated(GraphError):
    status = 401
    code = "InvalidAuthenticationToken"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": CHALLENGE}


class Forbidden(GraphError):
    status = 403
    code = "Authorization_RequestDenied"

    def __init__(self, message: str = "Insufficient privileges to complete the operation.") -> None:
        super().__init__(message)


class ResourceNotFound(GraphError):
    status = 404
    code = "Request_ResourceNotFound"


class MultipleObjectsWithSameKeyValue(GraphError):
    """A second object with the same alternate key: "FederatedIdentityCredential with name main
    already exists." (Azure/azure-dev issue 1482)."""

    status = 409
    code = "Request_MultipleObjectsWithSameKeyValue"


class MethodNotAllowed(GraphError):
    status = 405
    code = "Request_BadRequest"


class PayloadTooLarge(GraphError):
    status = 413
    code = "RequestEntityTooLarge"


class UnsupportedMediaType(GraphError):
    status = 415
    code = "UnsupportedMediaType"


class InternalError(GraphError):
    status = 500
    code = "InternalServerError"

    def __init__(self) -> None:
        super().__init__("An internal server error occurred; see the server log.")


def not_found(object_id: str) -> ResourceNotFound:
    return ResourceNotFound(
        f"Resource '{object_id[:100]}' does not exist or one of its queried "
        "reference-property objects are not present."
    )


def invalid_id(value: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid object identifier '{value[:100]}'.")


def unknown_property(name: str, type_name: str) -> InvalidRequest:
    return InvalidRequest(
        f"Property '{name[:100]}' does not exist on type 'microsoft.graph.{type_name}'."
    )


_PROBLEMS: dict[type[DirectoryProblem], type[GraphError]] = {
    UnverifiedIdentifierUri: HostNameNotOnVerifiedDomain,  # before InvalidInput, its base
    FederatedCredentialNameTaken: MultipleObjectsWithSameKeyValue,  # before Conflict, its base
    InvalidInput: InvalidRequest,
    NotFound: ResourceNotFound,
    # Graph reports duplicates (identifierUris, credentials) as 400 Request_BadRequest.
    Conflict: InvalidRequest,
}


def from_problem(problem: DirectoryProblem) -> GraphError:
    if isinstance(problem, NotAllowed):
        return Forbidden()  # Graph's one sentence for every Authorization_RequestDenied
    if isinstance(problem, InvalidFederatedCredential):
        return InvalidFederatedIdentityCredentialValue.of(problem)
    for kind, error in _PROBLEMS.items():
        if isinstance(problem, kind):
            return error(problem.message)
    return InvalidRequest(problem.message)


def error_response(
    error: GraphError, *, request_id: str, client_request_id: str, now: datetime
) -> JSONResponse:
    inner = {
        "date": now.strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id,
    }
    body = {"error": {"code": error.code, "message": error.message, "innerError": inner}}
    return JSONResponse(body, status_code=error.status, headers=error.headers())
