"""The resource APIs present in every tenant, with fixed, documented ids.

Microsoft Graph keeps its real appId and application-permission ids, so scripts written for
Entra ID (``appRoleAssignments`` with Graph's role ids) run unchanged. The DICOM service uses the
appId of Microsoft's "Azure Healthcare APIs" first-party application and role ids of our own,
listed in the README. Azure Service Management keeps its real appId and names, so that ``az``
gets tokens for the resource manager (``dicomite.arm``) as it does from Entra ID.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCE_URI = "https://graph.microsoft.com"
GRAPH_AUDIENCES = (GRAPH_RESOURCE_URI, GRAPH_APP_ID)  # a Graph token's aud: either one
DICOM_APP_ID = "4f6778d8-5aef-43dc-a1ff-b073724b9495"
ARM_APP_ID = "797f4846-ba00-4fd7-ba43-dac1f8f63013"
# The names Azure Resource Manager accepts as a token's audience, with and without the trailing
# slash (as its InvalidAuthenticationTokenAudience message lists them): ``az`` asks for
# ``https://management.core.windows.net//.default``, whose audience keeps the slash.
ARM_AUDIENCES = (
    "https://management.core.windows.net/",
    "https://management.azure.com/",
    "https://management.core.windows.net",
    "https://management.azure.com",
)

APPLICATION_READ_ALL = "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30"
APPLICATION_READWRITE_ALL = "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9"
APP_ROLE_ASSIGNMENT_READWRITE_ALL = "06b708a9-e830-4db3-a914-8e69da51d44f"
POLICY_READ_ALL = "246dd0d5-5bd0-4def-940b-0421030a5b68"
POLICY_READWRITE_AUTHORIZATION = "fb221be6-99f2-473f-bd32-01c6a0e9ca3b"
DICOM_READWRITE = "6b8b3b5e-0d1c-4e6a-9a45-1f2a5d0c7e01"
DICOM_READ = "6b8b3b5e-0d1c-4e6a-9a45-1f2a5d0c7e02"
# Delegated permissions (oauth2PermissionScopes) of the DICOM service, for apps acting for a
# signed-in person; what a delegated token may do is also bounded by that person's DICOM data
# role (dicom.auth).
DICOM_USER_IMPERSONATION = "6b8b3b5e-0d1c-4e6a-9a45-1f2a5d0c7e10"
DICOM_READ_SCOPE = "6b8b3b5e-0d1c-4e6a-9a45-1f2a5d0c7e11"
DICOM_READWRITE_SCOPE = "6b8b3b5e-0d1c-4e6a-9a45-1f2a5d0c7e12"


def app_role(role_id: str, value: str, display_name: str, description: str) -> dict[str, Any]:
    """An appRole in Graph's shape, allowed for applications (application permission)."""
    return {
        "allowedMemberTypes": ["Application"],
        "description": description,
        "displayName": display_name,
        "id": role_id,
        "isEnabled": True,
        "origin": "Application",
        "value": value,
    }


def delegated_scope(
    scope_id: str, value: str, consent: str, display_name: str, description: str
) -> dict[str, Any]:
    """An oauth2PermissionScope in Graph's shape; ``consent`` "User" lets people consent for
    themselves (when the tenant allows it), "Admin" needs an administrator."""
    return {
        "adminConsentDescription": description,
        "adminConsentDisplayName": display_name,
        "id": scope_id,
        "isEnabled": True,
        "type": consent,
        "userConsentDescription": description,
        "userConsentDisplayName": display_name,
        "value": value,
    }


@dataclass(frozen=True)
class BuiltinApi:
    app_id: str
    display_name: str
    identifier_uris: tuple[str, ...]
    app_roles: tuple[dict[str, Any], ...]
    requested_access_token_version: int | None
    oauth2_permission_scopes: tuple[dict[str, Any], ...] = ()


GRAPH_API = BuiltinApi(
    app_id=GRAPH_APP_ID,
    display_name="Microsoft Graph",
    identifier_uris=(GRAPH_RESOURCE_URI,),
    requested_access_token_version=None,
    app_roles=(
        app_role(
            APPLICATION_READ_ALL,
            "Application.Read.All",
            "Read all applications",
            "Allows the app to read all applications and service principals without a "
            "signed-in user.",
        ),
        app_role(
            APPLICATION_READWRITE_ALL,
            "Application.ReadWrite.All",
            "Read and write all applications",
            "Allows the app to create, read, update and delete applications and service "
            "principals without a signed-in user.",
        ),
        app_role(
            APP_ROLE_ASSIGNMENT_READWRITE_ALL,
            "AppRoleAssignment.ReadWrite.All",
            "Manage app permission grants and app role assignments",
            "Allows the app to manage permission grants for application permissions to any API "
            "(including Microsoft Graph) and application assignments for any app, without a "
            "signed-in user.",
        ),
        app_role(
            POLICY_READ_ALL,
            "Policy.Read.All",
            "Read your organization's policies",
            "Allows the app to read all your organization's policies without a signed-in user.",
        ),
        app_role(
            POLICY_READWRITE_AUTHORIZATION,
            "Policy.ReadWrite.Authorization",
            "Read and write your organization's authorization policy",
            "Allows the app to read and write your organization's authorization policy (the "
            "user consent setting) without a signed-in user.",
        ),
    ),
)


def dicom_api(identifier_uri: str) -> BuiltinApi:
    return BuiltinApi(
        app_id=DICOM_APP_ID,
        display_name="Azure Healthcare APIs (DICOM service)",
        identifier_uris=(identifier_uri,),
        requested_access_token_version=None,
        app_roles=(
            app_role(
                DICOM_READWRITE,
                "Dicom.ReadWrite",
                "DICOM Data Owner",
                "Read, search, write and delete DICOM data and read the change feed.",
            ),
            app_role(
                DICOM_READ,
                "Dicom.Read",
                "DICOM Data Reader",
                "Read and search DICOM data and read the change feed.",
            ),
        ),
        oauth2_permission_scopes=(
            delegated_scope(
                DICOM_USER_IMPERSONATION,
                "user_impersonation",
                "User",
                "Access the DICOM service as you",
                "Do with DICOM data what your DICOM data role allows, on your behalf.",
            ),
            delegated_scope(
                DICOM_READ_SCOPE,
                "Dicom.Read",
                "User",
                "Read DICOM data as you",
                "Read and search DICOM data and read the change feed on your behalf, as far as "
                "your DICOM data role allows.",
            ),
            delegated_scope(
                DICOM_READWRITE_SCOPE,
                "Dicom.ReadWrite",
                "Admin",
                "Read and write DICOM data as you",
                "Read, search, write and delete DICOM data on your behalf, as far as your DICOM "
                "data role allows.",
            ),
        ),
    )


# No app roles: as in Azure, what a caller may do in a subscription is not in its token; here the
# one subscription grants nothing (dicomite.arm), so any principal of the tenant may list it.
ARM_API = BuiltinApi(
    app_id=ARM_APP_ID,
    display_name="Windows Azure Service Management API",
    identifier_uris=ARM_AUDIENCES,
    requested_access_token_version=None,
    app_roles=(),
)


def builtin_apis(dicom_identifier_uri: str) -> tuple[BuiltinApi, ...]:
    return (GRAPH_API, dicom_api(dicom_identifier_uri), ARM_API)
