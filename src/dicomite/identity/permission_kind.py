"""The two kinds of API permission, as Microsoft Graph's ``resourceAccess.type`` names them."""

from __future__ import annotations

from enum import StrEnum


class PermissionKind(StrEnum):
    """An application permission is one of the API's app roles (``Role``; it reaches app-only
    tokens as ``roles``); a delegated permission is one of its OAuth2 permission scopes
    (``Scope``; it reaches delegated tokens as ``scp``)."""

    ROLE = "Role"
    SCOPE = "Scope"

    @property
    def label(self) -> str:
        """The kind as Entra's portal names it: "Application" or "Delegated" permissions."""
        return "Application" if self is PermissionKind.ROLE else "Delegated"

    @classmethod
    def labelled(cls, label: str) -> PermissionKind | None:
        """The kind a portal form or ``--type`` names ("application", "delegated"), if any."""
        return next((kind for kind in cls if kind.label.lower() == label.lower()), None)
