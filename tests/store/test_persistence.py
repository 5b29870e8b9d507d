"""What one process writes, the next one reads: a restart keeps the deployment."""

from __future__ import annotations

from sqlalchemy import select

from dicomite.bootstrap import Context, prepare
from dicomite.clock import utcnow
from dicomite.identity import directory
from dicomite.store.db import Store
from dicomite.store.tables import Application, SigningKey


def test_data_survives_a_new_store(context: Context) -> None:
    with context.store.write() as session:
        app_id = directory.create_application(
            session, context.tenant_id, utcnow(), "Survivor"
        ).app_id
    with context.store.read() as session:
        kids = set(session.scalars(select(SigningKey.kid)))
    context.store.dispose()

    reopened = Store(context.store.url)
    try:
        with reopened.read() as session:
            names = session.scalars(
                select(Application.display_name).where(Application.app_id == app_id)
            ).all()
    finally:
        reopened.dispose()
    restarted = prepare(context.settings)
    try:
        with restarted.store.read() as session:
            kids_after = set(session.scalars(select(SigningKey.kid)))
    finally:
        restarted.store.dispose()
    assert names == ["Survivor"]
    assert restarted.tenant_id == context.tenant_id
    assert kids_after == kids
