"""The tenant's user consent setting: whether people may consent for themselves to what an
application asks of them (Entra ID: Enterprise applications → Consent and permissions → User
consent settings; Graph: ``authorizationPolicy.defaultUserRolePermissions``).

When allowed, a person consents to delegated permissions of type "User"; "Admin" ones always
need an administrator (``delegation.may_consent``). The portal, the CLI and the Graph API all
change it through ``set_users_can_consent``.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from dicomite.identity.version import touch
from dicomite.store.tables import Tenant


def users_can_consent(session: Session, tenant_id: str) -> bool:
    return session.get_one(Tenant, tenant_id).users_can_consent


def set_users_can_consent(session: Session, tenant_id: str, allowed: bool) -> None:
    """Change the setting; the next authorization request follows it, on every host."""
    session.get_one(Tenant, tenant_id).users_can_consent = allowed
    session.flush()
    touch(session, tenant_id)
