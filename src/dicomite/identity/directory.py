"""Tenants and applications: the directory's domain rules (service principals live in
``principals``).

The management API, the CLI and the portal all call these functions; none of them holds rules
of its own. Every write bumps the tenant's ``directory_version`` (``version.touch``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from dicomite.identity.principals import (
    create_service_principal,
    service_principal_for_app,
    sync_service_principal,
)
from dicomite.identity.problems import Conflict, InvalidInput, NotFound
from dicomite.identity.validation import (
    PLATFORMS,
    check_display_name,
    check_flag,
    check_guid,
    check_identifier_uri_owned,
    check_logout_url,
    check_redirect_uri_count,
    normalize_app_roles,
    normalize_identifier_uris,
    normalize_redirect_uris,
    normalize_required_resource_access,
    normalize_scopes,
)
from dicomite.identity.version import touch
from dicomite.store.tables import Application, ServicePrincipal, ServicePrincipalName, Tenant

_UNSET: Any = object()
# Graph's platform (application property) -> the Application attribute (and update_application
# keyword) holding its redirect URIs.
REDIRECT_URIS = dict(
    zip(
        PLATFORMS,
        ("redirect_uris", "spa_redirect_uris", "public_client_redirect_uris"),
        strict=True,
    )
)
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")


# --- tenants -------------------------------------------------------------------------------


def ensure_tenant(
    session: Session, tenant_id: str, domain: str, display_name: str, now: datetime
) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        if not _DOMAIN.match(domain.lower()):
            raise InvalidInput(f"'{domain}' is not a valid domain name.")
        tenant = Tenant(
            id=tenant_id, domain=domain.lower(), display_name=display_name, created_at=now
        )
        session.add(tenant)
        session.flush()
    return tenant


def find_tenant(session: Session, reference: str) -> Tenant | None:
    """A tenant by its GUID or by its domain name, case-insensitively."""
    reference = reference.lower()
    try:
        return session.get(Tenant, str(uuid.UUID(reference)))
    except ValueError:
        return session.scalar(select(Tenant).where(Tenant.domain == reference))


# --- applications ----------------------------------------------------------------------------


def register_app(
    session: Session,
    tenant_id: str,
    now: datetime,
    display_name: str,
    *,
    owner_user_id: str | None = None,
    **fields: Any,
) -> tuple[Application, ServicePrincipal]:
    """Register an application as Entra's portal does: the application object and, at once, its
    service principal (the app's instance in the tenant, which consent and sign-ins need).
    ``fields`` are ``update_application``'s keywords."""
    app = create_application(
        session, tenant_id, now, display_name, owner_user_id=owner_user_id, **fields
    )
    return app, create_service_principal(session, app, now)


def create_application(
    session: Session,
    tenant_id: str,
    now: datetime,
    display_name: str,
    *,
    app_id: str | None = None,
    owner_user_id: str | None = None,
    **fields: Any,
) -> Application:
    """The application object alone, as Graph's ``POST /applications`` makes it (its service
    principal is ``POST /servicePrincipals``); ``app_id`` is chosen only by the bootstrap
    (env-given client id)."""
    app = Application(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        app_id=check_guid(app_id, "appId") if app_id else str(uuid.uuid4()),
        display_name=check_display_name(display_name),
        created_at=now,
        identifier_uris=[],
        app_roles=[],
        oauth2_permission_scopes=[],
        required_resource_access=[],
        redirect_uris=[],
        spa_redirect_uris=[],
        public_client_redirect_uris=[],
        enable_access_token_issuance=False,
        enable_id_token_issuance=False,
        is_fallback_public_client=False,
        owner_user_id=owner_user_id,
    )
    session.add(app)
    session.flush()
    update_application(session, app, **fields)
    return app


def default_identifier_uri(app: Application) -> str:
    """The Application ID URI Entra's portal suggests, which the identifier-URI rule always
    accepts: ``api://{appId}``."""
    return f"api://{app.app_id}"


def update_application(
    session: Session,
    app: Application,
    *,
    display_name: str = _UNSET,
    description: str | None = _UNSET,
    sign_in_audience: str = _UNSET,
    identifier_uris: Sequence[str] = _UNSET,
    app_roles: Sequence[dict[str, Any]] = _UNSET,
    oauth2_permission_scopes: Sequence[dict[str, Any]] = _UNSET,
    requested_access_token_version: int | None = _UNSET,
    required_resource_access: Sequence[dict[str, Any]] = _UNSET,
    redirect_uris: Sequence[str] = _UNSET,
    spa_redirect_uris: Sequence[str] = _UNSET,
    public_client_redirect_uris: Sequence[str] = _UNSET,
    logout_url: str | None = _UNSET,
    enable_access_token_issuance: bool = _UNSET,
    enable_id_token_issuance: bool = _UNSET,
    is_fallback_public_client: bool = _UNSET,
) -> Application:
    if display_name is not _UNSET:
        app.display_name = check_display_name(display_name)
    if description is not _UNSET:
        app.description = _check_description(description)
    if sign_in_audience is not _UNSET and sign_in_audience != "AzureADMyOrg":
        raise InvalidInput("Only 'AzureADMyOrg' (this directory only) is supported.")
    if identifier_uris is not _UNSET:
        uris = normalize_identifier_uris(identifier_uris)
        _check_new_uris_owned(session, app, [u for u in uris if u not in app.identifier_uris])
        app.identifier_uris = uris
        _check_uris_free(session, app)
    if app_roles is not _UNSET:
        app.app_roles = _keep_enabled(app.app_roles, normalize_app_roles(app_roles), "app role")
    if oauth2_permission_scopes is not _UNSET:
        scopes = normalize_scopes(oauth2_permission_scopes)
        app.oauth2_permission_scopes = _keep_enabled(app.oauth2_permission_scopes, scopes, "scope")
    _check_unique_values(app.app_roles, app.oauth2_permission_scopes)
    if requested_access_token_version is not _UNSET:
        if requested_access_token_version not in (None, 1, 2):
            raise InvalidInput("api.requestedAccessTokenVersion must be null, 1 or 2.")
        app.requested_access_token_version = requested_access_token_version
    if required_resource_access is not _UNSET:
        app.required_resource_access = normalize_required_resource_access(required_resource_access)
    _set_redirect_uris(
        app,
        {
            "web": redirect_uris,
            "spa": spa_redirect_uris,
            "publicClient": public_client_redirect_uris,
        },
    )
    if logout_url is not _UNSET:
        app.logout_url = check_logout_url(logout_url)
    _set_flags(
        app,
        {
            "enable_access_token_issuance": enable_access_token_issuance,
            "enable_id_token_issuance": enable_id_token_issuance,
            "is_fallback_public_client": is_fallback_public_client,
        },
    )
    session.flush()
    sp = service_principal_for_app(session, app.tenant_id, app.app_id)
    if sp is not None:
        sync_service_principal(session, sp, app)
    touch(session, app.tenant_id)
    return app


def _set_redirect_uris(app: Application, given: dict[str, Any]) -> None:
    """Each platform's URIs are checked by its own rules; the limit of 256 counts them all."""
    for platform, uris in given.items():
        if uris is not _UNSET:
            setattr(app, REDIRECT_URIS[platform], normalize_redirect_uris(uris, platform))
    check_redirect_uri_count(*(redirect_uris_of(app, p) for p in PLATFORMS))


# Graph's names of the flags, for messages.
_FLAGS = {
    "enable_access_token_issuance": "web.implicitGrantSettings.enableAccessTokenIssuance",
    "enable_id_token_issuance": "web.implicitGrantSettings.enableIdTokenIssuance",
    "is_fallback_public_client": "isFallbackPublicClient",
}


def _set_flags(app: Application, given: dict[str, Any]) -> None:
    for attribute, value in given.items():
        if value is not _UNSET:
            setattr(app, attribute, check_flag(value, _FLAGS[attribute]))


def redirect_uris_of(app: Application, platform: str) -> list[str]:
    """The redirect URIs registered for ``platform`` ("web", "spa" or "publicClient")."""
    return list(getattr(app, redirect_uris_keyword(platform)))


def add_redirect_uri(session: Session, app: Application, platform: str, uri: str) -> Application:
    """Appends ``uri`` to the platform's list (as the Azure portal's Authentication blade)."""
    changes: dict[str, Any] = {
        redirect_uris_keyword(platform): [*redirect_uris_of(app, platform), uri]
    }
    return update_application(session, app, **changes)


def remove_redirect_uri(session: Session, app: Application, platform: str, uri: str) -> Application:
    uris = redirect_uris_of(app, platform)
    if uri not in uris:
        raise NotFound(f"The {platform} platform has no redirect URI '{uri[:80]}'.")
    changes: dict[str, Any] = {redirect_uris_keyword(platform): [u for u in uris if u != uri]}
    return update_application(session, app, **changes)


def redirect_uris_keyword(platform: str) -> str:
    """``update_application``'s keyword for the platform's redirect URIs."""
    if platform not in REDIRECT_URIS:
        raise InvalidInput(f"The platform must be one of {', '.join(PLATFORMS)}.")
    return REDIRECT_URIS[platform]


def _check_new_uris_owned(session: Session, app: Application, new: Sequence[str]) -> None:
    """Entra's identifier-URI rule, for values added now: those already stored stay valid."""
    tenant = session.get(Tenant, app.tenant_id)
    domains = [tenant.domain] if tenant is not None else []
    for uri in new:
        check_identifier_uri_owned(uri, app_id=app.app_id, tenant_id=app.tenant_id, domains=domains)


def _check_uris_free(session: Session, app: Application) -> None:
    """identifierUris are unique in the tenant, among applications and built-in APIs alike, and
    compared as Entra ID compares them: without regard to letter case or a trailing slash."""
    keys = {_uri_key(uri) for uri in app.identifier_uris}
    if not keys:
        return
    others = session.scalars(
        select(Application).where(Application.tenant_id == app.tenant_id, Application.id != app.id)
    )
    taken = {uri for other in others for uri in other.identifier_uris if _uri_key(uri) in keys}
    owner = select(ServicePrincipalName.name).where(
        ServicePrincipalName.tenant_id == app.tenant_id,
        func.lower(ServicePrincipalName.name).in_(keys | {f"{key}/" for key in keys}),
        ServicePrincipalName.service_principal_id.not_in(
            select(ServicePrincipal.id).where(ServicePrincipal.app_id == app.app_id)
        ),
    )
    taken |= set(session.scalars(owner))
    if taken:
        raise Conflict(
            "Another object with the same value for property identifierUris already exists: "
            + ", ".join(sorted(taken))
        )


def _uri_key(uri: str) -> str:
    return uri.rstrip("/").lower()


def _keep_enabled(
    before: Sequence[dict[str, Any]], after: list[dict[str, Any]], what: str
) -> list[dict[str, Any]]:
    """Entra ID refuses to delete an enabled app role or scope (Graph error
    CannotDeleteOrUpdateEnabledEntitlement): it must be disabled by an earlier update."""
    kept = {item["id"] for item in after}
    for item in before:
        if item["id"] not in kept and item.get("isEnabled", True):
            raise InvalidInput(
                f"The {what} '{item.get('value')}' must be disabled (isEnabled false) before "
                "it is deleted."
            )
    return after


def _check_description(description: str | None) -> str | None:
    if description is not None and len(description) > 1024:
        raise InvalidInput("description must be at most 1024 characters.")
    return description


def _check_unique_values(roles: list[dict[str, Any]], scopes: list[dict[str, Any]]) -> None:
    values = [r["value"] for r in roles if r.get("value")]
    values += [s["value"] for s in scopes if s.get("value")]
    ids = [r["id"] for r in roles] + [s["id"] for s in scopes]
    if len(set(values)) != len(values) or len(set(ids)) != len(ids):
        raise InvalidInput("App role and permission scope ids and values must be unique.")


def list_applications(
    session: Session, tenant_id: str, search: str | None = None
) -> Sequence[Application]:
    query = select(Application).where(Application.tenant_id == tenant_id)
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(
            or_(func.lower(Application.display_name).like(pattern), Application.app_id == search)
        )
    return session.scalars(query.order_by(Application.created_at, Application.id)).all()


def get_application(session: Session, tenant_id: str, object_id: str) -> Application:
    app = session.get(Application, check_guid(object_id, "application id"))
    if app is None or app.tenant_id != tenant_id:
        raise NotFound.for_object(object_id)
    return app


def find_application_by_app_id(session: Session, tenant_id: str, app_id: str) -> Application | None:
    return session.scalar(
        select(Application).where(Application.tenant_id == tenant_id, Application.app_id == app_id)
    )


def get_application_by_app_id(session: Session, tenant_id: str, app_id: str) -> Application:
    app = session.scalar(
        select(Application).where(
            Application.tenant_id == tenant_id,
            Application.app_id == check_guid(app_id, "appId"),
        )
    )
    if app is None:
        raise NotFound(f"Application with appId '{app_id}' does not exist.")
    return app


def delete_application(session: Session, app: Application) -> None:
    session.execute(
        delete(ServicePrincipal).where(
            ServicePrincipal.tenant_id == app.tenant_id, ServicePrincipal.app_id == app.app_id
        )
    )
    session.delete(app)
    session.flush()
    touch(session, app.tenant_id)


def application_by_reference(session: Session, tenant_id: str, reference: str) -> Application:
    """An application by appId, object id, or exact display name (which must be unambiguous)."""
    try:
        guid = check_guid(reference, "id")
    except InvalidInput:
        guid = None
    if guid is not None:
        found = find_application_by_app_id(session, tenant_id, guid)
        app = found or session.get(Application, guid)
        if app is not None and app.tenant_id == tenant_id:
            return app
    named = session.scalars(
        select(Application).where(
            Application.tenant_id == tenant_id, Application.display_name == reference
        )
    ).all()
    if len(named) > 1:
        raise Conflict(f"{len(named)} applications are named '{reference}'; use the appId.")
    if not named:
        raise NotFound(f"No application '{reference}' exists in this tenant.")
    return named[0]
