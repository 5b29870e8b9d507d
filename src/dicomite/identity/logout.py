"""Where a person goes after RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2-3),
as Entra ID's ``/oauth2/v2.0/logout`` decides it.

The browser is sent to ``post_logout_redirect_uri`` only when that URI is one of the redirect
URIs (any platform) registered for the application the request names: by ``client_id``, or by
the ``aud`` of an ``id_token_hint`` whose RS256 signature verifies with a key this tenant
publishes and whose issuer is this tenant's. ``state`` goes back with it. Anything else -- no
application named, a URI it did not register, a hint that does not verify, a hint for another
application than ``client_id`` (§2) -- ends on the endpoint's own signed-out page: the endpoint
is never an open redirector (§3, RFC 9700 §4.11).

An expired hint still names its application: §2 asks the provider to accept ID tokens past
their ``exp``, since a person often signs out long after signing in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

import jwt
from sqlalchemy.orm import Session

from dicomite.identity.authorize import platform_of
from dicomite.identity.directory import find_application_by_app_id
from dicomite.identity.published_keys import PublishedKeys
from dicomite.identity.resource_server import InvalidToken, verification_key


@dataclass(frozen=True)
class IdTokenHints:
    """Reads the application an ``id_token_hint`` was issued to."""

    keys: PublishedKeys
    issuer: str  # the tenant's v2.0 issuer: ID tokens are always v2.0

    def audience(self, token: str, now: datetime) -> str | None:
        """The hint's ``aud`` when it is this tenant's and its signature verifies, else None."""
        try:
            _, key = verification_key(self.keys, token, now)
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                issuer=self.issuer,
                options={
                    "require": ["iss", "aud"],
                    "verify_aud": False,  # the audience is what we read here
                    "verify_exp": False,  # §2: an expired hint still counts
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except (InvalidToken, jwt.PyJWTError):
            return None
        audience = claims["aud"]
        return audience if isinstance(audience, str) else None


def return_to(
    session: Session,
    tenant_id: str,
    params: Mapping[str, str],
    hints: IdTokenHints,
    now: datetime,
) -> str | None:
    """The redirect after signing out, or None for the signed-out page."""
    uri = params.get("post_logout_redirect_uri")
    client_id = _named_client(params, hints, now)
    if not uri or client_id is None:
        return None
    app = find_application_by_app_id(session, tenant_id, client_id)
    if app is None or platform_of(app, uri) is None:
        return None
    state = params.get("state")
    if state is None:
        return uri
    return f"{uri}{'&' if '?' in uri else '?'}{urlencode({'state': state})}"


def _named_client(params: Mapping[str, str], hints: IdTokenHints, now: datetime) -> str | None:
    client_id = params.get("client_id") or None
    hint = params.get("id_token_hint")
    if not hint:
        return client_id
    audience = hints.audience(hint, now)
    if audience is None or client_id not in (None, audience):
        return None
    return audience
