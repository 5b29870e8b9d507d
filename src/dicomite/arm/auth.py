"""Bearer tokens for the resource-manager surface, in Azure Resource Manager's words.

Tokens are validated by :mod:`dicomite.identity.resource_server` for the Azure Service
Management API (its names, :data:`~dicomite.identity.builtin.ARM_AUDIENCES`, or its appId), so a
token for the DICOM service or Graph is refused here and an ARM token is refused by them. Any
valid token of the tenant may read: the API has no app roles (``identity.builtin``), and the one
subscription grants nothing (DICOM and Graph access is decided by their own tokens' roles).
"""

from __future__ import annotations

from datetime import datetime

from dicomite.arm.errors import Unauthenticated
from dicomite.identity.builtin import ARM_APP_ID, ARM_AUDIENCES
from dicomite.identity.published_keys import PublishedKeys
from dicomite.identity.resource_server import (
    BearerRefusal,
    InvalidToken,
    Principal,
    Reason,
    ResourceServer,
)

_INVALID = ("InvalidAuthenticationToken", "The access token is invalid.")
_FORMAT = (
    "AuthenticationFailed",
    "Authentication failed. The 'Authorization' header is provided in an invalid format.",
)
_ALLOWED = ",".join(f"'{audience}'" for audience in ARM_AUDIENCES)
# ARM's codes and messages for each cause of a refused token.
REFUSALS: dict[Reason, tuple[str, str]] = {
    Reason.EMPTY: _FORMAT,
    Reason.NOT_BEARER: _FORMAT,
    Reason.MALFORMED: _INVALID,
    Reason.ALGORITHM: _INVALID,
    Reason.UNKNOWN_KEY: _INVALID,
    Reason.SIGNATURE: _INVALID,
    Reason.CLAIMS: _INVALID,
    Reason.LIFETIME_CLAIMS: _INVALID,
    Reason.ISSUER: (
        "InvalidAuthenticationTokenTenant",
        "The access token is from the wrong issuer. It must match the tenant of this deployment.",
    ),
    Reason.AUDIENCE: (
        "InvalidAuthenticationTokenAudience",
        "The access token has been obtained for wrong audience or resource. It should exactly "
        f"match with one of the allowed audiences {_ALLOWED}.",
    ),
    Reason.EXPIRED: (
        "ExpiredAuthenticationToken",
        "The access token expiry UTC time is earlier than current UTC time.",
    ),
    Reason.NOT_YET_VALID: ("InvalidAuthenticationToken", "The access token is not valid yet."),
}
_MISSING = (
    "AuthenticationFailed",
    "Authentication failed. The 'Authorization' header is missing.",
)


class ArmAuth:
    def __init__(self, keys: PublishedKeys, public_url: str, tenant_id: str) -> None:
        audiences = (*ARM_AUDIENCES, ARM_APP_ID)
        self._server = ResourceServer(keys, public_url, tenant_id, audiences)
        # RFC 6750 §3, naming the authority to get a token from, as ARM does.
        self._challenge = f'Bearer authorization_uri="{public_url}/{tenant_id}"'

    def authenticate(self, authorization: str | None, now: datetime) -> Principal:
        try:
            return self._server.authenticate(authorization, now)
        except BearerRefusal as refusal:
            raise self._error(refusal) from None

    def _error(self, refusal: BearerRefusal) -> Unauthenticated:
        if not isinstance(refusal, InvalidToken):
            return Unauthenticated(*_MISSING, self._challenge)
        code, message = REFUSALS[refusal.reason]
        challenge = f'{self._challenge}, error="{refusal.error}", error_description="{message}"'
        return Unauthenticated(code, message, challenge)
