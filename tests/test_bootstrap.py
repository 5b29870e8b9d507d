"""The bootstrap Global Administrator: from the environment, or generated once into the 0600
bootstrap file beside the management client's values; never changed once it exists."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from dicomite.bootstrap import BootstrapError, Context, prepare
from dicomite.clock import utcnow
from dicomite.identity import signin, users
from dicomite.identity.users import DicomDataRole, DirectoryRole
from dicomite.settings import Settings
from dicomite.store.tables import User
from tests.fixtures.stores import store_settings

ENV_NAME = "Boss@Example.com"
ENV_PASSWORD = "Env-given-pass-4"


def saved(context: Context) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(context.settings.bootstrap_file.read_text())
    return loaded


def sign_in(context: Context, name: str, password: str) -> User:
    return signin.authenticate(
        context.store, context.tenant_id, name, password, "127.0.0.1", utcnow()
    )


def all_users(context: Context) -> list[User]:
    with context.store.read() as session:
        return list(users.list_users(session, context.tenant_id))


def prepared(settings: Settings, **changes: Any) -> Context:
    """A start with these settings (changed as given), its store closed again."""
    context = prepare(settings.model_copy(update=changes))
    context.store.dispose()
    return context


def test_generated_admin_is_saved_privately_and_can_sign_in(context: Context) -> None:
    values = saved(context)
    admin = sign_in(context, values["admin_username"], values["admin_password"])

    assert stat.S_IMODE(context.settings.bootstrap_file.stat().st_mode) == 0o600
    assert values["admin_username"] == f"admin@{context.tenant_domain}"
    assert len(values["admin_password"]) >= 20
    assert {"tenant_id", "client_id", "client_secret"} <= set(values)
    assert admin.directory_role == DirectoryRole.GLOBAL_ADMINISTRATOR
    assert admin.dicom_role == DicomDataRole.OWNER
    assert admin.account_enabled


def test_a_second_start_changes_nothing(data_dir: Path, store_url: str) -> None:
    settings = store_settings(data_dir, store_url)
    first = prepared(settings)
    file_before, users_before = saved(first), all_users(first)

    second = prepare(settings)
    try:
        assert saved(second) == file_before
        after = all_users(second)
        assert [(u.id, u.password_hash) for u in after] == [
            (u.id, u.password_hash) for u in users_before
        ]
    finally:
        second.store.dispose()


def test_env_values_are_used_and_not_written(data_dir: Path, store_url: str) -> None:
    context = prepared(
        store_settings(data_dir, store_url),
        bootstrap_admin_username=ENV_NAME,
        bootstrap_admin_password=ENV_PASSWORD,
    )
    values = saved(context)

    assert sign_in(context, ENV_NAME, ENV_PASSWORD).user_principal_name == "boss@example.com"
    assert "admin_username" not in values and "admin_password" not in values
    assert ENV_PASSWORD not in context.settings.bootstrap_file.read_text()
    assert [u.user_principal_name for u in all_users(context)] == ["boss@example.com"]


def test_env_name_with_a_generated_password(data_dir: Path, store_url: str) -> None:
    context = prepared(store_settings(data_dir, store_url), bootstrap_admin_username=ENV_NAME)
    values = saved(context)

    assert "admin_username" not in values
    assert sign_in(context, ENV_NAME, values["admin_password"])


def test_an_existing_admins_password_is_never_reset(data_dir: Path, store_url: str) -> None:
    settings = store_settings(
        data_dir,
        store_url,
        bootstrap_admin_username=ENV_NAME,
        bootstrap_admin_password=ENV_PASSWORD,
    )
    prepared(settings)
    context = prepared(settings, bootstrap_admin_password="Changed-pass-5")

    assert sign_in(context, ENV_NAME, ENV_PASSWORD)
    with pytest.raises(signin.SignInFailed):
        sign_in(context, ENV_NAME, "Changed-pass-5")


def test_a_weak_env_password_is_refused_with_a_clear_message(
    data_dir: Path, store_url: str
) -> None:
    with pytest.raises(BootstrapError, match="DICOMITE_BOOTSTRAP_ADMIN_PASSWORD") as raised:
        prepare(store_settings(data_dir, store_url, bootstrap_admin_password="password"))
    assert "at least three of these groups" in str(raised.value)


def test_a_bad_env_name_is_refused_with_a_clear_message(data_dir: Path, store_url: str) -> None:
    with pytest.raises(BootstrapError, match="DICOMITE_BOOTSTRAP_ADMIN_USERNAME"):
        prepare(store_settings(data_dir, store_url, bootstrap_admin_username="two words"))


def test_rewriting_the_client_values_keeps_the_admin_keys(data_dir: Path, store_url: str) -> None:
    settings = store_settings(data_dir, store_url)
    first = saved(prepared(settings))
    trimmed = {k: v for k, v in first.items() if k != "client_secret"}
    settings.bootstrap_file.write_text(json.dumps(trimmed))

    context = prepared(settings)
    second = saved(context)

    assert second["client_secret"] != first["client_secret"]  # a new secret was generated
    assert stat.S_IMODE(settings.bootstrap_file.stat().st_mode) == 0o600
    assert (second["admin_username"], second["admin_password"]) == (
        first["admin_username"],
        first["admin_password"],
    )
    assert sign_in(context, second["admin_username"], second["admin_password"])


def test_a_deleted_bootstrap_admin_stays_deleted_while_another_admin_exists(
    data_dir: Path, store_url: str
) -> None:
    settings = store_settings(
        data_dir,
        store_url,
        bootstrap_admin_username=ENV_NAME,
        bootstrap_admin_password=ENV_PASSWORD,
    )
    context = prepare(settings)
    with context.store.write() as session:
        users.create_user(
            session,
            context.tenant_id,
            utcnow(),
            user_principal_name="second@example.com",
            display_name="Second",
            password=users.new_password(ENV_PASSWORD),
            directory_role=DirectoryRole.GLOBAL_ADMINISTRATOR,
        )
        users.delete_user(session, users.user_by_name(session, context.tenant_id, ENV_NAME))
    context.store.dispose()

    restarted = prepared(settings)

    assert [u.user_principal_name for u in all_users(restarted)] == ["second@example.com"]


def test_a_tenant_without_any_enabled_admin_gets_the_bootstrap_admin_back(
    data_dir: Path, store_url: str
) -> None:
    settings = store_settings(
        data_dir,
        store_url,
        bootstrap_admin_username=ENV_NAME,
        bootstrap_admin_password=ENV_PASSWORD,
    )
    context = prepare(settings)
    with context.store.write() as session:
        admin = users.user_by_name(session, context.tenant_id, ENV_NAME)
        users.create_user(
            session,
            context.tenant_id,
            utcnow(),
            user_principal_name="other@example.com",
            display_name="Other",
            password=users.new_password(ENV_PASSWORD),
            directory_role=DirectoryRole.GLOBAL_ADMINISTRATOR,
        )
        users.delete_user(session, admin)
        session.flush()
        other = users.user_by_name(session, context.tenant_id, "other@example.com")
        other.account_enabled = False  # locked out: no enabled Global Administrator is left
    context.store.dispose()

    restarted = prepared(settings)

    assert sign_in(restarted, ENV_NAME, ENV_PASSWORD).directory_role == "Global Administrator"
