"""Bearer tokens for the management API, in Microsoft Graph's words.

Tokens are validated by :mod:`dicomite.identity.resource_server` for Graph's audience (its URI
or its appId); permissions are the application roles in the ``roles`` claim, as for app-only
calls to Graph. Refusals become Graph's 401 ``InvalidAuthenticationToken`` and 403
``Authorization_RequestDenied``.
"""

from __future__ import annotations

from datetime import datetime

from dicomite.graph.errors import Forbidden, GraphError, Unauthenticated
from dicomite.identity.builtin import GRAPH_AUDIENCES
from dicomite.identity.published_keys import PublishedKeys
from dicomite.identity.resource_server import (
    BearerRefusal,
    InvalidToken,
    NoToken,
    Principal,
    Reason,
    ResourceServer,
)

READ_ALL = "Application.Read.All"
READWRITE_ALL = "Application.ReadWrite.All"
ASSIGN_ALL = "AppRoleAssignment.ReadWrite.All"
POLICY_READ_ALL = "Policy.Read.All"
POLICY_WRITE_AUTHORIZATION = "Policy.ReadWrite.Authorization"

# Which roles allow what (Graph's permission tables for each API, application permissions).
READ = frozenset({READ_ALL, READWRITE_ALL})
WRITE = frozenset({READWRITE_ALL})
READ_GRANTS = frozenset({READ_ALL, READWRITE_ALL, ASSIGN_ALL})
WRITE_GRANTS = frozenset({ASSIGN_ALL})
# The sign-in log needs AuditLog.Read.All in Graph; here any management role may read it.
READ_AUDIT = frozenset({READ_ALL, READWRITE_ALL, ASSIGN_ALL})
READ_AUTHORIZATION_POLICY = frozenset({POLICY_READ_ALL, POLICY_WRITE_AUTHORIZATION})
WRITE_AUTHORIZATION_POLICY = frozenset({POLICY_WRITE_AUTHORIZATION})

_EMPTY = "Access token is empty."
_EXPIRED = "Access token has expired or is not yet valid."
_INVALID = "Access token validation failure."
_BAD_SIGNATURE = f"{_INVALID} Invalid signature."
MESSAGES: dict[Reason, str] = {
    Reason.EMPTY: _EMPTY,
    Reason.NOT_BEARER: _INVALID,
    Reason.MALFORMED: "CompactToken parsing failed with error code: 80049217",
    Reason.ALGORITHM: f"{_INVALID} Invalid signing algorithm.",
    Reason.UNKNOWN_KEY: _BAD_SIGNATURE,
    Reason.SIGNATURE: _BAD_SIGNATURE,
    Reason.CLAIMS: _INVALID,
    Reason.LIFETIME_CLAIMS: _INVALID,
    Reason.ISSUER: f"{_INVALID} Invalid issuer.",
    Reason.AUDIENCE: f"{_INVALID} Invalid audience.",
    Reason.EXPIRED: _EXPIRED,
    Reason.NOT_YET_VALID: _EXPIRED,
}


class GraphAuth:
    def __init__(self, keys: PublishedKeys, public_url: str, tenant_id: str) -> None:
        self._server = ResourceServer(keys, public_url, tenant_id, GRAPH_AUDIENCES)

    def authorize(
        self, authorization: str | None, now: datetime, allowed: frozenset[str]
    ) -> Principal:
        """The caller, if its token is valid and holds one of the ``allowed`` roles."""
        try:
            principal = self._server.authenticate(authorization, now)
            principal.require_role(allowed, "this operation")
        except BearerRefusal as refusal:
            raise graph_error(refusal) from None
        return principal


def graph_error(refusal: BearerRefusal) -> GraphError:
    if isinstance(refusal, InvalidToken):
        return Unauthenticated(MESSAGES[refusal.reason])
    if isinstance(refusal, NoToken):
        return Unauthenticated(_EMPTY)
    return Forbidden()
