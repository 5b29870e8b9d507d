"""API permissions and admin consent.

An application *asks* for permissions in ``requiredResourceAccess``; an administrator *grants*
them by consent, which Entra ID records as ``appRoleAssignment`` objects (application permissions,
the ones that reach app-only tokens as ``roles``) and ``oauth2PermissionGrant`` objects
(delegated permissions). Only granted, enabled roles ever reach a token.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dicomite.identity.directory import update_application
from dicomite.identity.permission_kind import PermissionKind
from dicomite.identity.principals import (
    ensure_service_principal,
    find_resource,
    service_principal_for_app,
)
from dicomite.identity.problems import Conflict, InvalidInput, NotFound
from dicomite.identity.validation import check_guid
from dicomite.identity.version import touch
from dicomite.store.tables import (
    Application,
    AppRoleAssignment,
    OAuth2PermissionGrant,
    ServicePrincipal,
)

ALL_PRINCIPALS = "AllPrincipals"  # Graph's consentType of admin consent
PRINCIPAL = "Principal"  # a person's consent for themselves


def object_id() -> str:
    """Graph's appRoleAssignment and grant ids are 43-character base64url strings."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def resource_by_reference(session: Session, tenant_id: str, reference: str) -> ServicePrincipal:
    """A resource API by identifier URI, appId, or (case-insensitive) display name."""
    sp = find_resource(session, tenant_id, reference)
    if sp is None:
        lowered = reference.lower()
        sps = session.scalars(
            select(ServicePrincipal).where(ServicePrincipal.tenant_id == tenant_id)
        ).all()
        sp = next((s for s in sps if s.display_name.lower() == lowered), None)
    if sp is None:
        raise NotFound(f"No API named '{reference}' exists in this tenant.")
    return sp


def permissions_of(resource: ServicePrincipal, kind: PermissionKind) -> list[dict[str, Any]]:
    """The API's app roles (``Role``) or its delegated permission scopes (``Scope``)."""
    return resource.app_roles if kind is PermissionKind.ROLE else resource.oauth2_permission_scopes


def find_permission(
    resource: ServicePrincipal, reference: str, kind: PermissionKind
) -> dict[str, Any]:
    """An application permission (app role) or delegated permission (scope) by id or value."""
    for item in permissions_of(resource, kind):
        if reference in (item["id"], item.get("value")):
            if kind is PermissionKind.ROLE and "Application" not in item["allowedMemberTypes"]:
                break
            return item
    label = f"{kind.label.lower()} permission"
    raise NotFound(f"'{resource.display_name}' has no {label} '{reference}'.")


# --- configured permissions (requiredResourceAccess) ------------------------------------------


def add_permission(
    session: Session,
    app: Application,
    resource: ServicePrincipal,
    permission_id: str,
    kind: PermissionKind,
) -> None:
    entries = [dict(e) for e in app.required_resource_access]
    entry = next((e for e in entries if e["resourceAppId"] == resource.app_id), None)
    if entry is None:
        entry = {"resourceAppId": resource.app_id, "resourceAccess": []}
        entries.append(entry)
    wanted = {"id": permission_id, "type": kind.value}
    if wanted in entry["resourceAccess"]:
        return  # already configured: adding it again changes nothing
    entry["resourceAccess"] = [*entry["resourceAccess"], wanted]
    update_application(session, app, required_resource_access=entries)


def remove_permission(
    session: Session, app: Application, resource: ServicePrincipal, permission_id: str
) -> None:
    entries = []
    for entry in app.required_resource_access:
        accesses = entry["resourceAccess"]
        if entry["resourceAppId"] == resource.app_id:
            accesses = [a for a in accesses if a["id"] != permission_id]
        if accesses:
            entries.append({"resourceAppId": entry["resourceAppId"], "resourceAccess": accesses})
    update_application(session, app, required_resource_access=entries)
    _revoke(session, app, resource, {permission_id})


# --- admin consent ----------------------------------------------------------------------------


@dataclass
class ConsentResult:
    granted_roles: list[str] = field(default_factory=list)
    granted_scopes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def grant_admin_consent(session: Session, app: Application, now: datetime) -> ConsentResult:
    """Grant everything the app asks for, on every API that exists in the tenant."""
    client = ensure_service_principal(session, app, now)
    result = ConsentResult()
    for entry in app.required_resource_access:
        resource = find_resource(session, app.tenant_id, entry["resourceAppId"])
        if resource is None:
            result.skipped.append(entry["resourceAppId"])
            continue
        for access in entry["resourceAccess"]:
            if access["type"] == PermissionKind.ROLE:
                role = _enabled_item(resource.app_roles, access["id"])
                if role is not None:
                    assign_app_role(session, client, resource, role["id"], now)
                    result.granted_roles.append(role["value"])
            else:
                scope = _enabled_item(resource.oauth2_permission_scopes, access["id"])
                if scope is not None:
                    grant_delegated(session, client, resource, [scope["value"]])
                    result.granted_scopes.append(scope["value"])
    return result


def revoke_admin_consent(
    session: Session, app: Application, resource: ServicePrincipal | None = None
) -> int:
    """Remove granted permissions (all, or those on one API); returns how many went."""
    client = service_principal_for_app(session, app.tenant_id, app.app_id)
    if client is None:
        return 0
    roles = delete(AppRoleAssignment).where(AppRoleAssignment.principal_id == client.id)
    grants = delete(OAuth2PermissionGrant).where(OAuth2PermissionGrant.client_id == client.id)
    if resource is not None:
        roles = roles.where(AppRoleAssignment.resource_id == resource.id)
        grants = grants.where(OAuth2PermissionGrant.resource_id == resource.id)
    count = session.execute(roles).rowcount + session.execute(grants).rowcount  # type: ignore[attr-defined]
    touch(session, app.tenant_id)
    return int(count)


def _revoke(session: Session, app: Application, resource: ServicePrincipal, ids: set[str]) -> None:
    client = service_principal_for_app(session, app.tenant_id, app.app_id)
    if client is None:
        return
    session.execute(
        delete(AppRoleAssignment).where(
            AppRoleAssignment.principal_id == client.id,
            AppRoleAssignment.resource_id == resource.id,
            AppRoleAssignment.app_role_id.in_(ids),
        )
    )
    values = {s["value"] for s in resource.oauth2_permission_scopes if s["id"] in ids}
    for grant in _grants(session, client, resource):
        grant.scope = " ".join(v for v in grant.scope.split() if v not in values)
    touch(session, app.tenant_id)


def _enabled_item(items: list[dict[str, Any]], item_id: str) -> dict[str, Any] | None:
    return next((i for i in items if i["id"] == item_id and i.get("isEnabled", True)), None)


# --- appRoleAssignments and oauth2PermissionGrants --------------------------------------------


def assign_app_role(
    session: Session,
    principal: ServicePrincipal,
    resource: ServicePrincipal,
    app_role_id: str,
    now: datetime,
    *,
    existing_ok: bool = True,
) -> AppRoleAssignment:
    """Grant one app role. Consent is idempotent (``existing_ok``); Graph's POST is not."""
    app_role_id = check_guid(app_role_id, "appRoleId")
    find_permission(resource, app_role_id, PermissionKind.ROLE)
    existing = session.scalar(
        select(AppRoleAssignment).where(
            AppRoleAssignment.principal_id == principal.id,
            AppRoleAssignment.resource_id == resource.id,
            AppRoleAssignment.app_role_id == app_role_id,
        )
    )
    if existing is not None:
        if not existing_ok:
            raise Conflict("Permission being assigned already exists on the object.")
        return existing
    assignment = AppRoleAssignment(
        id=object_id(),
        tenant_id=principal.tenant_id,
        principal_id=principal.id,
        resource_id=resource.id,
        app_role_id=app_role_id,
        created_at=now,
    )
    session.add(assignment)
    session.flush()
    touch(session, principal.tenant_id)
    return assignment


def assignments_of(session: Session, principal: ServicePrincipal) -> Sequence[AppRoleAssignment]:
    return session.scalars(
        select(AppRoleAssignment)
        .where(AppRoleAssignment.principal_id == principal.id)
        .order_by(AppRoleAssignment.created_at)
    ).all()


def assignments_to(session: Session, resource: ServicePrincipal) -> Sequence[AppRoleAssignment]:
    return session.scalars(
        select(AppRoleAssignment)
        .where(AppRoleAssignment.resource_id == resource.id)
        .order_by(AppRoleAssignment.created_at)
    ).all()


def assignment_on(
    session: Session, sp: ServicePrincipal, assignment_id: str, *, as_resource: bool = False
) -> AppRoleAssignment:
    """An assignment held by ``sp`` (or, ``as_resource``, granted on ``sp``)."""
    assignment = session.get(AppRoleAssignment, assignment_id)
    side = assignment.resource_id if as_resource and assignment else None
    if assignment is not None and not as_resource:
        side = assignment.principal_id
    if assignment is None or side != sp.id:
        raise NotFound(f"appRoleAssignment '{assignment_id[:64]}' does not exist.")
    return assignment


def remove_assignment(
    session: Session, sp: ServicePrincipal, assignment_id: str, *, as_resource: bool = False
) -> None:
    """Delete an assignment held by ``sp`` (or, ``as_resource``, granted on ``sp``)."""
    assignment = assignment_on(session, sp, assignment_id, as_resource=as_resource)
    session.delete(assignment)
    session.flush()
    touch(session, sp.tenant_id)


def granted_role_values(
    session: Session, principal_id: str, resource: ServicePrincipal
) -> tuple[str, ...]:
    role_ids = set(
        session.scalars(
            select(AppRoleAssignment.app_role_id).where(
                AppRoleAssignment.principal_id == principal_id,
                AppRoleAssignment.resource_id == resource.id,
            )
        )
    )
    return tuple(
        r["value"] for r in resource.app_roles if r["id"] in role_ids and r.get("isEnabled", True)
    )


def _grants(
    session: Session,
    client: ServicePrincipal,
    resource: ServicePrincipal,
    principal_id: str | None = None,
) -> Sequence[OAuth2PermissionGrant]:
    """The admin's grants for all principals (a person's own consents are not admin consent),
    or, with ``principal_id``, that person's."""
    return session.scalars(
        select(OAuth2PermissionGrant).where(
            OAuth2PermissionGrant.client_id == client.id,
            OAuth2PermissionGrant.resource_id == resource.id,
            OAuth2PermissionGrant.consent_type == _consent_type(principal_id),
            OAuth2PermissionGrant.principal_id == principal_id,  # IS NULL for all principals
        )
    ).all()


def _consent_type(principal_id: str | None) -> str:
    return ALL_PRINCIPALS if principal_id is None else PRINCIPAL


def grant_delegated(
    session: Session,
    client: ServicePrincipal,
    resource: ServicePrincipal,
    scopes: Sequence[str],
    principal_id: str | None = None,
) -> OAuth2PermissionGrant:
    """Add ``scopes`` to the client's grant on ``resource`` for all principals (admin
    consent) or, with ``principal_id``, for that one person (Graph ``consentType:
    Principal``); the grant is created when there is none yet."""
    known = {s["value"] for s in resource.oauth2_permission_scopes}
    unknown = [s for s in scopes if s not in known]
    if unknown:
        raise InvalidInput(f"'{resource.display_name}' has no delegated permission {unknown[0]!r}.")
    grant = next(iter(_grants(session, client, resource, principal_id)), None)
    if grant is None:
        grant = OAuth2PermissionGrant(
            id=object_id(),
            tenant_id=client.tenant_id,
            client_id=client.id,
            resource_id=resource.id,
            consent_type=_consent_type(principal_id),
            principal_id=principal_id,
            scope="",
        )
        session.add(grant)
    current = grant.scope.split()
    grant.scope = " ".join([*current, *(s for s in scopes if s not in current)])
    session.flush()
    touch(session, client.tenant_id)
    return grant


@dataclass(frozen=True)
class ConfiguredPermission:
    """One entry of ``requiredResourceAccess`` and whether admin consent has granted it."""

    resource_app_id: str
    resource_name: str
    permission_id: str
    value: str
    kind: PermissionKind
    granted: bool


def configured_permissions(session: Session, app: Application) -> list[ConfiguredPermission]:
    """The portal's "Configured permissions" list, with each one's consent status."""
    client = service_principal_for_app(session, app.tenant_id, app.app_id)
    found = []
    for entry in app.required_resource_access:
        resource = find_resource(session, app.tenant_id, entry["resourceAppId"])
        roles = granted_role_values(session, client.id, resource) if client and resource else ()
        scopes = _granted_scopes(session, client, resource)
        name = resource.display_name if resource else entry["resourceAppId"]
        for access in entry["resourceAccess"]:
            kind = PermissionKind(access["type"])
            value = _permission_value(resource, access["id"], kind)
            granted = value in (roles if kind is PermissionKind.ROLE else scopes)
            found.append(
                ConfiguredPermission(
                    entry["resourceAppId"], name, access["id"], value, kind, granted
                )
            )
    return found


def _granted_scopes(
    session: Session, client: ServicePrincipal | None, resource: ServicePrincipal | None
) -> set[str]:
    if client is None or resource is None:
        return set()
    return {s for grant in _grants(session, client, resource) for s in grant.scope.split()}


def _permission_value(resource: ServicePrincipal | None, item_id: str, kind: PermissionKind) -> str:
    """The permission's value, or its id when the API (or the permission) no longer exists."""
    if resource is None:
        return item_id
    return next((i["value"] for i in permissions_of(resource, kind) if i["id"] == item_id), item_id)


def list_grants(
    session: Session, tenant_id: str, client_id: str | None = None
) -> Sequence[OAuth2PermissionGrant]:
    query = select(OAuth2PermissionGrant).where(OAuth2PermissionGrant.tenant_id == tenant_id)
    if client_id is not None:
        query = query.where(OAuth2PermissionGrant.client_id == client_id)
    return session.scalars(query.order_by(OAuth2PermissionGrant.id)).all()


def get_grant(session: Session, tenant_id: str, grant_id: str) -> OAuth2PermissionGrant:
    grant = session.get(OAuth2PermissionGrant, grant_id)
    if grant is None or grant.tenant_id != tenant_id:
        raise NotFound(f"oauth2PermissionGrant '{grant_id[:64]}' does not exist.")
    return grant


def set_grant_scopes(
    session: Session, grant: OAuth2PermissionGrant, scopes: Sequence[str]
) -> OAuth2PermissionGrant:
    """Replace the delegated permissions a grant holds (Graph ``PATCH scope``)."""
    resource = session.get_one(ServicePrincipal, grant.resource_id)  # a foreign key
    known = {s["value"] for s in resource.oauth2_permission_scopes}
    unknown = [s for s in scopes if s not in known]
    if unknown:
        raise InvalidInput(f"'{resource.display_name}' has no delegated permission {unknown[0]!r}.")
    grant.scope = " ".join(dict.fromkeys(scopes))
    session.flush()
    touch(session, grant.tenant_id)
    return grant


def delete_grant(session: Session, grant: OAuth2PermissionGrant) -> None:
    session.delete(grant)
    session.flush()
    touch(session, grant.tenant_id)
