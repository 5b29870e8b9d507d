"""What a signed-in person may do, decided from their roles only (Entra ID's built-in roles).

| role                      | users | register apps | manage apps | grant consent      |
|---------------------------|-------|---------------|-------------|--------------------|
| Global Administrator      | yes   | yes           | every app   | every API          |
| Application Administrator | no    | yes           | every app   | all but MS Graph   |
| Application Developer     | no    | yes           | apps owned  | no                 |

Only a Global Administrator changes the tenant's user consent setting (``user_consent``).

DICOM data: "DICOM Data Reader" reads, "DICOM Data Owner" reads and writes. A disabled account
may do nothing. ``can_*`` answer; ``require_*`` raise ``NotAllowed`` with a message the portal
and the CLI show as it is.

Privileged applications: the *access* of an application whose service principal holds Microsoft
Graph application permissions (the bootstrap management client among them) -- its secrets and
certificates, owners, requiredResourceAccess, the consent granted to it, and the application
itself -- may be changed only by a Global Administrator (portal), by a management-API caller
whose token carries every Graph role the application holds (or is being granted), or by the
operator at the console (``dicomite`` CLI). Otherwise a person allowed to manage applications
could add a secret to such an app and act with its Graph roles, which they may not grant.
``require_access_change`` is that one rule; the portal, the Graph API and the CLI all call it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.orm import Session

from dicomite.identity.builtin import GRAPH_APP_ID
from dicomite.identity.consent import granted_role_values
from dicomite.identity.principals import service_principal_for_app
from dicomite.identity.problems import NotAllowed
from dicomite.identity.users import DicomDataRole, DirectoryRole
from dicomite.store.tables import Application, ServicePrincipal, User

_Role = TypeVar("_Role", DirectoryRole, DicomDataRole)
_ADMINISTRATORS = {DirectoryRole.GLOBAL_ADMINISTRATOR, DirectoryRole.APPLICATION_ADMINISTRATOR}

MANAGE_USERS = "Only a Global Administrator can manage users."
MANAGE_CONSENT_SETTINGS = "Only a Global Administrator can change the user consent settings."
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
PRIVILEGED_APPLICATION = (
    "'{name}' holds Microsoft Graph application permissions ({roles}). Only a Global "
    "Administrator can change its credentials, owners, API permissions or consent, or delete it."
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


def can_manage_consent_settings(user: User) -> bool:
    """Whether people may consent for themselves (``user_consent``): tenant-wide, as in
    Entra ID's admin center, a Global Administrator's setting."""
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


def require_manage_consent_settings(user: User) -> None:
    require(can_manage_consent_settings(user), MANAGE_CONSENT_SETTINGS)


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


# --- privileged applications ------------------------------------------------------------------


@dataclass(frozen=True)
class ApiCaller:
    """An application calling the management API, with the Graph roles its token carries."""

    roles: frozenset[str]


@dataclass(frozen=True)
class Operator:
    """Whoever runs the local ``dicomite`` CLI: the deployment's operator, with every right."""


OPERATOR = Operator()
Actor = User | ApiCaller | Operator
# A Graph role that includes another: Application.ReadWrite.All may do all Application.Read.All may.
_INCLUDED = {"Application.ReadWrite.All": frozenset({"Application.Read.All"})}


def _with_included(roles: frozenset[str]) -> frozenset[str]:
    return roles.union(*(_INCLUDED.get(role, frozenset()) for role in roles))


def graph_roles_held(session: Session, target: Application | ServicePrincipal) -> frozenset[str]:
    """The Microsoft Graph application permissions granted to ``target``'s service principal."""
    client = service_principal_for_app(session, target.tenant_id, target.app_id)
    graph = service_principal_for_app(session, target.tenant_id, GRAPH_APP_ID)
    if client is None or graph is None:
        return frozenset()
    return frozenset(granted_role_values(session, client.id, graph))


def may_change_access(actor: Actor, graph_roles: frozenset[str]) -> bool:
    """Whether ``actor`` may change the access of an app holding (or getting) ``graph_roles``."""
    if not graph_roles or isinstance(actor, Operator):
        return True
    if isinstance(actor, ApiCaller):
        return graph_roles <= _with_included(actor.roles)
    return directory_role(actor) is DirectoryRole.GLOBAL_ADMINISTRATOR


def access_change_refusal(
    session: Session,
    actor: Actor,
    target: Application | ServicePrincipal,
    granting: Iterable[str] = (),
) -> str:
    """Why ``actor`` may not change ``target``'s credentials, owners, permissions or consent
    ("" when they may). ``granting``: Graph roles the change would give it."""
    roles = graph_roles_held(session, target) | frozenset(granting)
    if may_change_access(actor, roles):
        return ""
    return PRIVILEGED_APPLICATION.format(name=target.display_name, roles=", ".join(sorted(roles)))


def require_access_change(
    session: Session,
    actor: Actor,
    target: Application | ServicePrincipal,
    granting: Iterable[str] = (),
) -> None:
    refusal = access_change_refusal(session, actor, target, granting)
    require(not refusal, refusal)
