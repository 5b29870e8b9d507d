"""The tenant's directory version: bumped by every directory write, in the same transaction,
so that token issuing (which caches what it reads) notices the change on its next request."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from dicomite.store.tables import Tenant


def touch(session: Session, tenant_id: str) -> None:
    session.execute(
        update(Tenant)
        .where(Tenant.id == tenant_id)
        .values(directory_version=Tenant.directory_version + 1)
    )
