"""Secrets are stored only as hashes; generated bootstrap secrets and the bootstrap admin's
password go to a 0600 file."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from dicomite.bootstrap import Context, prepare
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.stores import store_settings


def _stored_text(request: pytest.FixtureRequest, store_url: str, data_dir: Path) -> bytes:
    """Everything the store holds: the SQLite files' bytes, or a dump of the database."""
    if store_url.startswith("sqlite"):
        return b"".join(path.read_bytes() for path in sorted(data_dir.glob("dicomite.db*")))
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.dump(store_url).encode()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generated_secret_is_saved_privately_and_hashed_in_the_store(
    request: pytest.FixtureRequest, context: Context, store_url: str
) -> None:
    saved = json.loads(context.settings.bootstrap_file.read_text())
    stored = _stored_text(request, store_url, context.settings.data_dir)

    assert _mode(context.settings.bootstrap_file) == 0o600
    assert _mode(context.settings.key_encryption_key_file) == 0o600
    assert saved["tenant_id"] == context.tenant_id
    assert len(saved["client_secret"]) >= 32
    assert saved["client_id"].encode() in stored  # the dump is searchable: a real check
    assert saved["client_secret"].encode() not in stored
    assert saved["admin_username"].encode() in stored
    assert saved["admin_password"].encode() not in stored


def test_given_secret_is_neither_saved_nor_stored(
    request: pytest.FixtureRequest, data_dir: Path, store_url: str
) -> None:
    secret = "given8Q~" + "x7" * 18
    context = prepare(store_settings(data_dir, store_url, bootstrap_client_secret=secret))
    context.store.dispose()
    stored = _stored_text(request, store_url, data_dir)

    saved = json.loads(context.settings.bootstrap_file.read_text())  # the generated admin's
    assert "client_secret" not in saved and "client_id" not in saved
    assert secret not in context.settings.bootstrap_file.read_text()
    assert secret.encode() not in stored


def test_nothing_is_saved_when_every_value_is_given(data_dir: Path, store_url: str) -> None:
    context = prepare(
        store_settings(
            data_dir,
            store_url,
            bootstrap_client_secret="given8Q~" + "x7" * 18,
            bootstrap_admin_username="root@example.com",
            bootstrap_admin_password="Given-pass-6",
        )
    )
    context.store.dispose()

    assert not context.settings.bootstrap_file.exists()
