"""Graph request bodies turned into the arguments of ``identity`` functions.

Only shapes are checked here (which properties, which JSON types); the rules themselves (lengths,
URIs, uniqueness, secret lifetimes) are the domain's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dicomite.graph import body as b
from dicomite.graph.errors import InvalidRequest, invalid_id
from dicomite.identity.problems import InvalidInput
from dicomite.identity.validation import check_guid

# Graph property -> keyword of identity.directory.create_application / update_application.
_APPLICATION = {
    "displayName": "display_name",
    "description": "description",
    "signInAudience": "sign_in_audience",
    "identifierUris": "identifier_uris",
    "appRoles": "app_roles",
    "requiredResourceAccess": "required_resource_access",
    "isFallbackPublicClient": "is_fallback_public_client",
}
_API = {
    "oauth2PermissionScopes": "oauth2_permission_scopes",
    "requestedAccessTokenVersion": "requested_access_token_version",
}
_WEB = {"redirectUris": "redirect_uris", "logoutUrl": "logout_url"}
_IMPLICIT_GRANT = {
    "enableAccessTokenIssuance": "enable_access_token_issuance",
    "enableIdTokenIssuance": "enable_id_token_issuance",
}
# The other platforms (spaApplication, publicClientApplication) hold only redirectUris.
_PLATFORMS = {
    "spa": ("spaApplication", {"redirectUris": "spa_redirect_uris"}),
    "publicClient": ("publicClientApplication", {"redirectUris": "public_client_redirect_uris"}),
}
# Keyword -> Graph's name, for the messages about a wrongly typed value.
_URI_LISTS = {
    "identifier_uris": "identifierUris",
    "redirect_uris": "web.redirectUris",
    "spa_redirect_uris": "spa.redirectUris",
    "public_client_redirect_uris": "publicClient.redirectUris",
}
_FLAGS = {
    "enable_access_token_issuance": "enableAccessTokenIssuance",
    "enable_id_token_issuance": "enableIdTokenIssuance",
    "is_fallback_public_client": "isFallbackPublicClient",
}
_APPLICATION_OTHER = {
    "addIns",
    "appId",
    "applicationTemplateId",
    "authenticationBehaviors",
    "certification",
    "createdDateTime",
    "defaultRedirectUri",
    "deletedDateTime",
    "disabledByMicrosoftStatus",
    "groupMembershipClaims",
    "id",
    "info",
    "isDeviceOnlyAuthSupported",
    "isDisabled",
    "nativeAuthenticationApisEnabled",
    "notes",
    "oauth2RequirePostResponse",
    "optionalClaims",
    "parentalControlSettings",
    "publisherDomain",
    "requestSignatureVerification",
    "samlMetadataUrl",
    "serviceManagementReference",
    "servicePrincipalLockConfiguration",
    "signInAudienceRestrictions",
    "tags",
    "tokenEncryptionKeyId",
    "uniqueName",
    "verifiedPublisher",
    "passwordCredentials",
}
_API_OTHER = {"acceptMappedClaims", "knownClientApplications", "preAuthorizedApplications"}
_WEB_OTHER = {"homePageUrl", "redirectUriSettings"}
_KEY = {
    "type",
    "usage",
    "key",
    "displayName",
    "keyId",
    "customKeyIdentifier",
    "startDateTime",
    "endDateTime",
}


def guid(value: str) -> str:
    """An object id from the URL or body; Graph's wording when it is not a GUID."""
    try:
        return check_guid(value, "id")
    except InvalidInput:
        raise invalid_id(value) from None


@dataclass(frozen=True)
class KeySpec:
    """One ``keyCredential`` of a request: a new certificate (``key``) or an existing one kept
    by its ``keyId`` (GET responses carry ``key: null``, and clients send them back)."""

    key: bytes | None
    key_id: str | None
    display_name: str | None


@dataclass(frozen=True)
class ApplicationInput:
    fields: dict[str, Any]
    keys: list[KeySpec] | None


def application(body: dict[str, Any]) -> ApplicationInput:
    """POST and PATCH alike: only the properties given are set, also inside ``web``, ``spa``,
    ``publicClient`` and ``implicitGrantSettings`` (Graph's PATCH of complex properties)."""
    supported = [*_APPLICATION, "api", "web", *_PLATFORMS, "keyCredentials"]
    b.check_properties(body, "application", supported, _APPLICATION_OTHER)
    fields = _pick(body, _APPLICATION)
    if "api" in body:
        api = b.member(body, "api", "apiApplication")
        b.check_properties(api, "apiApplication", _API, _API_OTHER)
        fields |= _pick(api, _API)
    if "web" in body:
        fields |= _web(b.member(body, "web", "webApplication"))
    for name, (type_name, mapping) in _PLATFORMS.items():
        if name in body:
            platform = b.member(body, name, type_name)
            b.check_properties(platform, type_name, mapping)
            fields |= _pick(platform, mapping)
    _check_types(fields)
    keys = key_credentials(b.array(body, "keyCredentials")) if "keyCredentials" in body else None
    return ApplicationInput(fields, keys)


def _pick(body: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    return {kw: body[name] for name, kw in mapping.items() if name in body}


def _web(web: dict[str, Any]) -> dict[str, Any]:
    b.check_properties(web, "webApplication", [*_WEB, "implicitGrantSettings"], _WEB_OTHER)
    grants = b.member(web, "implicitGrantSettings", "implicitGrantSettings")
    b.check_properties(grants, "implicitGrantSettings", _IMPLICIT_GRANT)
    return _pick(web, _WEB) | _pick(grants, _IMPLICIT_GRANT)


def _check_types(fields: dict[str, Any]) -> None:
    if "description" in fields:
        b.text(fields, "description")
    if "sign_in_audience" in fields:
        b.text(fields, "sign_in_audience", required=True)
    version = fields.get("requested_access_token_version")
    if isinstance(version, bool) or not isinstance(version, int | None):
        raise InvalidRequest("api.requestedAccessTokenVersion must be null, 1 or 2.")
    for keyword, name in _URI_LISTS.items():
        if keyword in fields:
            b.array({name: fields[keyword]}, name, str)
    if "logout_url" in fields:
        b.text({"logoutUrl": fields["logout_url"]}, "logoutUrl")
    if fields.get("is_fallback_public_client", False) is None:  # nullable in Graph: not set
        fields["is_fallback_public_client"] = False
    for keyword, name in _FLAGS.items():
        if keyword in fields and not isinstance(fields[keyword], bool):
            raise InvalidRequest(
                f"Cannot convert the literal '{str(fields[keyword])[:64]}' to the expected type "
                f"'Edm.Boolean' of property '{name}'."
            )
    for name in ("app_roles", "oauth2_permission_scopes", "required_resource_access"):
        if name in fields:
            b.array(fields, name, dict)
    for role in fields.get("app_roles", []):
        if "allowedMemberTypes" in role:
            b.array(role, "allowedMemberTypes", str)


def key_credentials(items: list[Any]) -> list[KeySpec]:
    return [key_credential(item) for item in items]


def key_credential(item: Any) -> KeySpec:
    if not isinstance(item, dict):
        raise InvalidRequest("keyCredentials items must be microsoft.graph.keyCredential objects.")
    b.check_properties(item, "keyCredential", _KEY)
    if item.get("type", "AsymmetricX509Cert") != "AsymmetricX509Cert" or item.get(
        "usage", "Verify"
    ) not in ("Verify", "verify"):
        raise InvalidRequest(
            "Only keyCredentials of type 'AsymmetricX509Cert' with usage 'Verify' are supported."
        )
    key, key_id = b.text(item, "key"), b.text(item, "keyId")
    if key is None and key_id is None:
        raise InvalidRequest("A keyCredential needs a 'key' (base64 certificate) or a 'keyId'.")
    return KeySpec(
        key=key.encode() if key is not None else None,
        key_id=guid(key_id) if key_id is not None else None,
        display_name=b.text(item, "displayName"),
    )


@dataclass(frozen=True)
class PasswordInput:
    display_name: str | None
    start: datetime | None
    end: datetime | None


def add_password(body: dict[str, Any]) -> PasswordInput:
    b.check_properties(body, "addPasswordRequestBody", ["passwordCredential"])
    spec = b.member(body, "passwordCredential", "passwordCredential")
    b.check_properties(
        spec,
        "passwordCredential",
        ["displayName", "startDateTime", "endDateTime"],
        ["customKeyIdentifier", "hint", "keyId", "secretText"],
    )
    return PasswordInput(
        b.text(spec, "displayName"),
        b.timestamp(spec, "startDateTime"),
        b.timestamp(spec, "endDateTime"),
    )


def key_id(body: dict[str, Any], type_name: str) -> str:
    b.check_properties(body, type_name, ["keyId", "proof"])
    return guid(b.text(body, "keyId", required=True) or "")


@dataclass(frozen=True)
class NewKey:
    """``addKey``'s certificate: unlike a ``keyCredentials`` entry, it always carries ``key``."""

    key: bytes
    key_id: str | None
    display_name: str | None


def add_key(body: dict[str, Any]) -> NewKey:
    b.check_properties(body, "addKeyRequestBody", ["keyCredential", "passwordCredential", "proof"])
    if body.get("passwordCredential") is not None:
        raise InvalidRequest("passwordCredential is only used with X509CertAndPassword keys.")
    spec = key_credential(b.member(body, "keyCredential", "keyCredential"))
    if spec.key is None:
        raise InvalidRequest("keyCredential.key (a base64 DER certificate) is required.")
    return NewKey(spec.key, spec.key_id, spec.display_name)


# federatedIdentityCredential: what a POST or PATCH may set (``id`` is read-only).
_FEDERATED_TEXT = ("name", "issuer", "subject", "description")
_FEDERATED_OTHER = ("id", "claimsMatchingExpression")


def federated_credential(body: dict[str, Any], *, new: bool) -> dict[str, Any]:
    """Keyword arguments of ``federated_credentials.add_federated_credential`` (``new``: name,
    issuer and subject are required) or ``update_federated_credential``."""
    supported = [*_FEDERATED_TEXT, "audiences"]
    b.check_properties(body, "federatedIdentityCredential", supported, _FEDERATED_OTHER)
    fields: dict[str, Any] = {}
    for name in _FEDERATED_TEXT:
        required = new and name != "description"
        if required or name in body:
            fields[name] = b.text(body, name, required=required)
    if "audiences" in body:
        fields["audiences"] = b.array(body, "audiences", str)
    return fields
