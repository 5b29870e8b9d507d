"""The UserInfo endpoint's answer (OpenID Connect Core §5.3), as Microsoft Graph's
``/oidc/userinfo`` gives it for Entra ID: claims about the person a delegated Microsoft Graph
token acts for.

- ``sub``: the token's own, the same pairwise value as in the ID token the application got
  (§5.3.2: the client must check that they match);
- ``name``, with the ``profile`` scope (§5.4), as the directory holds it now.

Entra ID also sends ``given_name``, ``family_name``, ``picture`` and ``email`` when a user has
them; Dicomite's directory keeps none of these, so they are never sent.

The token must act for a person and carry the ``openid`` scope: an app-only token names no
person (401 ``invalid_token``); a person's token without ``openid`` is not enough (403
``insufficient_scope``). A person deleted or disabled since the token was issued gets nothing.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from dicomite.identity.resource_server import BearerRefusal, Principal
from dicomite.store.tables import User

OPENID = frozenset({"openid"})
PROFILE = "profile"


class NoPerson(BearerRefusal):
    """A valid token that acts for no person of the directory: 401 ``invalid_token``."""


def check_token(principal: Principal) -> None:
    """That the token acts for a person with the ``openid`` scope (no store needed)."""
    if not principal.delegated:
        raise NoPerson("an app-only token acts for no person")
    principal.require_scope(OPENID, "the UserInfo endpoint needs the openid scope")


def claims(session: Session, principal: Principal) -> dict[str, str]:
    user = session.get(User, principal.object_id)
    if user is None or user.tenant_id != principal.tenant_id or not user.account_enabled:
        raise NoPerson("the person is no longer in the directory, or is disabled")
    found = {"sub": principal.subject}
    if PROFILE in principal.scopes:
        found["name"] = user.display_name
    return found
