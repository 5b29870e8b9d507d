"""API permissions: configured permissions, Request API permissions, admin consent.

Consent is decided per API by ``policy.can_grant_consent``: a grant (or revoke) goes through
only when the signed-in person may consent on *every* API it touches, so an Application
Administrator cannot slip a Microsoft Graph permission in next to a DICOM one. An application
that holds Microsoft Graph permissions has its permissions and consent changed only by a Global
Administrator (``policy.require_access_change``, through ``changeable_app``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from dicomite.identity import consent, policy, principals
from dicomite.identity.permission_kind import PermissionKind
from dicomite.identity.problems import InvalidInput, NotAllowed, NotFound
from dicomite.portal.apps_pages import changeable_app, manageable_app
from dicomite.portal.web import Page, Portal
from dicomite.store.tables import Application, ServicePrincipal


def routes(portal: Portal) -> list[Route]:
    base = "/apps/{app}/permissions"
    return [
        portal.route(base, configured),
        portal.route(f"{base}/add", choose_api),
        portal.route(f"{base}/add/{{api}}", choose_permissions),
        portal.route(f"{base}/add/{{api}}", add, methods=["POST"]),
        portal.route(f"{base}/remove", remove, methods=["POST"]),
        portal.route(f"{base}/consent", grant_form),
        portal.route(f"{base}/consent", grant, methods=["POST"]),
        portal.route(f"{base}/revoke", revoke_form),
        portal.route(f"{base}/revoke", revoke, methods=["POST"]),
    ]


@dataclass(frozen=True)
class Row:
    """One line of "Configured permissions"."""

    permission: consent.ConfiguredPermission
    description: str

    @property
    def type_label(self) -> str:
        return self.permission.kind.label


# --- who may consent --------------------------------------------------------------------------


def _configured_apis(session: Session, app: Application) -> list[ServicePrincipal]:
    """The APIs a consent would grant on (those the app asks for that exist in the tenant)."""
    found = (
        principals.find_resource(session, app.tenant_id, entry["resourceAppId"])
        for entry in app.required_resource_access
    )
    return [api for api in found if api is not None]


def _granted_apis(session: Session, app: Application) -> list[ServicePrincipal]:
    """The APIs on which this app holds a grant: what revoking consent removes."""
    client = principals.service_principal_for_app(session, app.tenant_id, app.app_id)
    if client is None:
        return []
    ids = {a.resource_id for a in consent.assignments_of(session, client)}
    ids |= {g.resource_id for g in consent.list_grants(session, app.tenant_id, client.id)}
    found = (session.get(ServicePrincipal, resource_id) for resource_id in sorted(ids))
    return [api for api in found if api is not None]


def consent_refusal(page: Page, session: Session, apis: Iterable[ServicePrincipal]) -> str:
    """Why the signed-in person may not consent on ``apis`` ("" when they may)."""
    tenant_apis = principals.resource_apis(session, page.tenant_id)
    if not any(policy.can_grant_consent(page.user, api) for api in tenant_apis):
        return policy.GRANT_CONSENT
    for api in apis:
        try:
            policy.require_grant_consent(page.user, api)
        except NotAllowed as problem:
            return problem.message
    return ""


def _require_consent(page: Page, session: Session, apis: Iterable[ServicePrincipal]) -> None:
    refusal = consent_refusal(page, session, apis)
    if refusal:
        raise NotAllowed(refusal)


# --- Configured permissions -------------------------------------------------------------------


def _rows(session: Session, app: Application) -> list[Row]:
    apis: dict[str, ServicePrincipal | None] = {}
    rows = []
    for permission in consent.configured_permissions(session, app):
        key = permission.resource_app_id
        if key not in apis:
            apis[key] = principals.find_resource(session, app.tenant_id, key)
        rows.append(Row(permission, _description(apis[key], permission)))
    return rows


def _description(api: ServicePrincipal | None, permission: consent.ConfiguredPermission) -> str:
    if api is None:
        return "This API no longer exists in the directory."
    items = consent.permissions_of(api, permission.kind)
    item = next((i for i in items if i["id"] == permission.permission_id), {})
    return str(item.get("displayName") or item.get("adminConsentDisplayName") or "")


def configured(page: Page) -> Response:
    with page.read() as session:
        app = manageable_app(page, session)
        rows = _rows(session, app)
        privileged = policy.access_change_refusal(session, page.user, app)
        grant_refusal = privileged or consent_refusal(page, session, _configured_apis(session, app))
        revoke_refusal = privileged or consent_refusal(page, session, _granted_apis(session, app))
    return page.render(
        "app_permissions.html",
        title=f"{app.display_name} | API permissions",
        app=app,
        rows=rows,
        any_granted=any(r.permission.granted for r in rows),
        grant_refusal=grant_refusal,
        revoke_refusal=revoke_refusal,
    )


# --- Request API permissions ------------------------------------------------------------------


def _matches(api: ServicePrincipal, search: str) -> bool:
    wanted = search.casefold()
    return wanted in api.display_name.casefold() or wanted in api.app_id.casefold()


def choose_api(page: Page) -> Response:
    search = page.query.get("search", "").strip()[:256]
    with page.read() as session:
        app = changeable_app(page, session)
        apis = [a for a in principals.resource_apis(session, page.tenant_id) if _matches(a, search)]
    return page.render(
        "app_permissions_request.html",
        title="Request API permissions",
        app=app,
        apis=apis,
        search=search,
    )


def _api_in_path(page: Page, session: Session) -> ServicePrincipal:
    api = principals.find_resource(session, page.tenant_id, page.params["api"])
    if api is None:
        raise NotFound("That API does not exist in this directory.")
    return api


def _offered(api: ServicePrincipal, kind: PermissionKind) -> list[dict[str, Any]]:
    """The permissions of ``kind`` an application can ask for on ``api``."""
    if kind is PermissionKind.ROLE:
        return [
            r
            for r in api.app_roles
            if "Application" in r["allowedMemberTypes"] and r.get("isEnabled", True)
        ]
    return [s for s in api.oauth2_permission_scopes if s.get("isEnabled", True)]


def _configured_ids(app: Application, api: ServicePrincipal) -> set[str]:
    return {
        access["id"]
        for entry in app.required_resource_access
        if entry["resourceAppId"] == api.app_id
        for access in entry["resourceAccess"]
    }


def choose_permissions(page: Page, error: str = "", status: int = 200) -> Response:
    kind_name = page.field("type") or page.query.get("type", "")
    kind = PermissionKind.labelled(kind_name)
    with page.read() as session:
        app = changeable_app(page, session)
        api = _api_in_path(page, session)
    return page.render(
        "app_permissions_choose.html",
        status,
        title="Request API permissions",
        app=app,
        api=api,
        kind_name=kind_name if kind else "",
        kind_label=kind.label if kind else "",
        offered=_offered(api, kind) if kind else [],
        configured_ids=_configured_ids(app, api),
        chosen=set(page.fields("permission")),
        error=error,
    )


def _add_chosen(
    session: Session,
    app: Application,
    api: ServicePrincipal,
    kind: PermissionKind | None,
    chosen: Sequence[str],
) -> None:
    if kind is None:
        raise InvalidInput("Choose Delegated permissions or Application permissions.")
    if not chosen:
        raise InvalidInput("Select at least one permission to add.")
    ids = dict.fromkeys(consent.find_permission(api, ref, kind)["id"] for ref in chosen)
    already = _configured_ids(app, api)
    for permission_id in (i for i in ids if i not in already):
        consent.add_permission(session, app, api, permission_id, kind)


def add(page: Page) -> Response:
    kind = PermissionKind.labelled(page.field("type"))
    try:
        with page.write() as session:
            app = changeable_app(page, session)
            _add_chosen(session, app, _api_in_path(page, session), kind, page.fields("permission"))
    except InvalidInput as problem:
        return choose_permissions(page, problem.message, 400)
    return page.redirect(f"/apps/{app.id}/permissions", notice="permission-added")


def remove(page: Page) -> Response:
    """Stop asking for a permission. Its grant goes too, so a granted one needs consent rights."""
    permission_id = page.field("permission")
    with page.write() as session:
        app = changeable_app(page, session)
        api = principals.find_resource(session, page.tenant_id, page.field("api"))
        if api is None or permission_id not in _configured_ids(app, api):
            raise NotFound("That permission is not configured on this application.")
        granted = any(
            p.granted and p.permission_id == permission_id and p.resource_app_id == api.app_id
            for p in consent.configured_permissions(session, app)
        )
        if granted:
            _require_consent(page, session, [api])
        consent.remove_permission(session, app, api, permission_id)
    return page.redirect(f"/apps/{app.id}/permissions", notice="permission-removed")


# --- admin consent ----------------------------------------------------------------------------


def _confirmation(page: Page, action: str) -> Response:
    apis_of = _configured_apis if action == "grant" else _granted_apis
    with page.read() as session:
        app = changeable_app(page, session)
        _require_consent(page, session, apis_of(session, app))
        rows = _rows(session, app)
    return page.render(
        "app_permissions_consent.html",
        title=f"{app.display_name} | API permissions",
        app=app,
        action=action,
        rows=rows,
    )


def grant_form(page: Page) -> Response:
    return _confirmation(page, "grant")


def revoke_form(page: Page) -> Response:
    return _confirmation(page, "revoke")


def grant(page: Page) -> Response:
    with page.write() as session:
        app = changeable_app(page, session)
        _require_consent(page, session, _configured_apis(session, app))
        consent.grant_admin_consent(session, app, page.now)
    return page.redirect(f"/apps/{app.id}/permissions", notice="consent-granted")


def revoke(page: Page) -> Response:
    with page.write() as session:
        app = changeable_app(page, session)
        _require_consent(page, session, _granted_apis(session, app))
        consent.revoke_admin_consent(session, app)
    return page.redirect(f"/apps/{app.id}/permissions", notice="consent-revoked")
