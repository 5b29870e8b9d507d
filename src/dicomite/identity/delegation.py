"""What a person lets an application do on their behalf: delegated permissions asked for,
granted (by an administrator for everyone, or by the person for themselves) and missing, and
the person's own roles on the resource.

A delegated token carries the permissions both granted and asked for (``scp``) and the
person's roles (``roles``): for the DICOM service, their DICOM data role (Reader:
``Dicom.Read``, Owner: ``Dicom.ReadWrite``), so the service allows what both allow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from dicomite.identity import policy
from dicomite.identity.builtin import DICOM_APP_ID, GRAPH_RESOURCE_URI
from dicomite.identity.consent import ALL_PRINCIPALS, grant_delegated
from dicomite.identity.errors import InvalidResource
from dicomite.identity.permission_kind import PermissionKind
from dicomite.identity.principals import ensure_service_principal, find_resource
from dicomite.identity.scopes import OFFLINE_ACCESS, ScopeRequest
from dicomite.identity.user_consent import users_can_consent
from dicomite.identity.user_errors import ConsentRequired, ResourceNotRequested, UnknownScope
from dicomite.identity.users import DicomDataRole
from dicomite.store.tables import Application, OAuth2PermissionGrant, ServicePrincipal, User

# The DICOM data role a person holds, as the DICOM service's app role values.
DICOM_ROLE_VALUES = {DicomDataRole.READER: "Dicom.Read", DicomDataRole.OWNER: "Dicom.ReadWrite"}


@dataclass(frozen=True)
class Delegation:
    resource: ServicePrincipal
    resource_name: str  # as the client named it
    asked: tuple[str, ...]  # permission values, .default resolved
    granted: tuple[str, ...]  # of those, granted to everyone or to this person
    descriptions: dict[str, dict[str, str]]  # value -> the scope's definition, for the page

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(p for p in self.asked if p not in self.granted)

    def admin_only(self) -> tuple[str, ...]:
        """Missing permissions only an administrator may consent to."""
        return tuple(p for p in self.missing if self.descriptions[p].get("type") == "Admin")

    def token_scopes(self, request: ScopeRequest) -> tuple[str, ...]:
        """The ``scp`` values: the granted permissions; for a request naming no resource (the
        sign-in alone, a token for Microsoft Graph), its OpenID Connect scopes."""
        if self.asked:
            return self.granted
        return tuple(sorted(request.reserved - {OFFLINE_ACCESS}))


class Requested(NamedTuple):
    name: str  # the resource as the client named it
    resource: ServicePrincipal
    defined: dict[str, dict[str, str]]  # its enabled delegated permissions, by value


def requested(session: Session, tenant_id: str, request: ScopeRequest) -> Requested:
    """The resource ``request`` names (Microsoft Graph when none); ``InvalidResource`` or
    ``UnknownScope`` when it asks for a resource or permission the tenant does not have."""
    name = request.resource or GRAPH_RESOURCE_URI
    resource = find_resource(session, tenant_id, name)
    if resource is None:
        raise InvalidResource(resource=name[:200], tenant=tenant_id)
    defined = {s["value"]: s for s in resource.oauth2_permission_scopes if s.get("isEnabled", True)}
    for permission in request.permissions:
        if permission not in defined:
            raise UnknownScope(scope=f"{name}/{permission}"[:300], resource=name[:200])
    return Requested(name, resource, defined)


def delegation(
    session: Session,
    tenant_id: str,
    app: Application,
    client: ServicePrincipal | None,
    request: ScopeRequest,
    user: User,
) -> Delegation:
    name, resource, defined = requested(session, tenant_id, request)
    given = _granted(session, client, resource, user) if client is not None else set()
    asked = request.permissions
    if request.default:
        asked = tuple(dict.fromkeys([*_configured(app, resource, defined), *sorted(given)]))
        if not asked:
            raise _not_requested(app, resource, name)
    granted = tuple(p for p in asked if p in given)
    return Delegation(resource, name, asked, granted, {p: defined[p] for p in asked})


def _not_requested(app: Application, resource: ServicePrincipal, name: str) -> ResourceNotRequested:
    """``.default`` with nothing configured or granted: no consent could be asked for, and a
    token without ``scp`` but with the person's roles would pass for an app-only one."""
    listed = ", ".join(entry["resourceAppId"] for entry in app.required_resource_access)
    return ResourceNotRequested(
        app_id=app.app_id,
        app_name=app.display_name,
        resource=name[:200],
        resource_app_id=resource.app_id,
        listed=listed,
    )


def may_consent(session: Session, user: User, found: Delegation) -> bool:
    """Whether ``user`` may consent to the missing permissions for themselves: "User" ones
    when the tenant lets people consent, "Admin" ones only as an administrator of the API."""
    if found.admin_only():
        return policy.can_grant_consent(user, found.resource)
    allowed = users_can_consent(session, user.tenant_id)
    return allowed or policy.can_grant_consent(user, found.resource)


def accept(
    session: Session,
    tenant_id: str,
    app: Application,
    request: ScopeRequest,
    user: User,
    now: datetime,
) -> None:
    """The person's Accept on a consent page: their consent to what the request still misses;
    ``ConsentRequired`` when that is more than they may consent to."""
    client = ensure_service_principal(session, app, now)
    found = to_consent(session, tenant_id, app, client, request, user)
    if found is not None:
        consent_for_self(session, client, found, user)


def to_consent(
    session: Session,
    tenant_id: str,
    app: Application,
    client: ServicePrincipal | None,
    request: ScopeRequest,
    user: User,
) -> Delegation | None:
    """What the person must still consent to (None: nothing); ``ConsentRequired`` when that
    is more than they may consent to."""
    found = delegation(session, tenant_id, app, client, request, user)
    if not found.missing:
        return None
    if not may_consent(session, user, found):
        raise ConsentRequired(app_id=app.app_id, app_name=app.display_name)
    return found


def consent_for_self(
    session: Session, client: ServicePrincipal, found: Delegation, user: User
) -> None:
    """Record the person's consent (Graph ``consentType: Principal``) to what was missing."""
    grant_delegated(session, client, found.resource, found.missing, principal_id=user.id)


def person_roles(user: User, resource: ServicePrincipal) -> tuple[str, ...]:
    """The person's roles on ``resource``: their DICOM data role on the DICOM service."""
    role = policy.dicom_role(user)
    if resource.app_id != DICOM_APP_ID or role is None:
        return ()
    return (DICOM_ROLE_VALUES[role],)


def _granted(
    session: Session, client: ServicePrincipal, resource: ServicePrincipal, user: User
) -> set[str]:
    grants = session.scalars(
        select(OAuth2PermissionGrant.scope).where(
            OAuth2PermissionGrant.client_id == client.id,
            OAuth2PermissionGrant.resource_id == resource.id,
            or_(
                OAuth2PermissionGrant.consent_type == ALL_PRINCIPALS,
                OAuth2PermissionGrant.principal_id == user.id,
            ),
        )
    )
    return {value for scope in grants for value in scope.split()}


def _configured(
    app: Application, resource: ServicePrincipal, defined: dict[str, dict[str, str]]
) -> Sequence[str]:
    """The delegated permissions on ``resource`` the app lists in requiredResourceAccess."""
    ids = {s["id"]: value for value, s in defined.items()}
    return [
        ids[access["id"]]
        for entry in app.required_resource_access
        if entry["resourceAppId"] == resource.app_id
        for access in entry["resourceAccess"]
        if access["type"] == PermissionKind.SCOPE.value and access["id"] in ids
    ]
