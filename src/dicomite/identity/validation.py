"""Checks and normalisation of directory input, in Microsoft Graph's shapes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import SplitResult, urlsplit

from dicomite.identity.permission_kind import PermissionKind
from dicomite.identity.problems import InvalidInput, UnverifiedIdentifierUri

MAX_DISPLAY_NAME = 256
MAX_ITEMS = 100
_MEMBER_TYPES = {"Application", "User"}
_KINDS = tuple(kind.value for kind in PermissionKind)  # a tuple: "type" may be unhashable


def check_guid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise InvalidInput(f"Invalid {what}: '{str(value)[:80]}' is not a valid GUID.") from None


def check_display_name(value: Any, what: str = "displayName") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} is required and must be a non-empty string.")
    if len(value) > MAX_DISPLAY_NAME:
        raise InvalidInput(f"{what} must be at most {MAX_DISPLAY_NAME} characters.")
    if any(ord(c) < 32 for c in value):
        raise InvalidInput(f"{what} must not contain control characters.")
    return value.strip()


def _check_text(value: Any, what: str, limit: int) -> str | None:
    """Optional text: absent (None), or a string of at most ``limit`` characters."""
    return None if value is None else _text(value, what, limit, required=False)


def _required_text(value: Any, what: str, limit: int) -> str:
    return _text(value, what, limit, required=True)


def _text(value: Any, what: str, limit: int, *, required: bool) -> str:
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInput(f"{what} must be a non-empty string.")
    if len(value) > limit:
        raise InvalidInput(f"{what} must be at most {limit} characters.")
    return value


def _check_list(value: Any, what: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise InvalidInput(f"{what} must be an array.")
    if len(value) > MAX_ITEMS:
        raise InvalidInput(f"{what} may hold at most {MAX_ITEMS} items.")
    return value


def _check_uri(value: Any, what: str, schemes: set[str]) -> str:
    text = _required_text(value, what, 512)
    refusal = InvalidInput(f"{what} '{text[:80]}' must be an absolute {'/'.join(schemes)} URI.")
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unclosed IPv6 literal, "https://[x"
        raise refusal from None
    if parts.scheme.lower() not in schemes or not parts.netloc or any(c.isspace() for c in text):
        raise refusal
    return text


def normalize_identifier_uris(values: Any) -> list[str]:
    uris = [
        _check_uri(v, "identifierUris", {"api", "https", "http", "urn"})
        for v in _check_list(values, "identifierUris")
    ]
    if len(set(uris)) != len(uris):
        raise InvalidInput("identifierUris must not repeat a value.")
    return uris


def check_identifier_uri_owned(
    uri: str, *, app_id: str, tenant_id: str, domains: Sequence[str]
) -> None:
    """Entra ID's identifier-URI rule (learn.microsoft.com/entra/identity-platform/
    identifier-uri-restrictions): a new identifierUris value names the application itself, its
    tenant, or one of the tenant's domains, so no app can take the URI another app would use.

    ``api://{appId}``, ``api://{tenantId}/{string}``, ``api://{string}/{appId}``,
    ``api://{domain}/{string}`` and ``https://{domain}[/{string}]``, where ``appId`` is the
    application's own, ``domain`` is a tenant domain or a subdomain of one, and a GUID
    ``string`` after the tenant id must be the own appId.
    """
    if not _owned(urlsplit(uri), app_id.lower(), tenant_id.lower(), domains):
        allowed = (
            f"Use api://{app_id}, api://{tenant_id}/{{name}}, api://{{name}}/{app_id}, or an "
            f"https:// URI on {' or '.join(domains)} or one of its subdomains."
        )
        raise UnverifiedIdentifierUri(uri, allowed)


def _owned(parts: SplitResult, app_id: str, tenant_id: str, domains: Sequence[str]) -> bool:
    host, path = parts.netloc.lower(), parts.path.strip("/")
    if parts.query or parts.fragment or "@" in host or "*" in parts.geturl():
        return False
    if parts.scheme.lower() == "https":
        return _on_domains(parts.hostname or "", domains)
    if parts.scheme.lower() != "api" or ":" in host:
        return False
    if host == app_id:
        return not path
    if host == tenant_id:
        return bool(path) and (not _is_guid(path) or path.lower() == app_id)
    return path.lower() == app_id or (bool(path) and _on_domains(host, domains))


def _on_domains(host: str, domains: Sequence[str]) -> bool:
    return any(host == d or host.endswith(f".{d}") for d in (d.lower() for d in domains))


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def normalize_redirect_uris(values: Any) -> list[str]:
    return [
        _check_uri(v, "redirectUris", {"https", "http"})
        for v in _check_list(values, "redirectUris")
    ]


def _check_value(value: Any, what: str) -> str:
    text = _required_text(value, what, 120)
    if any(c.isspace() for c in text) or text.startswith("."):
        raise InvalidInput(f"{what} '{text[:80]}' must not contain spaces or start with '.'.")
    return text


def normalize_app_roles(values: Any) -> list[dict[str, Any]]:
    roles = []
    for role in _check_list(values, "appRoles"):
        if not isinstance(role, dict):
            raise InvalidInput("appRoles items must be objects.")
        member_types = list(_check_list(role.get("allowedMemberTypes", []), "allowedMemberTypes"))
        if not member_types or not set(member_types) <= _MEMBER_TYPES:
            raise InvalidInput("allowedMemberTypes must hold 'Application' and/or 'User'.")
        roles.append(
            {
                "allowedMemberTypes": member_types,
                "description": _check_text(role.get("description"), "description", 1024),
                "displayName": check_display_name(role.get("displayName"), "appRole displayName"),
                "id": check_guid(role.get("id", ""), "appRole id"),
                "isEnabled": bool(role.get("isEnabled", True)),
                "origin": "Application",
                "value": _check_value(role.get("value"), "appRole value"),
            }
        )
    return roles


def normalize_scopes(values: Any) -> list[dict[str, Any]]:
    scopes = []
    for scope in _check_list(values, "oauth2PermissionScopes"):
        if not isinstance(scope, dict):
            raise InvalidInput("oauth2PermissionScopes items must be objects.")
        kind = scope.get("type", "User")
        if kind not in ("User", "Admin"):
            raise InvalidInput("oauth2PermissionScopes type must be 'User' or 'Admin'.")
        scopes.append(
            {
                "adminConsentDescription": _check_text(
                    scope.get("adminConsentDescription"), "adminConsentDescription", 1024
                ),
                "adminConsentDisplayName": _check_text(
                    scope.get("adminConsentDisplayName"), "adminConsentDisplayName", 256
                ),
                "id": check_guid(scope.get("id", ""), "oauth2PermissionScope id"),
                "isEnabled": bool(scope.get("isEnabled", True)),
                "type": kind,
                "userConsentDescription": _check_text(
                    scope.get("userConsentDescription"), "userConsentDescription", 1024
                ),
                "userConsentDisplayName": _check_text(
                    scope.get("userConsentDisplayName"), "userConsentDisplayName", 256
                ),
                "value": _check_value(scope.get("value"), "oauth2PermissionScope value"),
            }
        )
    return scopes


def normalize_required_resource_access(values: Any) -> list[dict[str, Any]]:
    merged: dict[str, list[dict[str, str]]] = {}
    for entry in _check_list(values, "requiredResourceAccess"):
        if not isinstance(entry, dict):
            raise InvalidInput("requiredResourceAccess items must be objects.")
        resource = check_guid(entry.get("resourceAppId", ""), "resourceAppId")
        accesses = merged.setdefault(resource, [])
        for access in _check_list(entry.get("resourceAccess", []), "resourceAccess"):
            if not isinstance(access, dict) or access.get("type") not in _KINDS:
                raise InvalidInput("resourceAccess items need an id and a type 'Role' or 'Scope'.")
            item = {
                "id": check_guid(access.get("id", ""), "resourceAccess id"),
                "type": PermissionKind(access["type"]).value,
            }
            if item not in accesses:
                accesses.append(item)
    return [{"resourceAppId": r, "resourceAccess": a} for r, a in merged.items()]
