"""What a signed-in person may do, decided from their roles only (Entra ID's built-in roles).

| role                      | users | register apps | manage apps | grant consent      |
|---------------------------|-------|---------------|-------------|--------------------|
| Global Administrator      | yes   | yes           | every app   | every API          |
| Application Administrator | no    | yes           | every app   | all but MS Graph   |
| Application Developer     | no    | yes           | apps owned  | no                 |

DICOM data: "DICOM Data Reader" reads, "DICOM Data Owner" reads and writes. A disabled account
may do nothing. ``can_*`` answer; ``require_*`` raise ``NotAllowed`` with a message the portal
and the CLI show as it is.
"""

from __future__ import annotations

from typing import TypeVar

from dicomite.identity.builtin import GRAPH_APP_ID
from dicomite.identity.problems import NotAllowed
from dicomite.identity.users import DicomDataRole, DirectoryRole
from dicomite.store.tables import Application, ServicePrincipal, User

_Role = TypeVar("_Role", DirectoryRole, DicomDataRole)
_ADMINISTRATORS = {DirectoryRole.GLOBAL_ADMINISTRATOR, DirectoryRole.APPLICATION_ADMINISTRATOR}

MANAGE_USERS = "Only a Global Administrator can manage users."
REGISTER_APPLICATIONS = (
    "Registering applications needs the Global Administrator, Application Administrator or "
    "Application Developer role."
)
MANAGE_APPLICATION = (
    "You can manage only the applications you own. Ask a Global Administrator or an "
    "Application Administrator to change this one."
)
GRANT_CONSENT = (
    "Only an administrator can grant consent. Ask a Global Administrator or an Application "
    "Administrator to grant it."
)
GRANT_GRAPH_CONSENT = (
    "Only a Global Administrator can grant consent to Microsoft Graph permissions. Ask a "
    "Global Administrator to grant it."
)
READ_DIRECTORY = (
    "This page needs a directory role (Global Administrator, Application Administrator or "
    "Application Developer). Ask a Global Administrator."
)
READ_DICOM = "Reading DICOM data needs the DICOM Data Reader or DICOM Data Owner role."
WRITE_DICOM = "Storing or deleting DICOM data needs the DICOM Data Owner role."


def directory_role(user: User) -> DirectoryRole | None:
    """The role in force: none for a disabled account or an unknown stored value."""
    return _in_force(user, DirectoryRole, user.directory_role)


def dicom_role(user: User) -> DicomDataRole | None:
    return _in_force(user, DicomDataRole, user.dicom_role)


def _in_force(user: User, kind: type[_Role], value: str | None) -> _Role | None:
    if not user.account_enabled or value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        return None


def can_manage_users(user: User) -> bool:
    return directory_role(user) is DirectoryRole.GLOBAL_ADMINISTRATOR


def can_register_applications(user: User) -> bool:
    return directory_role(user) is not None


def can_read_directory(user: User) -> bool:
    """Enterprise applications and sign-in logs: for people who work on the directory."""
    return directory_role(user) is not None


def can_read_all_sign_ins(user: User) -> bool:
    """Administrators see every client's sign-ins; developers only their own apps'."""
    return directory_role(user) in _ADMINISTRATORS


def can_manage_application(user: User, app: Application) -> bool:
    role = directory_role(user)
    if role is DirectoryRole.APPLICATION_DEVELOPER:
        return app.owner_user_id == user.id
    return role in _ADMINISTRATORS


def can_grant_consent(user: User, resource: ServicePrincipal) -> bool:
    """Consent to ``resource``'s permissions (Graph: only a Global Administrator)."""
    role = directory_role(user)
    if role is DirectoryRole.APPLICATION_ADMINISTRATOR:
        return resource.app_id != GRAPH_APP_ID
    return role is DirectoryRole.GLOBAL_ADMINISTRATOR


def can_read_dicom(user: User) -> bool:
    return dicom_role(user) is not None


def can_write_dicom(user: User) -> bool:
    return dicom_role(user) is DicomDataRole.OWNER


def require(allowed: bool, message: str) -> None:
    if not allowed:
        raise NotAllowed(message)


def require_manage_users(user: User) -> None:
    require(can_manage_users(user), MANAGE_USERS)


def require_register_applications(user: User) -> None:
    require(can_register_applications(user), REGISTER_APPLICATIONS)


def require_manage_application(user: User, app: Application) -> None:
    require(can_manage_application(user, app), MANAGE_APPLICATION)


def require_grant_consent(user: User, resource: ServicePrincipal) -> None:
    graph_only = directory_role(user) is DirectoryRole.APPLICATION_ADMINISTRATOR
    require(can_grant_consent(user, resource), GRANT_GRAPH_CONSENT if graph_only else GRANT_CONSENT)


def require_read_dicom(user: User) -> None:
    require(can_read_dicom(user), READ_DICOM)


def require_write_dicom(user: User) -> None:
    require(can_write_dicom(user), WRITE_DICOM)
