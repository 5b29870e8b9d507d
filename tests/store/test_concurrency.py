"""Several processes on one store: simultaneous first starts and contended writes."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from dicomite.bootstrap import BOOTSTRAP_APP_NAME, open_context
from dicomite.identity import credentials
from dicomite.identity.keys import KeyRing
from dicomite.store.tables import Application, SigningKey, Tenant
from tests.fixtures.stores import store_settings
from tests.store.processes import add_applications, prepare_deployment, run_together


def test_two_processes_prepare_one_fresh_store(data_dir: Path, store_url: str) -> None:
    settings = store_settings(data_dir, store_url)

    tenant_ids = run_together(prepare_deployment, [(settings,), (settings,)])

    context = open_context(settings)
    try:
        with context.store.read() as session:
            tenants = session.scalars(select(Tenant.id)).all()
            keys = session.scalar(select(func.count()).select_from(SigningKey))
            bootstrap = session.scalars(
                select(Application).where(Application.display_name == BOOTSTRAP_APP_NAME)
            ).all()
            saved = json.loads(settings.bootstrap_file.read_text())
            digest = context.protection.secret_hash(saved["client_secret"])
            secret_works = any(
                credentials.secret_matches(c.secret_hash, digest)
                for c in credentials.list_passwords(session, bootstrap[0])
            )
        signing_keys = KeyRing(context.store, context.protection).keys()
    finally:
        context.store.dispose()
    assert tenant_ids == [str(settings.tenant_id)] * 2
    assert tenants == [str(settings.tenant_id)]
    assert keys == 1
    assert [app.app_id for app in bootstrap] == [saved["client_id"]]
    assert secret_works, "the saved bootstrap secret does not match the stored credential"
    assert len(signing_keys) == 1, "the signing key cannot be decrypted with the saved key"


def test_contended_writes_from_two_processes_all_commit(data_dir: Path, store_url: str) -> None:
    settings = store_settings(data_dir, store_url)
    prepare_deployment(settings)

    run_together(add_applications, [(settings, "left", 50), (settings, "right", 50)])

    context = open_context(settings)
    try:
        with context.store.read() as session:
            names = session.scalars(
                select(Application.display_name).where(
                    Application.display_name != BOOTSTRAP_APP_NAME
                )
            ).all()
    finally:
        context.store.dispose()
    assert sorted(names) == sorted(f"{side}-{n}" for side in ("left", "right") for n in range(50))
