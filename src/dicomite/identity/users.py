"""People who sign in to the portal: accounts, directory roles and DICOM data roles.

The portal and ``dicomite users`` call these functions; ``identity.policy`` decides who may call
which. Users are not part of what token issuing reads, so these writes leave the tenant's
``directory_version`` alone (bumping it would only empty the issuing caches).

Guard rail: the tenant always keeps one enabled Global Administrator, so nobody locks the
portal's administration out.

Passwords arrive as ``NewPassword``, checked and hashed by ``new_password`` before the caller
opens its transaction: a hash takes tens of milliseconds, and no hash may run while a write
transaction holds the database (on SQLite, the one write lock every request waits for).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from dicomite.identity.passwords import check_password_policy, hash_password
from dicomite.identity.problems import Conflict, InvalidInput, NotAllowed, NotFound
from dicomite.identity.validation import check_display_name, check_guid
from dicomite.store.tables import PortalSession, User

MAX_NAME = 256
_Role = TypeVar("_Role", bound=StrEnum)


class DirectoryRole(StrEnum):
    """Entra ID's built-in directory roles that matter here (names as Entra ID spells them)."""

    GLOBAL_ADMINISTRATOR = "Global Administrator"
    APPLICATION_ADMINISTRATOR = "Application Administrator"
    APPLICATION_DEVELOPER = "Application Developer"


class DicomDataRole(StrEnum):
    """The Azure DICOM service's data roles, for people (apps get ``Dicom.*`` app roles)."""

    READER = "DICOM Data Reader"
    OWNER = "DICOM Data Owner"


def parse_role(kind: type[_Role], value: str | None) -> _Role | None:
    """A role by its name, case-insensitively, with ``-`` or ``_`` for spaces; None for none."""
    if value is None:
        return None
    wanted = value.strip().replace("-", " ").replace("_", " ").casefold()
    for role in kind:
        if role.value.casefold() == wanted:
            return role
    names = ", ".join(f"'{role.value}'" for role in kind)
    raise InvalidInput(f"'{value[:80]}' is not a role; use one of {names}.")


def _stored(role: StrEnum | None) -> str | None:
    return None if role is None else role.value


@dataclass(frozen=True)
class NewPassword:
    """A password that meets the policy, as its argon2id hash (the text is not kept)."""

    password_hash: str


def new_password(password: str) -> NewPassword:
    """Check ``password`` against the policy and hash it: call before opening a transaction."""
    return NewPassword(hash_password(check_password_policy(password)))


def normalize_user_principal_name(value: str) -> str:
    """Sign-in names are case-insensitive (stored lowercased) and hold no blanks."""
    name = value.strip().lower()
    if not 1 <= len(name) <= MAX_NAME:
        raise InvalidInput(f"The user name must be between 1 and {MAX_NAME} characters long.")
    if any(c.isspace() or not c.isprintable() for c in name):
        raise InvalidInput("The user name must not contain spaces or control characters.")
    return name


def create_user(
    session: Session,
    tenant_id: str,
    now: datetime,
    *,
    user_principal_name: str,
    display_name: str,
    password: NewPassword,
    directory_role: str | None = None,
    dicom_role: str | None = None,
) -> User:
    name = normalize_user_principal_name(user_principal_name)
    if find_user(session, tenant_id, name) is not None:
        raise Conflict(f"A user named '{name}' already exists.")
    user = User(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        user_principal_name=name,
        display_name=check_display_name(display_name, "The display name"),
        password_hash=password.password_hash,
        account_enabled=True,
        directory_role=_stored(parse_role(DirectoryRole, directory_role)),
        dicom_role=_stored(parse_role(DicomDataRole, dicom_role)),
        created_at=now,
        password_changed_at=now,
    )
    session.add(user)
    session.flush()
    return user


def list_users(session: Session, tenant_id: str, search: str | None = None) -> Sequence[User]:
    """Users by name; ``search`` is part of the sign-in name or the display name."""
    query = select(User).where(User.tenant_id == tenant_id)
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(
            or_(User.user_principal_name.like(pattern), func.lower(User.display_name).like(pattern))
        )
    return session.scalars(query.order_by(User.user_principal_name)).all()


def get_user(session: Session, tenant_id: str, user_id: str) -> User:
    user = session.get(User, check_guid(user_id, "user id"))
    if user is None or user.tenant_id != tenant_id:
        raise NotFound.for_object(user_id)
    return user


def find_user(session: Session, tenant_id: str, user_principal_name: str) -> User | None:
    return session.scalar(
        select(User).where(
            User.tenant_id == tenant_id,
            User.user_principal_name == user_principal_name.strip().lower(),
        )
    )


def user_by_name(session: Session, tenant_id: str, user_principal_name: str) -> User:
    """Like ``find_user``, but an unknown name is ``NotFound`` (for the CLI and admin pages)."""
    user = find_user(session, tenant_id, user_principal_name)
    if user is None:
        raise NotFound(f"No user '{user_principal_name[:80]}' exists in this tenant.")
    return user


def set_roles(
    session: Session, user: User, directory_role: str | None, dicom_role: str | None
) -> User:
    """Replace both roles (None removes one)."""
    role = parse_role(DirectoryRole, directory_role)
    if role is not DirectoryRole.GLOBAL_ADMINISTRATOR:
        _keep_a_global_administrator(session, user, "remove the Global Administrator role from")
    user.directory_role = _stored(role)
    user.dicom_role = _stored(parse_role(DicomDataRole, dicom_role))
    session.flush()
    return user


def reset_password(session: Session, user: User, password: NewPassword, now: datetime) -> User:
    """A new password signs the person out of every portal session."""
    user.password_hash = password.password_hash
    user.password_changed_at = now
    _end_sessions(session, user)
    session.flush()
    return user


def set_enabled(session: Session, user: User, enabled: bool) -> User:
    """A disabled account cannot sign in, and its portal sessions end at once."""
    if not enabled:
        _keep_a_global_administrator(session, user, "disable")
        _end_sessions(session, user)
    user.account_enabled = enabled
    session.flush()
    return user


def delete_user(session: Session, user: User) -> None:
    """Portal sessions go with the user (foreign key); applications keep their owner id."""
    _keep_a_global_administrator(session, user, "delete")
    _end_sessions(session, user)
    session.delete(user)
    session.flush()


def _end_sessions(session: Session, user: User) -> None:
    session.execute(delete(PortalSession).where(PortalSession.user_id == user.id))


def count_global_administrators(session: Session, tenant_id: str, *, besides: str = "") -> int:
    """Enabled Global Administrators of the tenant, leaving out the user ``besides``."""
    return (
        session.scalar(
            select(func.count()).where(
                User.tenant_id == tenant_id,
                User.id != besides,
                User.account_enabled.is_(True),
                User.directory_role == DirectoryRole.GLOBAL_ADMINISTRATOR.value,
            )
        )
        or 0
    )


def _keep_a_global_administrator(session: Session, user: User, action: str) -> None:
    if not (user.account_enabled and user.directory_role == DirectoryRole.GLOBAL_ADMINISTRATOR):
        return
    if not count_global_administrators(session, user.tenant_id, besides=user.id):
        raise NotAllowed(
            f"You cannot {action} '{user.user_principal_name}': it is the last enabled Global "
            "Administrator. Make another user a Global Administrator first."
        )
