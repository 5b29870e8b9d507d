"""Directory objects as Microsoft Graph v1.0 JSON (microsoft-graph-docs, resources/*.md).

Properties Dicomite does not model are present with Graph's empty values, so clients that read
them (``info.logoUrl``, ``web.homePageUrl``) find what Entra ID would send.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from dicomite.store.tables import (
    Application,
    AppRoleAssignment,
    FederatedIdentityCredential,
    KeyCredential,
    OAuth2PermissionGrant,
    PasswordCredential,
    ServicePrincipal,
    SignIn,
    Tenant,
)

# The "Microsoft Services" tenant, which owns Graph's application in every Entra ID tenant.
MICROSOFT_TENANT_ID = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
# Entra ID's built-in app consent policy that lets people consent to any app's permissions
# that need no administrator; none assigned means people may not consent.
USER_CONSENT_POLICY = "ManagePermissionGrantsForSelf.microsoft-user-default-legacy"
_CREDENTIAL_TYPES = {
    "secret": "clientSecret",
    "certificate": "certificate",
    "federated": "federatedIdentityCredential",
}
_INFO = dict.fromkeys(
    ("logoUrl", "marketingUrl", "privacyStatementUrl", "supportUrl", "termsOfServiceUrl")
)
_VERIFIED_PUBLISHER = {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None}


def timestamp(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, as Graph writes ``Edm.DateTimeOffset``."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def password_credential(
    credential: PasswordCredential, secret_text: str | None = None
) -> dict[str, Any]:
    return {
        "customKeyIdentifier": None,
        "displayName": credential.display_name,
        "endDateTime": timestamp(credential.end_at),
        "hint": credential.hint,
        "keyId": credential.key_id,
        "secretText": secret_text,
        "startDateTime": timestamp(credential.start_at),
    }


def key_credential(credential: KeyCredential) -> dict[str, Any]:
    return {
        "customKeyIdentifier": credential.thumbprint_sha1,
        "displayName": credential.display_name,
        "endDateTime": timestamp(credential.end_at),
        "key": None,
        "keyId": credential.key_id,
        "startDateTime": timestamp(credential.start_at),
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
    }


def federated_identity_credential(credential: FederatedIdentityCredential) -> dict[str, Any]:
    return {
        "id": credential.id,
        "name": credential.name,
        "issuer": credential.issuer,
        "subject": credential.subject,
        "description": credential.description,
        "audiences": list(credential.audiences),
    }


def certificate_key(credential: KeyCredential) -> str:
    return base64.b64encode(credential.certificate_der).decode()


def application(
    app: Application,
    tenant: Tenant,
    passwords: Sequence[PasswordCredential],
    certificates: Sequence[KeyCredential],
) -> dict[str, Any]:
    return {
        "id": app.id,
        "deletedDateTime": None,
        "appId": app.app_id,
        "applicationTemplateId": None,
        "createdDateTime": timestamp(app.created_at),
        "description": app.description,
        "displayName": app.display_name,
        "groupMembershipClaims": None,
        "identifierUris": list(app.identifier_uris),
        "isDeviceOnlyAuthSupported": None,
        "isFallbackPublicClient": app.is_fallback_public_client,
        "notes": None,
        "publisherDomain": tenant.domain,
        "serviceManagementReference": None,
        "signInAudience": app.sign_in_audience,
        "tags": [],
        "tokenEncryptionKeyId": None,
        "addIns": [],
        "api": _api(app),
        "appRoles": list(app.app_roles),
        "info": dict(_INFO),
        "keyCredentials": [key_credential(c) for c in certificates],
        "optionalClaims": None,
        "parentalControlSettings": {"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"},
        "passwordCredentials": [password_credential(c) for c in passwords],
        "publicClient": {"redirectUris": list(app.public_client_redirect_uris)},
        "requiredResourceAccess": list(app.required_resource_access),
        "spa": {"redirectUris": list(app.spa_redirect_uris)},
        "verifiedPublisher": dict(_VERIFIED_PUBLISHER),
        "web": _web(app),
    }


def _api(app: Application) -> dict[str, Any]:
    return {
        "acceptMappedClaims": None,
        "knownClientApplications": [],
        "oauth2PermissionScopes": list(app.oauth2_permission_scopes),
        "preAuthorizedApplications": [],
        "requestedAccessTokenVersion": app.requested_access_token_version,
    }


def _web(app: Application) -> dict[str, Any]:
    """webApplication: ``redirectUris`` and ``logoutUrl`` (front-channel logout), and whether
    the authorize endpoint may return tokens in the fragment (implicitGrantSettings)."""
    return {
        "homePageUrl": None,
        "logoutUrl": app.logout_url,
        "redirectUris": list(app.redirect_uris),
        "implicitGrantSettings": {
            "enableAccessTokenIssuance": app.enable_access_token_issuance,
            "enableIdTokenIssuance": app.enable_id_token_issuance,
        },
    }


def service_principal(sp: ServicePrincipal, names: Sequence[str]) -> dict[str, Any]:
    return {
        "id": sp.id,
        "deletedDateTime": None,
        "accountEnabled": sp.account_enabled,
        "alternativeNames": [],
        "appDescription": None,
        "appDisplayName": sp.display_name,
        "appId": sp.app_id,
        "applicationTemplateId": None,
        "appOwnerOrganizationId": MICROSOFT_TENANT_ID if sp.is_builtin else sp.tenant_id,
        "appRoleAssignmentRequired": False,
        "description": None,
        "displayName": sp.display_name,
        "homepage": None,
        "loginUrl": None,
        "logoutUrl": None,
        "notes": None,
        "notificationEmailAddresses": [],
        "preferredSingleSignOnMode": None,
        "preferredTokenSigningKeyThumbprint": None,
        "replyUrls": [],
        "servicePrincipalNames": list(names),
        "servicePrincipalType": "Application",
        "signInAudience": "AzureADMultipleOrgs" if sp.is_builtin else "AzureADMyOrg",
        "tags": [],
        "tokenEncryptionKeyId": None,
        "addIns": [],
        "appRoles": list(sp.app_roles),
        "info": dict(_INFO),
        "keyCredentials": [],
        "oauth2PermissionScopes": list(sp.oauth2_permission_scopes),
        "passwordCredentials": [],
        "resourceSpecificApplicationPermissions": [],
        "verifiedPublisher": dict(_VERIFIED_PUBLISHER),
    }


def app_role_assignment(
    assignment: AppRoleAssignment, display_names: Mapping[str, str]
) -> dict[str, Any]:
    """``display_names`` maps service principal ids to their display names."""
    return {
        "id": assignment.id,
        "deletedDateTime": None,
        "appRoleId": assignment.app_role_id,
        "createdDateTime": timestamp(assignment.created_at),
        "principalDisplayName": display_names.get(assignment.principal_id),
        "principalId": assignment.principal_id,
        "principalType": "ServicePrincipal",
        "resourceDisplayName": display_names.get(assignment.resource_id),
        "resourceId": assignment.resource_id,
    }


def oauth2_permission_grant(grant: OAuth2PermissionGrant) -> dict[str, Any]:
    return {
        "clientId": grant.client_id,
        "consentType": grant.consent_type,
        "id": grant.id,
        "principalId": grant.principal_id,
        "resourceId": grant.resource_id,
        "scope": grant.scope,
    }


def organization(tenant: Tenant) -> dict[str, Any]:
    domain = {
        "capabilities": "None",
        "isDefault": True,
        "isInitial": True,
        "name": tenant.domain,
        "type": "Managed",
    }
    return {
        "id": tenant.id,
        "deletedDateTime": None,
        "businessPhones": [],
        "city": None,
        "country": None,
        "countryLetterCode": None,
        "createdDateTime": timestamp(tenant.created_at),
        "displayName": tenant.display_name,
        "marketingNotificationEmails": [],
        "onPremisesLastSyncDateTime": None,
        "onPremisesSyncEnabled": None,
        "postalCode": None,
        "preferredLanguage": None,
        "privacyProfile": None,
        "securityComplianceNotificationMails": [],
        "securityComplianceNotificationPhones": [],
        "state": None,
        "street": None,
        "technicalNotificationMails": [],
        "tenantType": "AAD",
        "assignedPlans": [],
        "provisionedPlans": [],
        "verifiedDomains": [domain],
    }


def authorization_policy(users_can_consent: bool) -> dict[str, Any]:
    """The tenant's one authorizationPolicy; Dicomite models only the user consent setting,
    as the built-in app consent policy Entra ID names it when users may consent to any app."""
    return {
        "id": "authorizationPolicy",
        "allowInvitesFrom": None,
        "allowedToSignUpEmailBasedSubscriptions": None,
        "allowedToUseSSPR": None,
        "allowEmailVerifiedUsersToJoinOrganization": None,
        "allowUserConsentForRiskyApps": None,
        "blockMsolPowerShell": None,
        "description": "Used to manage authorization related settings across the company.",
        "displayName": "Authorization Policy",
        "guestUserRoleId": None,
        "defaultUserRolePermissions": {
            "allowedToCreateApps": None,
            "allowedToCreateSecurityGroups": None,
            "allowedToCreateTenants": None,
            "allowedToReadBitlockerKeysForOwnedDevice": None,
            "allowedToReadOtherUsers": None,
            "permissionGrantPoliciesAssigned": [USER_CONSENT_POLICY] if users_can_consent else [],
        },
    }


def sign_in(row: SignIn, resource_app_ids: Mapping[str, str]) -> dict[str, Any]:
    """The beta ``signIn`` shape of service-principal sign-ins; ``resourceId`` is the resource's
    appId, as Graph reports it (``resource_app_ids`` maps principal ids to appIds)."""
    resource_id = resource_app_ids.get(row.resource_id or "", row.resource_id)
    return {
        "id": row.id,
        "createdDateTime": timestamp(row.created_at),
        "appId": row.app_id,
        "appDisplayName": row.app_display_name,
        "servicePrincipalId": row.service_principal_id,
        "servicePrincipalName": row.app_display_name,
        "resourceDisplayName": row.resource_display_name,
        "resourceId": resource_id,
        "resourceServicePrincipalId": row.resource_id,
        "ipAddress": row.ip_address,
        "correlationId": row.correlation_id,
        "clientCredentialType": _CREDENTIAL_TYPES.get(row.credential_type or "", "none"),
        "servicePrincipalCredentialKeyId": row.credential_key_id,
        "signInEventTypes": ["servicePrincipal"],
        "isInteractive": False,
        "status": {
            "errorCode": row.error_code,
            "failureReason": row.failure_reason or ("Other." if row.error_code else None),
            "additionalDetails": None,
        },
    }
