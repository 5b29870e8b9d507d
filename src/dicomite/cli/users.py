"""``dicomite users …``: the people who sign in to the portal, and their roles.

The operator at the console needs no role: these commands act as the deployment's owner. The
domain's guard rails still hold (the last enabled Global Administrator stays).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from dicomite.cli.shared import (
    AsJson,
    DatabaseUrl,
    DataDir,
    deployment,
    escape,
    fail,
    iso,
    print_json,
    say,
    show_rows,
)
from dicomite.clock import utcnow
from dicomite.identity import users
from dicomite.identity.problems import InvalidInput
from dicomite.store.tables import User

app = typer.Typer(help="People who sign in to the portal, and their roles.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(metavar="NAME", help="Sign-in name (user principal name)")]
Role = Annotated[
    str | None,
    typer.Option(
        "--role",
        help="Directory role: global-administrator, application-administrator, "
        "application-developer or none",
    ),
]
DicomRole = Annotated[
    str | None,
    typer.Option(
        "--dicom-role", help="DICOM data role: dicom-data-reader, dicom-data-owner or none"
    ),
]
Search = Annotated[str | None, typer.Option("--search", help="Part of the sign-in or display name")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input")
]


def user_row(user: User) -> dict[str, Any]:
    """A user with Graph's field names, plus the two roles."""
    return {
        "userPrincipalName": user.user_principal_name,
        "displayName": user.display_name,
        "id": user.id,
        "accountEnabled": user.account_enabled,
        "directoryRole": user.directory_role,
        "dicomRole": user.dicom_role,
        "createdDateTime": iso(user.created_at),
    }


def _users_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("sign-in name", "display name", "directory role", "DICOM role", "enabled")
    for row in rows:
        table.add_row(
            escape(row["userPrincipalName"]),
            escape(row["displayName"]),
            row["directoryRole"] or "-",
            row["dicomRole"] or "-",
            "yes" if row["accountEnabled"] else "no",
        )
    return table


@app.command("list")
def list_users(
    search: Search = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The tenant's users with their roles."""
    with deployment(data_dir, database_url) as context, context.store.read() as session:
        rows = [user_row(u) for u in users.list_users(session, context.tenant_id, search)]
    show_rows(rows, as_json, _users_table, "No users.")


@app.command()
def add(
    name: Name,
    display_name: Annotated[
        str | None, typer.Option("--display-name", help="Shown in the portal [NAME before @]")
    ] = None,
    role: Role = None,
    dicom_role: DicomRole = None,
    password_stdin: PasswordStdin = False,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user; the password is asked twice (or read with --password-stdin)."""
    password = _new_password(password_stdin)
    with deployment(data_dir, database_url) as context, context.store.write() as session:
        user = users.create_user(
            session,
            context.tenant_id,
            utcnow(),
            user_principal_name=name,
            display_name=display_name or name.strip().split("@")[0],
            password=password,
            directory_role=_role(role),
            dicom_role=_role(dicom_role),
        )
        row = user_row(user)
    if as_json:
        print_json(row)
        return
    say(f"User '{escape(row['userPrincipalName'])}' created.")
    say(f"  Object ID:      {row['id']}")
    say(f"  Directory role: {row['directoryRole'] or '-'}")
    say(f"  DICOM role:     {row['dicomRole'] or '-'}")


@app.command("set-role")
def set_role(
    name: Name,
    role: Role = None,
    dicom_role: DicomRole = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Change a user's directory role, DICOM role or both ('none' removes one)."""
    if role is None and dicom_role is None:
        fail("Give --role, --dicom-role or both.")

    def change(session: Session, user: User) -> None:
        new_role = user.directory_role if role is None else _role(role)
        new_dicom = user.dicom_role if dicom_role is None else _role(dicom_role)
        users.set_roles(session, user, new_role, new_dicom)

    user = _change(data_dir, database_url, name, change)
    roles = ", ".join(r for r in (user.directory_role, user.dicom_role) if r) or "no roles"
    say(f"'{escape(user.user_principal_name)}' now has {roles}.")


@app.command("reset-password")
def reset_password(
    name: Name,
    password_stdin: PasswordStdin = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Set a new password; the user is signed out of every portal session."""
    password = _new_password(password_stdin)
    user = _change(
        data_dir, database_url, name, lambda s, u: users.reset_password(s, u, password, utcnow())
    )
    say(f"Password of '{escape(user.user_principal_name)}' reset.")


@app.command()
def disable(name: Name, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Block sign-in and end the user's portal sessions."""
    user = _change(data_dir, database_url, name, lambda s, u: users.set_enabled(s, u, False))
    say(f"'{escape(user.user_principal_name)}' disabled.")


@app.command()
def enable(name: Name, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Allow a disabled user to sign in again."""
    user = _change(data_dir, database_url, name, lambda s, u: users.set_enabled(s, u, True))
    say(f"'{escape(user.user_principal_name)}' enabled.")


@app.command()
def delete(
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Delete a user and their portal sessions."""
    if not yes:
        typer.confirm(f"Delete the user '{name}'?", abort=True)  # outside any transaction
    user = _change(data_dir, database_url, name, users.delete_user)
    say(f"Deleted '{escape(user.user_principal_name)}'.")


def _change(
    data_dir: DataDir,
    database_url: DatabaseUrl,
    name: str,
    change: Callable[[Session, User], object],
) -> User:
    """Apply ``change`` to the user named ``name`` in one transaction."""
    with deployment(data_dir, database_url) as context, context.store.write() as session:
        user = users.user_by_name(session, context.tenant_id, name)
        change(session, user)
    return user


def _role(value: str | None) -> str | None:
    return None if value is None or value.strip().lower() == "none" else value


def _new_password(from_stdin: bool) -> users.NewPassword:
    """The password read, checked and hashed before any transaction opens."""
    password = _read_password(from_stdin)
    try:
        return users.new_password(password)
    except InvalidInput as problem:
        fail(problem.message)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password
