"""Resource-server side of the DICOM service: who may do what, and refusals in its words.

Tokens are validated by :mod:`dicomite.identity.resource_server` for the DICOM resource (its
identifier URI or its appId). Roles map to actions: ``Dicom.Read`` reads, searches and reads the
change feed, extended query tags and operations; ``Dicom.ReadWrite`` also writes, deletes and
manages extended query tags (Azure's ``manageExtendedQueryTags`` data action). A delegated
token (``scp``: an app acting for a person) needs both a scope and a role allowing the action:
its ``roles`` are the person's DICOM data role (Reader: ``Dicom.Read``, Owner:
``Dicom.ReadWrite``), written into the token when it is issued, so a token of a person without
one is refused whatever its scopes.
Refusals are a 401 with an RFC 6750 §3 challenge, or a 403, each with a text body, as Azure's
DICOM service answers.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime

from dicomite.dicom.errors import DicomError, Forbidden, Unauthenticated
from dicomite.identity.builtin import DICOM_APP_ID
from dicomite.identity.external_keys import ExternalKeys
from dicomite.identity.published_keys import PublishedKeys
from dicomite.identity.resource_server import (
    BearerRefusal,
    InsufficientPermission,
    InvalidToken,
    Principal,
    Reason,
    ResourceServer,
    TrustedAuthority,
)


class Action(enum.Enum):
    READ = "read"
    SEARCH = "search"
    CHANGEFEED = "changefeed"
    WRITE = "write"
    DELETE = "delete"
    MANAGE_TAGS = "manageExtendedQueryTags"
    EXPORT = "export"
    UPDATE = "update"  # bulk update


ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    "Dicom.Read": frozenset({Action.READ, Action.SEARCH, Action.CHANGEFEED}),
    "Dicom.ReadWrite": frozenset(Action),
}
ROLES_FOR = {
    action: frozenset(role for role, actions in ROLE_ACTIONS.items() if action in actions)
    for action in Action
}
# Delegated permissions (identity.builtin): user_impersonation is whatever the role allows.
SCOPE_ACTIONS: dict[str, frozenset[Action]] = {
    "user_impersonation": frozenset(Action),
    "Dicom.Read": ROLE_ACTIONS["Dicom.Read"],
    "Dicom.ReadWrite": frozenset(Action),
}
SCOPES_FOR = {
    action: frozenset(scope for scope, actions in SCOPE_ACTIONS.items() if action in actions)
    for action in Action
}

_NOT_BEARER = "The Authorization header is not a bearer token."
_INVALID = "The token's signature or claims are invalid."
MESSAGES: dict[Reason, str] = {
    Reason.EMPTY: _NOT_BEARER,
    Reason.NOT_BEARER: _NOT_BEARER,
    Reason.MALFORMED: "The token is not a JWT.",
    Reason.ALGORITHM: "The token's signing algorithm is not RS256.",
    Reason.UNKNOWN_KEY: "The token was not signed by a key of this tenant.",
    Reason.SIGNATURE: _INVALID,
    Reason.CLAIMS: _INVALID,
    Reason.LIFETIME_CLAIMS: "The token's exp or nbf claim is not a number.",
    Reason.ISSUER: "The token was not issued by this tenant.",
    Reason.AUDIENCE: "The token's audience is not the DICOM service.",
    Reason.EXPIRED: "The token has expired.",
    Reason.NOT_YET_VALID: "The token is not valid yet.",
}


class DicomAuth:
    def __init__(
        self,
        keys: PublishedKeys,
        public_url: str,
        tenant_id: str,
        resource_uri: str,
        *,
        authorities: Sequence[TrustedAuthority] = (),
        external_keys: ExternalKeys | None = None,
    ) -> None:
        audiences = (resource_uri, DICOM_APP_ID)
        self._server = ResourceServer(
            keys,
            public_url,
            tenant_id,
            audiences,
            authorities=authorities,
            external_keys=external_keys,
        )
        # RFC 6750 §3; Azure's DICOM service also names the authority and the resource.
        self._challenge = (
            f'Bearer realm="{public_url}/dicom", authorization_uri="{public_url}/{tenant_id}", '
            f'resource_id="{resource_uri}"'
        )

    def authorize(self, authorization: str | None, now: datetime, action: Action) -> Principal:
        """The caller, if its token is valid and one of its roles allows ``action``."""
        try:
            principal = self._server.authenticate(authorization, now)
            if principal.delegated:
                principal.require_scope(SCOPES_FOR[action], action.value)
            principal.require_role(ROLES_FOR[action], action.value)
        except BearerRefusal as refusal:
            raise self._error(refusal) from None
        return principal

    def _error(self, refusal: BearerRefusal) -> DicomError:
        if isinstance(refusal, InsufficientPermission):
            action = refusal.action
            return Forbidden(f"The caller is not authorized to perform the '{action}' action.")
        if not isinstance(refusal, InvalidToken):
            return Unauthenticated("Authentication failed: no bearer token.", self._challenge)
        description = MESSAGES[refusal.reason]
        challenge = f'{self._challenge}, error="{refusal.error}", error_description="{description}"'
        return Unauthenticated(f"Authentication failed: {description}", challenge)
