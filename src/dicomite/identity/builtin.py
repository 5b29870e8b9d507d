"""The resource APIs present in every tenant, with fixed, documented ids.

Microsoft Graph keeps its real appId and application-permission ids, so scripts written for
Entra ID (``appRoleAssignments`` with Graph's role ids) run unchanged. The DICOM service uses the
appId of Microsoft's "Azure Healthcare APIs" first-party application and role ids of our own,
listed in the README.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCE_URI = "https://graph.microsoft.com"
DICOM_APP_ID = "4f6778d8-5aef-43dc-a1ff-b073724b9495"

APPLICATION_READ_ALL = "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30"
APPLICATION_READWRITE_ALL = "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9"
APP_ROLE_ASSIGNMENT_READWRITE_ALL = "06b708a9-e830-4db3-a914-8e69da51d44f"
DICOM_READWRITE = "6b8b3b5e-0d1c-4e6a-9a45-1f2a5d0c7e01"
DICOM_READ = "6b8b3b5e-0d1c-4e6a-9a45-1f2a5d0c7e02"


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


@dataclass(frozen=True)
class BuiltinApi:
    app_id: str
    display_name: str
    identifier_uri: str
    app_roles: tuple[dict[str, Any], ...]
    requested_access_token_version: int | None


GRAPH_API = BuiltinApi(
    app_id=GRAPH_APP_ID,
    display_name="Microsoft Graph",
    identifier_uri=GRAPH_RESOURCE_URI,
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
    ),
)


def dicom_api(identifier_uri: str) -> BuiltinApi:
    return BuiltinApi(
        app_id=DICOM_APP_ID,
        display_name="Azure Healthcare APIs (DICOM service)",
        identifier_uri=identifier_uri,
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
    )


def builtin_apis(dicom_identifier_uri: str) -> tuple[BuiltinApi, ...]:
    return (GRAPH_API, dicom_api(dicom_identifier_uri))
