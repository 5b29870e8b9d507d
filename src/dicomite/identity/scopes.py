"""The ``scope`` parameter of people's sign-in requests (RFC 6749 §3.3), read as Entra ID reads
it: OpenID Connect's reserved scopes, and the permissions of one resource, each named
``{resource}/{permission}`` (the resource's identifier URI or appId) or ``{resource}/.default``
for the permissions the app is configured with and granted. A bare permission name belongs to
Microsoft Graph.
"""

from __future__ import annotations

from dataclasses import dataclass

from dicomite.identity.builtin import GRAPH_RESOURCE_URI
from dicomite.identity.errors import MissingParameter
from dicomite.identity.user_errors import SeveralResources, UnknownScope

OPENID = "openid"
OFFLINE_ACCESS = "offline_access"
RESERVED = frozenset({OPENID, "profile", "email", OFFLINE_ACCESS})
DEFAULT = ".default"
MAX_SCOPES = 50
MAX_SCOPE_CHARS = 512


@dataclass(frozen=True)
class ScopeRequest:
    reserved: frozenset[str]  # openid, profile, email, offline_access as asked
    resource: str | None  # the resource the other scopes name; None: only reserved scopes
    permissions: tuple[str, ...]  # permission values on the resource, in the order asked
    default: bool  # "{resource}/.default" was asked for

    def granted(self, permissions: tuple[str, ...]) -> str:
        """The scope string of a grant: the reserved scopes, then ``{resource}/{permission}``."""
        named = [f"{self.resource}/{p}" for p in permissions] if self.resource else []
        return " ".join([*sorted(self.reserved), *named])


def parse_scope(text: str | None) -> ScopeRequest:
    if not text or not text.strip():
        raise MissingParameter(parameter="scope")
    items = list(dict.fromkeys(text.split()))
    if len(items) > MAX_SCOPES or any(len(item) > MAX_SCOPE_CHARS for item in items):
        raise UnknownScope(scope=text[:100], resource="(too many or too long)")
    reserved = frozenset(item.lower() for item in items if item.lower() in RESERVED)
    named = [_split(item) for item in items if item.lower() not in RESERVED]
    resources = {resource for resource, _ in named}
    if len(resources) > 1:
        raise SeveralResources(scope=" ".join(items)[:300])
    resource = resources.pop() if resources else None
    permissions = tuple(p for _, p in named if p != DEFAULT)
    default = any(p == DEFAULT for _, p in named)
    if default and permissions:
        raise UnknownScope(scope=f"{resource}/{permissions[0]}", resource=f"{resource} (.default)")
    return ScopeRequest(reserved, resource, permissions, default)


def _split(item: str) -> tuple[str, str]:
    """``(resource, permission)`` of one scope; a bare name is a Microsoft Graph permission."""
    if "/" not in item:
        return GRAPH_RESOURCE_URI, item
    resource, _, permission = item.rpartition("/")
    if not resource or not permission:
        raise UnknownScope(scope=item[:200], resource=resource[:200] or "(none)")
    return resource, permission
