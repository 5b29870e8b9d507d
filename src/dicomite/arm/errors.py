"""Errors of the resource-manager surface, each knowing its Azure Resource Manager wire format.

Exception tree::

    ArmError                               status, code, message
    ├── MissingApiVersion                  400 MissingApiVersionParameter
    ├── Unauthenticated                    401 (code by cause) + WWW-Authenticate: Bearer
    └── SubscriptionNotFound               404 SubscriptionNotFound

The body is ARM's ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ArmError(Exception):
    status: ClassVar[int] = 400
    code: str = "BadRequest"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}

    def headers(self) -> dict[str, str]:
        return {}


class MissingApiVersion(ArmError):
    code = "MissingApiVersionParameter"

    def __init__(self) -> None:
        super().__init__(
            "The api-version query parameter (?api-version=) is required for all requests."
        )


class Unauthenticated(ArmError):
    """A refused bearer token; ARM names the cause in the code (``AuthenticationFailed``,
    ``InvalidAuthenticationToken``, ``InvalidAuthenticationTokenAudience``, …)."""

    status = 401

    def __init__(self, code: str, message: str, challenge: str) -> None:
        super().__init__(message)
        self.code = code
        self._challenge = challenge

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self._challenge}


class SubscriptionNotFound(ArmError):
    status = 404
    code = "SubscriptionNotFound"

    def __init__(self, subscription_id: str) -> None:
        super().__init__(f"The subscription '{subscription_id[:100]}' could not be found.")
