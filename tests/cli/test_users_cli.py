"""``dicomite users list|add|set-role|reset-password|disable|enable|delete``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dicomite.clock import utcnow
from dicomite.identity import signin
from dicomite.store.tables import User
from tests.cli.conftest import Cli, unique

PASSWORD = "Cli-user-pass-7"


def new_name() -> str:
    return f"{unique('user')}@example.com"


def add(cli: Cli, name: str, *options: str) -> dict[str, Any]:
    result = cli("users", "add", name, "--password-stdin", "--json", *options, input=PASSWORD)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    added: dict[str, Any] = json.loads(result.stdout)
    return added


def listed(cli: Cli, name: str) -> dict[str, Any]:
    rows: list[dict[str, Any]] = cli.json("users", "list", "--search", name)
    [row] = [r for r in rows if r["userPrincipalName"] == name]
    return row


def sign_in(cli: Cli, name: str, password: str = PASSWORD) -> User:
    context = cli.context()
    try:
        return signin.authenticate(
            context.store, context.tenant_id, name, password, "127.0.0.1", utcnow()
        )
    finally:
        context.store.dispose()


def bootstrap_admin(cli: Cli) -> str:
    saved = json.loads((cli.data_dir / "bootstrap-credentials.json").read_text())
    return str(saved["admin_username"])


def test_list_shows_the_bootstrap_admin(cli: Cli) -> None:
    cli.ok("users", "list")
    admin = listed(cli, bootstrap_admin(cli))

    assert admin["directoryRole"] == "Global Administrator"
    assert admin["dicomRole"] == "DICOM Data Owner"
    assert admin["accountEnabled"] is True
    assert "Global Administrator" in cli.ok("users", "list").stdout


def test_add_asks_for_the_password_twice(cli: Cli) -> None:
    name = new_name()
    result = cli(
        "users",
        "add",
        name.upper(),
        "--display-name",
        "Ada Lovelace",
        "--role",
        "application-developer",
        "--dicom-role",
        "DICOM Data Reader",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )

    assert result.exit_code == 0, result.output
    assert f"User '{name}' created." in result.stdout
    assert PASSWORD not in result.stdout
    row = listed(cli, name)
    assert (row["displayName"], row["directoryRole"], row["dicomRole"]) == (
        "Ada Lovelace",
        "Application Developer",
        "DICOM Data Reader",
    )
    assert sign_in(cli, name).id == row["id"]


def test_add_defaults_the_display_name_and_prints_json(cli: Cli) -> None:
    name = new_name()
    added = add(cli, name)

    assert added["displayName"] == name.split("@")[0]
    assert (added["directoryRole"], added["dicomRole"]) == (None, None)


@pytest.mark.parametrize(
    ("options", "password", "complaint"),
    [
        ((), "weak", "between 8 and 256 characters"),
        (("--role", "emperor"), PASSWORD, "not a role"),
        (("--dicom-role", "reader"), PASSWORD, "'DICOM Data Reader'"),
    ],
)
def test_add_refuses_bad_input(
    cli: Cli, options: tuple[str, ...], password: str, complaint: str
) -> None:
    result = cli("users", "add", new_name(), "--password-stdin", *options, input=password)

    assert result.exit_code == 1
    assert complaint in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_add_refuses_a_taken_name(cli: Cli) -> None:
    name = new_name()
    add(cli, name)

    result = cli("users", "add", name.upper(), "--password-stdin", input=PASSWORD)
    assert result.exit_code == 1
    assert "already exists" in result.output


def test_set_role_changes_and_clears(cli: Cli) -> None:
    name = new_name()
    add(cli, name, "--role", "application-administrator")

    cli.ok("users", "set-role", name, "--dicom-role", "dicom-data-owner")
    assert (listed(cli, name)["directoryRole"], listed(cli, name)["dicomRole"]) == (
        "Application Administrator",
        "DICOM Data Owner",
    )
    result = cli.ok("users", "set-role", name, "--role", "none", "--dicom-role", "none")
    assert "now has no roles" in result.stdout
    assert (listed(cli, name)["directoryRole"], listed(cli, name)["dicomRole"]) == (None, None)
    assert "Give --role, --dicom-role or both" in cli.fails("users", "set-role", name)


def test_reset_password(cli: Cli) -> None:
    name = new_name()
    add(cli, name)

    result = cli("users", "reset-password", name, "--password-stdin", input="Reset-pass-8\n")

    assert result.exit_code == 0, result.output
    assert sign_in(cli, name, "Reset-pass-8")
    with pytest.raises(signin.SignInFailed):
        sign_in(cli, name)


def test_disable_and_enable(cli: Cli) -> None:
    name = new_name()
    add(cli, name)

    cli.ok("users", "disable", name)
    assert listed(cli, name)["accountEnabled"] is False
    with pytest.raises(signin.AccountDisabled):
        sign_in(cli, name)
    cli.ok("users", "enable", name)
    assert sign_in(cli, name)


def test_delete_asks_first(cli: Cli) -> None:
    name = new_name()
    add(cli, name)

    assert cli("users", "delete", name, input="n\n").exit_code == 1
    assert listed(cli, name)
    cli.ok("users", "delete", name, "--yes")
    assert cli.json("users", "list", "--search", name) == []
    assert "No user" in cli.fails("users", "delete", name, "--yes")


def test_the_last_global_administrator_stays(cli: Cli, tmp_path: Path) -> None:
    own = Cli(tmp_path / "data", cli.runner)  # a deployment whose only admin is the bootstrap one
    own.ok("users", "list")
    admin = bootstrap_admin(own)

    for command in (("disable", admin), ("delete", admin, "--yes")):
        assert "last enabled Global Administrator" in own.fails("users", *command)
    assert "last enabled Global Administrator" in own.fails(
        "users", "set-role", admin, "--role", "none"
    )
    successor = new_name()
    add(own, successor, "--role", "global-administrator")
    own.ok("users", "disable", admin)
