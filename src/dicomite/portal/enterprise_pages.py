"""Enterprise applications: the tenant's service principals, the permissions each one was granted
(by admin consent, or by people for themselves), and (for an API) which applications hold its
roles. Read-only, as consent is given and revoked on the app registration's API permissions
blade; and "Consent and permissions", the tenant's user consent setting (a Global
Administrator's)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from dicomite.identity import consent, policy, principals, user_consent
from dicomite.identity.permission_kind import PermissionKind
from dicomite.portal.web import Page, Portal
from dicomite.store.tables import Application, AppRoleAssignment, ServicePrincipal

APPLICATION_TYPES = {
    "": "All applications",
    "directory": "This directory",
    "builtin": "Microsoft built-in",
}


def routes(portal: Portal) -> list[Route]:
    return [
        portal.route("/enterprise", list_principals),
        # Before "/enterprise/{sp}": a service principal's id is a GUID, never "consent".
        portal.route("/enterprise/consent", consent_settings),
        portal.route("/enterprise/consent", save_consent_settings, methods=["POST"]),
        portal.route("/enterprise/{sp}", overview),
        portal.route("/enterprise/{sp}/permissions", permissions),
        portal.route("/enterprise/{sp}/users", users_and_groups),
    ]


def require_directory_role(page: Page) -> None:
    """Enterprise applications and sign-in logs are for people who work on the directory."""
    policy.require(policy.can_read_directory(page.user), policy.READ_DIRECTORY)


def application_type(sp: ServicePrincipal) -> str:
    return APPLICATION_TYPES["builtin" if sp.is_builtin else "directory"]


def list_principals(page: Page) -> Response:
    require_directory_role(page)
    search = page.query.get("search", "").strip()[:256]
    kind = page.query.get("type", "")
    with page.read() as session:
        found = principals.list_service_principals(session, page.tenant_id)
    rows = [sp for sp in found if _matches(sp, search.lower(), kind)]
    return page.render(
        "enterprise_list.html",
        title="Enterprise applications",
        principals=rows,
        search=search,
        kind=kind if kind in APPLICATION_TYPES else "",
        types=APPLICATION_TYPES,
        application_type=application_type,
    )


def _matches(sp: ServicePrincipal, search: str, kind: str) -> bool:
    if kind and (kind == "builtin") != sp.is_builtin:
        return False
    return not search or search in sp.display_name.lower() or search in (sp.app_id, sp.id)


def consent_settings(page: Page) -> Response:
    require_directory_role(page)
    with page.read() as session:
        allowed = user_consent.users_can_consent(session, page.tenant_id)
    return page.render(
        "enterprise_consent.html",
        title="Consent and permissions",
        users_can_consent=allowed,
        may_change=policy.can_manage_consent_settings(page.user),
    )


def save_consent_settings(page: Page) -> Response:
    policy.require_manage_consent_settings(page.user)
    with page.write() as session:
        allowed = page.field("user_consent") == "allow"
        user_consent.set_users_can_consent(session, page.tenant_id, allowed)
    return page.redirect("/enterprise/consent", notice="consent-settings-saved")


@dataclass(frozen=True)
class Granted:
    """One row of the Permissions blade: a permission this principal holds on an API."""

    api: ServicePrincipal
    value: str
    name: str
    kind: PermissionKind
    granted_on: datetime | None
    through: str = "Admin consent"


@dataclass(frozen=True)
class Holder:
    """One row of "Users and groups": a principal holding one of this API's app roles."""

    principal: ServicePrincipal
    role: str
    value: str
    assigned_on: datetime


def overview(page: Page) -> Response:
    with page.read() as session:
        sp, values = _blade(page, session)
        names = [n for n in principals.service_principal_names(session, sp) if n != sp.app_id]
    return page.render("enterprise_overview.html", identifier_uris=names, **values)


def permissions(page: Page) -> Response:
    with page.read() as session:
        sp, values = _blade(page, session)
        rows = [*_application_permissions(session, sp), *_delegated_permissions(session, sp)]
    return page.render("enterprise_permissions.html", granted=rows, **values)


def users_and_groups(page: Page) -> Response:
    with page.read() as session:
        sp, values = _blade(page, session)
        holders = [_holder(session, sp, a) for a in consent.assignments_to(session, sp)]
    return page.render("enterprise_users.html", holders=holders, **values)


def _blade(page: Page, session: Session) -> tuple[ServicePrincipal, dict[str, Any]]:
    """The principal in the path and what every page of its blade shows."""
    require_directory_role(page)
    sp = principals.get_service_principal(session, page.tenant_id, page.params["sp"])
    app = session.get(Application, sp.application_id) if sp.application_id else None
    manageable = app is not None and policy.can_manage_application(page.user, app)
    values = {
        "title": sp.display_name,
        "sp": sp,
        "application_type": application_type(sp),
        "registration": app if manageable else None,
    }
    return sp, values


def _item(items: Sequence[dict[str, Any]], key: str, wanted: str) -> dict[str, Any]:
    return next((i for i in items if i.get(key) == wanted), {})


def _application_permissions(session: Session, sp: ServicePrincipal) -> list[Granted]:
    rows = []
    for assignment in consent.assignments_of(session, sp):
        api = session.get_one(ServicePrincipal, assignment.resource_id)  # a foreign key
        role = _item(api.app_roles, "id", assignment.app_role_id)
        value, name = role.get("value", assignment.app_role_id), role.get("displayName", "")
        rows.append(Granted(api, value, name, PermissionKind.ROLE, assignment.created_at))
    return rows


def _delegated_permissions(session: Session, sp: ServicePrincipal) -> list[Granted]:
    rows = []
    for grant in consent.list_grants(session, sp.tenant_id, client_id=sp.id):
        api = session.get_one(ServicePrincipal, grant.resource_id)  # a foreign key
        through = (
            "Admin consent" if grant.consent_type == consent.ALL_PRINCIPALS else "User consent"
        )
        for value in grant.scope.split():
            scope = _item(api.oauth2_permission_scopes, "value", value)
            name = scope.get("adminConsentDisplayName") or ""
            rows.append(Granted(api, value, name, PermissionKind.SCOPE, None, through))
    return rows


def _holder(session: Session, sp: ServicePrincipal, assignment: AppRoleAssignment) -> Holder:
    principal = session.get_one(ServicePrincipal, assignment.principal_id)  # a foreign key
    role = _item(sp.app_roles, "id", assignment.app_role_id)
    value = role.get("value", assignment.app_role_id)
    return Holder(principal, role.get("displayName", value), value, assignment.created_at)
