"""Service principals: the instances of applications and built-in APIs in the tenant, and the
names (identifier URIs, appId) by which a resource is found when a token is requested."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dicomite.identity.builtin import BuiltinApi
from dicomite.identity.problems import Conflict, InvalidInput, NotFound
from dicomite.identity.validation import check_guid
from dicomite.identity.version import touch
from dicomite.store.tables import Application, ServicePrincipal, ServicePrincipalName, Tenant


def ensure_builtin_api(session: Session, tenant: Tenant, api: BuiltinApi, now: datetime) -> None:
    sp = session.scalar(
        select(ServicePrincipal).where(
            ServicePrincipal.tenant_id == tenant.id, ServicePrincipal.app_id == api.app_id
        )
    )
    if sp is None:
        sp = ServicePrincipal(
            id=str(uuid.uuid4()),
            tenant_id=tenant.id,
            app_id=api.app_id,
            created_at=now,
            is_builtin=True,
        )
        session.add(sp)
    sp.display_name = api.display_name
    sp.app_roles = list(api.app_roles)
    sp.oauth2_permission_scopes = list(api.oauth2_permission_scopes)
    sp.requested_access_token_version = api.requested_access_token_version
    session.flush()
    _set_names(session, sp, api.identifier_uris)
    touch(session, tenant.id)


def service_principal_for_app(
    session: Session, tenant_id: str, app_id: str
) -> ServicePrincipal | None:
    return session.scalar(
        select(ServicePrincipal).where(
            ServicePrincipal.tenant_id == tenant_id, ServicePrincipal.app_id == app_id
        )
    )


def create_service_principal(session: Session, app: Application, now: datetime) -> ServicePrincipal:
    if service_principal_for_app(session, app.tenant_id, app.app_id) is not None:
        raise Conflict(f"A service principal for appId '{app.app_id}' already exists.")
    sp = ServicePrincipal(
        id=str(uuid.uuid4()),
        tenant_id=app.tenant_id,
        app_id=app.app_id,
        application_id=app.id,
        display_name=app.display_name,
        created_at=now,
    )
    session.add(sp)
    session.flush()
    sync_service_principal(session, sp, app)
    touch(session, app.tenant_id)
    return sp


def ensure_service_principal(session: Session, app: Application, now: datetime) -> ServicePrincipal:
    existing = service_principal_for_app(session, app.tenant_id, app.app_id)
    return existing or create_service_principal(session, app, now)


def sync_service_principal(session: Session, sp: ServicePrincipal, app: Application) -> None:
    sp.display_name = app.display_name
    sp.app_roles = list(app.app_roles)
    sp.oauth2_permission_scopes = list(app.oauth2_permission_scopes)
    sp.requested_access_token_version = app.requested_access_token_version
    session.flush()
    _set_names(session, sp, app.identifier_uris)


def _set_names(session: Session, sp: ServicePrincipal, uris: Sequence[str]) -> None:
    """servicePrincipalNames = identifier URIs + appId; a name belongs to one principal."""
    names = {*uris, sp.app_id}
    taken = session.scalars(
        select(ServicePrincipalName.name).where(
            ServicePrincipalName.tenant_id == sp.tenant_id,
            ServicePrincipalName.name.in_(names),
            ServicePrincipalName.service_principal_id != sp.id,
        )
    ).all()
    if taken:
        raise Conflict(
            "Another object with the same value for property identifierUris already exists: "
            + ", ".join(sorted(taken))
        )
    session.execute(
        delete(ServicePrincipalName).where(ServicePrincipalName.service_principal_id == sp.id)
    )
    session.add_all(
        ServicePrincipalName(tenant_id=sp.tenant_id, name=n, service_principal_id=sp.id)
        for n in sorted(names)
    )
    session.flush()


def service_principal_names(session: Session, sp: ServicePrincipal) -> list[str]:
    return list(
        session.scalars(
            select(ServicePrincipalName.name)
            .where(ServicePrincipalName.service_principal_id == sp.id)
            .order_by(ServicePrincipalName.name)
        )
    )


def list_service_principals(
    session: Session, tenant_id: str, app_id: str | None = None
) -> Sequence[ServicePrincipal]:
    query = select(ServicePrincipal).where(ServicePrincipal.tenant_id == tenant_id)
    if app_id is not None:
        query = query.where(ServicePrincipal.app_id == app_id)
    return session.scalars(query.order_by(ServicePrincipal.created_at, ServicePrincipal.id)).all()


def get_service_principal(session: Session, tenant_id: str, object_id: str) -> ServicePrincipal:
    sp = session.get(ServicePrincipal, check_guid(object_id, "servicePrincipal id"))
    if sp is None or sp.tenant_id != tenant_id:
        raise NotFound.for_object(object_id)
    return sp


def delete_service_principal(session: Session, sp: ServicePrincipal) -> None:
    if sp.is_builtin:
        raise InvalidInput("Built-in API service principals cannot be deleted.")
    session.delete(sp)
    session.flush()
    touch(session, sp.tenant_id)


def find_resource(session: Session, tenant_id: str, name: str) -> ServicePrincipal | None:
    """A resource by any of its servicePrincipalNames (identifier URI or appId)."""
    return session.scalar(
        select(ServicePrincipal)
        .join(ServicePrincipalName)
        .where(ServicePrincipalName.tenant_id == tenant_id, ServicePrincipalName.name == name)
    )


def resource_apis(session: Session, tenant_id: str) -> Sequence[ServicePrincipal]:
    """APIs my organization uses: principals that expose app roles or delegated scopes."""
    return [
        sp
        for sp in list_service_principals(session, tenant_id)
        if sp.app_roles or sp.oauth2_permission_scopes
    ]
