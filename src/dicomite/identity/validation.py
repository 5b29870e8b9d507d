"""Checks and normalisation of directory input, in Microsoft Graph's shapes."""

from __future__ import annotations

import re
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


# --- redirect URIs (learn.microsoft.com/entra/identity-platform/reply-url) ----------------------

# Graph's application properties holding redirect URIs: web, spa and publicClient.
PLATFORMS = ("web", "spa", "publicClient")
MAX_REDIRECT_URIS = 256  # per application, all platforms together (AzureADMyOrg apps)
MAX_REDIRECT_URI_LENGTH = 256
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")
_SPECIAL = set("!$'(),;")  # "Redirect URIs don't support special characters - ! $ ' ( ) , ;"
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")  # RFC 3986 §3.1
# Custom schemes are for native apps (RFC 8252 §7.1); these would run or show content in the
# browser instead of handing the code to an app.
_UNSAFE_SCHEMES = {"javascript", "data", "vbscript", "file", "about", "blob"}


def normalize_redirect_uris(values: Any, platform: str = "web") -> list[str]:
    """A platform's redirect URIs, checked as Entra ID checks them; a URI given twice is kept
    once, in its first place (URIs are compared exactly: their paths are case-sensitive)."""
    if not isinstance(values, list | tuple):
        raise InvalidInput(f"{platform}.redirectUris must be an array.")
    check_redirect_uri_count(values)  # before checking each: a huge list is refused at once
    return list(dict.fromkeys(check_redirect_uri(value, platform) for value in values))


def check_redirect_uri_count(*platforms: Sequence[str]) -> None:
    if sum(len(uris) for uris in platforms) > MAX_REDIRECT_URIS:
        raise InvalidInput(
            f"An application may have at most {MAX_REDIRECT_URIS} redirect URIs, counting "
            "web, spa and publicClient together."
        )


def check_redirect_uri(value: Any, platform: str) -> str:
    """One redirect URI: absolute, no fragment, no wildcard, at most 256 characters; web and
    spa use https, or http on localhost or 127.0.0.1 (for local development); publicClient
    (mobile and desktop) may also use an app's own scheme such as ``myapp://auth`` or
    ``ms-appx-web://microsoft.aad.brokerplugin/{appId}``."""
    uri = _required_text(value, f"{platform}.redirectUris", MAX_REDIRECT_URI_LENGTH)
    parts = _absolute(uri, _platform_refusal(platform, uri, "must be an absolute URI"))
    reason = _uri_flaw(uri, parts) or _scheme_flaw(parts, platform)
    if reason:
        raise _platform_refusal(platform, uri, reason)
    return uri


def _platform_refusal(platform: str, uri: str, reason: str) -> InvalidInput:
    """Graph's sentence for a bad platform value, then what is wrong with it."""
    return InvalidInput(
        f"Invalid value specified for property '{platform}' of resource 'Application'. "
        f"The redirect URI '{uri[:80]}' {reason}."
    )


def _absolute(uri: str, refusal: InvalidInput) -> SplitResult:
    try:
        parts = urlsplit(uri)
    except ValueError:  # e.g. an unclosed IPv6 literal, "https://[x"
        raise refusal from None
    if not _SCHEME.match(parts.scheme) or any(c.isspace() or ord(c) < 32 for c in uri):
        raise refusal
    if not (parts.netloc or parts.path.strip("/")):
        raise refusal
    return parts


def _uri_flaw(uri: str, parts: SplitResult) -> str:
    if "#" in uri:
        return "must not contain a fragment (#)"
    if "*" in uri:
        return "must not contain a wildcard (*)"
    if _SPECIAL & set(uri):
        return "must not contain the characters ! $ ' ( ) , ;"
    if "@" in parts.netloc:
        return "must not contain user information (@)"
    return ""


def _scheme_flaw(parts: SplitResult, platform: str) -> str:
    if parts.scheme == "https":
        return "" if parts.hostname else "must name a host"
    if parts.scheme == "http":
        if parts.hostname in LOOPBACK_HOSTS:
            return ""
        return "must use https; http is allowed only for localhost and 127.0.0.1"
    if platform != "publicClient":
        return "must use https (or http for localhost); other schemes are for mobile and desktop"
    if parts.scheme in _UNSAFE_SCHEMES:
        return f"must not use the '{parts.scheme}' scheme"
    return ""


def check_logout_url(value: Any) -> str | None:
    """web.logoutUrl (front-channel logout): https, or http://localhost; at most 256 characters;
    null or empty clears it."""
    if value is None or value == "":
        return None
    url = _required_text(value, "web.logoutUrl", MAX_REDIRECT_URI_LENGTH)
    refusal = InvalidInput(
        "Invalid value specified for property 'web' of resource 'Application'. "
        f"The logout URL '{url[:80]}' must be an absolute https URI, or http://localhost."
    )
    parts = _absolute(url, refusal)
    local = parts.scheme == "http" and parts.hostname == "localhost"
    if _uri_flaw(url, parts) or not (local or parts.scheme == "https") or not parts.hostname:
        raise refusal
    return url


def check_flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{what} must be true or false.")
    return value


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
