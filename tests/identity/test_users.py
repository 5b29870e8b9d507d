"""Portal users: names, roles, passwords, enabling, deleting, and the last-administrator guard.

``context`` is a prepared deployment, so the bootstrap Global Administrator already exists.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dicomite.bootstrap import Context
from dicomite.clock import utcnow
from dicomite.identity import users
from dicomite.identity.passwords import verify_password
from dicomite.identity.problems import Conflict, InvalidInput, NotAllowed, NotFound
from dicomite.identity.users import DicomDataRole, DirectoryRole
from dicomite.store.tables import PortalSession, User

PASSWORD = "Initial-pass-1"
GA = DirectoryRole.GLOBAL_ADMINISTRATOR


def add(session: Session, context: Context, name: str | None = None, **fields: Any) -> User:
    values: dict[str, Any] = {"display_name": "Someone", "password": PASSWORD} | fields
    values["password"] = users.new_password(values["password"])
    return users.create_user(
        session,
        context.tenant_id,
        utcnow(),
        user_principal_name=f"{uuid.uuid4().hex[:8]}@example.com" if name is None else name,
        **values,
    )


def bootstrap_admin(session: Session, context: Context) -> User:
    return users.user_by_name(session, context.tenant_id, f"admin@{context.tenant_domain}")


def open_session(session: Session, user: User) -> None:
    now = utcnow()
    session.add(
        PortalSession(
            id_hash=uuid.uuid4().hex,
            user_id=user.id,
            csrf_token="t",
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=1),
        )
    )
    session.flush()


def sessions_of(session: Session, user: User) -> int:
    count = session.scalar(select(func.count()).where(PortalSession.user_id == user.id))
    return int(count or 0)


def test_create_normalizes_the_name_and_stores_only_a_hash(context: Context) -> None:
    with context.store.write() as session:
        user = add(
            session,
            context,
            "  Alice.Smith@Example.COM ",
            display_name=" Alice Smith ",
            directory_role="application-developer",
            dicom_role="DICOM Data Reader",
        )

    assert user.user_principal_name == "alice.smith@example.com"
    assert user.display_name == "Alice Smith"
    assert user.directory_role == "Application Developer"
    assert user.dicom_role == "DICOM Data Reader"
    assert user.account_enabled
    assert user.created_at == user.password_changed_at
    assert PASSWORD not in user.password_hash
    assert verify_password(user.password_hash, PASSWORD)


def test_names_are_unique_whatever_their_case(context: Context) -> None:
    with context.store.write() as session:
        add(session, context, "bob@example.com")
        with pytest.raises(Conflict, match=r"bob@example\.com"):
            add(session, context, "BOB@example.com")


@pytest.mark.parametrize("name", ["", "   ", "bob smith@example.com", "bob\x00@x", "a" * 257])
def test_bad_names_are_refused(context: Context, name: str) -> None:
    with context.store.write() as session, pytest.raises(InvalidInput, match="user name"):
        add(session, context, name)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"display_name": " "}, "display name"),
        ({"display_name": "x" * 257}, "display name"),
        ({"password": "password"}, "at least three"),
        ({"directory_role": "Emperor"}, "not a role"),
        ({"dicom_role": "Global Administrator"}, "not a role"),
    ],
)
def test_bad_fields_are_refused(context: Context, fields: dict[str, Any], message: str) -> None:
    with context.store.write() as session, pytest.raises(InvalidInput, match=message):
        add(session, context, **fields)


def test_list_search_get_and_find(context: Context) -> None:
    with context.store.write() as session:
        carol = add(session, context, "carol@example.com", display_name="Carol Danvers")
        add(session, context, "dave@example.com", display_name="Dave")

        assert [u.user_principal_name for u in users.list_users(session, context.tenant_id)] == [
            "admin@" + context.tenant_domain,
            "carol@example.com",
            "dave@example.com",
        ]
        assert users.list_users(session, context.tenant_id, "DANVERS") == [carol]
        assert users.list_users(session, context.tenant_id, "carol@") == [carol]
        assert users.get_user(session, context.tenant_id, carol.id) is carol
        assert users.find_user(session, context.tenant_id, " Carol@Example.com") is carol
        assert users.find_user(session, context.tenant_id, "nobody@example.com") is None
        with pytest.raises(NotFound):
            users.get_user(session, context.tenant_id, str(uuid.uuid4()))
        with pytest.raises(NotFound):
            users.get_user(session, str(uuid.uuid4()), carol.id)  # another tenant's view
        with pytest.raises(InvalidInput):
            users.get_user(session, context.tenant_id, "not-a-guid")
        with pytest.raises(NotFound, match="nobody"):
            users.user_by_name(session, context.tenant_id, "nobody@example.com")


def test_set_roles_replaces_and_clears_both(context: Context) -> None:
    with context.store.write() as session:
        user = add(session, context, directory_role=GA, dicom_role=DicomDataRole.READER)

        users.set_roles(session, user, "Application Administrator", "dicom_data_owner")
        assert (user.directory_role, user.dicom_role) == (
            "Application Administrator",
            "DICOM Data Owner",
        )
        users.set_roles(session, user, None, None)
        assert (user.directory_role, user.dicom_role) == (None, None)


def test_reset_password_replaces_the_hash_and_ends_sessions(context: Context) -> None:
    later = utcnow() + timedelta(days=1)
    with context.store.write() as session:
        user = add(session, context)
        open_session(session, user)

        users.reset_password(session, user, users.new_password("Brand-new-pass-2"), later)

        assert verify_password(user.password_hash, "Brand-new-pass-2")
        assert not verify_password(user.password_hash, PASSWORD)
        assert user.password_changed_at == later
        assert sessions_of(session, user) == 0
        with pytest.raises(InvalidInput):
            users.new_password("weak")


def test_disable_ends_sessions_and_enable_restores(context: Context) -> None:
    with context.store.write() as session:
        user = add(session, context)
        open_session(session, user)

        users.set_enabled(session, user, False)
        assert not user.account_enabled
        assert sessions_of(session, user) == 0
        users.set_enabled(session, user, True)
        assert user.account_enabled


def test_delete_removes_the_user_and_sessions(context: Context) -> None:
    with context.store.write() as session:
        user = add(session, context)
        open_session(session, user)
        users.delete_user(session, user)

        assert users.find_user(session, context.tenant_id, user.user_principal_name) is None
        assert sessions_of(session, user) == 0


@pytest.mark.parametrize("action", ["disable", "demote", "delete"])
def test_the_last_enabled_global_administrator_stays(context: Context, action: str) -> None:
    do = {
        "disable": lambda s, u: users.set_enabled(s, u, False),
        "demote": lambda s, u: users.set_roles(s, u, "Application Administrator", None),
        "delete": users.delete_user,
    }[action]
    with context.store.write() as session:
        admin = bootstrap_admin(session, context)
        disabled_ga = add(session, context, directory_role=GA)
        users.set_enabled(session, disabled_ga, False)  # allowed: admin is still enabled

        with pytest.raises(NotAllowed, match="last enabled Global Administrator"):
            do(session, admin)  # a disabled Global Administrator does not count

        add(session, context, directory_role=GA)
        do(session, admin)


def test_guard_leaves_other_changes_alone(context: Context) -> None:
    with context.store.write() as session:
        admin = bootstrap_admin(session, context)
        users.set_roles(session, admin, GA, None)  # still a Global Administrator
        users.set_enabled(session, admin, True)
        assert admin.directory_role == GA
