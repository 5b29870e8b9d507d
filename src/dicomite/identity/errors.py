"""Token-endpoint errors, one type per AADSTS case, each knowing its wire format.

Exception tree::

    TokenError                      error, code (AADSTS number), status, message template
    ├── InvalidRequest              invalid_request          400  (malformed body, duplicate field)
    │   ├── MissingParameter        AADSTS900144             400
    │   └── BodyTooLarge            AADSTS9002313            413
    ├── InvalidClient               invalid_client           401
    │   ├── WrongSecret             AADSTS7000215
    │   ├── ExpiredSecret           AADSTS7000222
    │   ├── NoCredential            AADSTS7000216
    │   ├── InvalidAssertion …      AADSTS700027, 700024, 700021, 700023, 700022, 70021 …
    │   └── federated assertions    AADSTS70021, 700211, 700212, 700213 (identity.federation)
    ├── UnauthorizedClient          unauthorized_client      400
    │   ├── AppNotFound             AADSTS700016
    │   └── NoServicePrincipal      AADSTS7000229
    ├── InvalidScope                AADSTS1002012            400
    ├── InvalidResource             AADSTS500011             400
    ├── InvalidTenant               AADSTS90002              400
    └── UnsupportedGrantType        AADSTS70003              400

The body follows Entra ID (RFC 6749 §5.2 plus Microsoft's extensions): ``error``,
``error_description`` (``AADSTS{code}: {message}`` then trace, correlation and timestamp lines),
``error_codes``, ``timestamp``, ``trace_id``, ``correlation_id``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar


class TokenError(Exception):
    error: ClassVar[str] = "invalid_request"
    code: ClassVar[int] = 9002313
    status: ClassVar[int] = 400
    template: ClassVar[str] = "Invalid request. Request is malformed or invalid."
    logged: ClassVar[bool] = True  # whether the sign-in log records it

    def __init__(self, **fields: str) -> None:
        self.fields = fields
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return self.template.format(**self.fields)

    def body(self, *, trace_id: str, correlation_id: str, now: datetime) -> dict[str, Any]:
        timestamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
        description = (
            f"AADSTS{self.code}: {self.message}\r\nTrace ID: {trace_id}\r\n"
            f"Correlation ID: {correlation_id}\r\nTimestamp: {timestamp}"
        )
        return {
            "error": self.error,
            "error_description": description,
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }

    def headers(self) -> dict[str, str]:
        return {}


class InvalidRequest(TokenError):
    pass


class MalformedBody(InvalidRequest):
    template = "Invalid request. Request is malformed or invalid. {detail}"


class MissingParameter(InvalidRequest):
    code = 900144
    template = "The request body must contain the following parameter: '{parameter}'."


class BodyTooLarge(InvalidRequest):
    status = 413
    template = "Invalid request. The request body is larger than {limit} bytes."


class DuplicateParameter(InvalidRequest):
    code = 90015
    template = "Requested query string is too long or a parameter is duplicated: '{parameter}'."


class InvalidClient(TokenError):
    error = "invalid_client"
    status = 401

    def headers(self) -> dict[str, str]:
        # RFC 6749 §5.2: a 401 for client authentication carries WWW-Authenticate.
        return {"WWW-Authenticate": 'Basic realm="dicomite"'}


class WrongSecret(InvalidClient):
    code = 7000215
    template = (
        "Invalid client secret provided. Ensure the secret being sent in the request is the "
        "client secret value, not the client secret ID, for a secret added to app '{app_id}'."
    )


class ExpiredSecret(InvalidClient):
    code = 7000222
    template = (
        "The provided client secret keys for app '{app_id}' are expired. Create new keys for "
        "your app, or consider using certificate credentials for added security."
    )


class NoCredential(InvalidClient):
    code = 7000216
    template = (
        "'client_assertion', 'client_secret' or 'request' is required for the "
        "'client_credentials' grant type."
    )


class MalformedAssertion(InvalidClient):
    code = 50027
    template = "JWT token is invalid or is malformed. {detail}"


class AssertionSignatureInvalid(InvalidClient):
    code = 700027
    template = "Client assertion failed signature validation. {detail}"


class AssertionExpired(InvalidClient):
    code = 700024
    template = "Client assertion is not within its valid time range. {detail}"


class AssertionClientMismatch(InvalidClient):
    code = 700021
    template = "Client assertion application identifier doesn't match 'client_id' parameter."


class AssertionAudienceInvalid(InvalidClient):
    code = 700023
    template = "Client assertion audience claim does not match Realm issuer. {detail}"


class AssertionReplayed(InvalidClient):
    code = 700022
    template = "The assertion has already been used (jti '{jti}'); use a new assertion."


class AssertionTypeInvalid(InvalidClient):
    code = 70021
    template = "The client_assertion_type '{value}' is not supported."


class NoFederatedMatch(InvalidClient):
    code = 70021
    template = "No matching federated identity record found for presented assertion. {detail}"


class FederatedIssuerMismatch(InvalidClient):
    code = 700211
    template = (
        "No matching federated identity record found for presented assertion issuer. {detail}"
    )


class FederatedAudienceMismatch(InvalidClient):
    code = 700212
    template = (
        "No matching federated identity record found for presented assertion audience. {detail}"
    )


class FederatedSubjectMismatch(InvalidClient):
    code = 700213
    template = (
        "No matching federated identity record found for presented assertion subject. {detail}"
    )


class UnauthorizedClient(TokenError):
    error = "unauthorized_client"


class AppNotFound(UnauthorizedClient):
    code = 700016
    template = (
        "Application with identifier '{app_id}' was not found in the directory '{tenant}'. "
        "This can happen if the application has not been installed by the administrator of the "
        "tenant or consented to by any user in the tenant. You may have sent your authentication "
        "request to the wrong tenant."
    )


class NoServicePrincipal(UnauthorizedClient):
    code = 7000229
    template = (
        "The client application {app_id} is missing service principal in the tenant {tenant}. "
        "Create one with POST /servicePrincipals or 'dicomite app create'."
    )


class InvalidScope(TokenError):
    error = "invalid_scope"
    code = 1002012
    template = (
        "The provided value for scope {scope} is not valid. Client credential flows must have a "
        "scope value with /.default suffixed to the resource identifier (application ID URI)."
    )


class InvalidResource(TokenError):
    error = "invalid_resource"
    code = 500011
    template = (
        "The resource principal named {resource} was not found in the tenant named {tenant}. "
        "This can happen if the application has not been installed by the administrator of the "
        "tenant or consented to by any user in the tenant. You might have sent your "
        "authentication request to the wrong tenant."
    )


class InvalidTenant(TokenError):
    error = "invalid_tenant"
    code = 90002
    template = (
        "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
        "signing into the correct cloud."
    )


class UnsupportedGrantType(TokenError):
    error = "unsupported_grant_type"
    code = 70003
    template = "The app requested an unsupported grant type '{grant_type}'."


class PostOnly(InvalidRequest):
    code = 900561
    template = "The endpoint only accepts POST requests. Received a {method} request."
