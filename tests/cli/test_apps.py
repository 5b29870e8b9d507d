"""``dicomite app create|list|show|delete``."""

from __future__ import annotations

import uuid

from dicomite.bootstrap import Context
from tests.cli.conftest import Cli, unique


def test_create_prints_the_three_ids_and_creates_the_service_principal(cli: Cli) -> None:
    name = unique("portal-like")
    result = cli.ok("app", "create", name)
    assert "Application (client) ID" in result.stdout
    assert "Object ID" in result.stdout
    assert "Directory (tenant) ID" in result.stdout
    shown = cli.json("app", "show", name)
    assert shown["appId"] in result.stdout
    assert shown["id"] in result.stdout
    assert shown["tenantId"] in result.stdout
    assert shown["servicePrincipalId"]


def test_create_json_and_identifier_uris(cli: Cli, context: Context) -> None:
    uri = f"api://{context.tenant_id}/{unique('api')}"
    created = cli.json("app", "create", unique("api"), "--identifier-uri", uri)
    assert created["identifierUris"] == [uri]
    uuid.UUID(created["appId"])
    assert created["servicePrincipalId"]


def test_create_refuses_another_apps_identifier_uri(cli: Cli, context: Context) -> None:
    """Entra's identifier-URI rule, as in Graph and the portal (issue 13, item 5)."""
    other = cli.create()
    uri = f"api://{other['appId']}"
    name = unique("squat")
    message = cli.fails("app", "create", name, "--identifier-uri", uri)
    assert "must use a verified domain of the organization or its subdomain" in message
    assert f"api://{context.tenant_id}/{{name}}" in message  # what it may use instead
    assert not [a for a in cli.json("app", "list") if a["displayName"] == name]


def test_the_operator_changes_the_bootstrap_clients_credentials_and_permissions(cli: Cli) -> None:
    """The console is the deployment's operator: privileged apps are theirs to change."""
    bootstrap = "Dicomite bootstrap management client"
    added = cli.json("app", "secret", "add", bootstrap)
    cli.ok("app", "secret", "remove", bootstrap, added["keyId"])
    cli.ok("app", "permission", "add", bootstrap, "--api", "dicom", "--permission", "Dicom.Read")
    cli.ok("app", "consent", bootstrap)
    shown = cli.json("app", "show", bootstrap)
    assert {p["value"] for p in shown["requiredPermissions"] if p["granted"]} >= {
        "Dicom.Read",
        "Application.ReadWrite.All",
    }


def test_create_refuses_a_bad_identifier_uri_with_a_message(cli: Cli) -> None:
    result = cli.fails("app", "create", unique("bad"), "--identifier-uri", "not a uri")
    assert "identifierUris" in result


def test_list_and_search(cli: Cli) -> None:
    first, second = cli.create(unique("alpha")), cli.create(unique("beta"))
    listed = {a["appId"] for a in cli.json("app", "list")}
    assert {first["appId"], second["appId"]} <= listed
    found = cli.json("app", "list", "--search", first["displayName"][:-2].upper())
    assert [a["appId"] for a in found] == [first["appId"]]
    assert first["displayName"] in cli.ok("app", "list").stdout


def test_show_finds_an_app_by_app_id_object_id_or_name(cli: Cli) -> None:
    created = cli.create()
    for reference in (created["appId"], created["id"], created["displayName"]):
        assert cli.json("app", "show", reference)["appId"] == created["appId"]
    text = cli.ok("app", "show", created["appId"]).stdout
    assert created["appId"] in text
    assert "No API permissions configured" in text


def test_show_of_an_ambiguous_name_asks_for_the_app_id(cli: Cli) -> None:
    name = unique("twin")
    cli.create(name)
    cli.create(name)
    result = cli.fails("app", "show", name)
    assert "use the appId" in result


def test_unknown_app_is_a_red_line_not_a_traceback(cli: Cli) -> None:
    result = cli.fails("app", "show", "no-such-app")
    assert "error:" in result
    assert "no-such-app" in result
    cli.fails("app", "show", str(uuid.uuid4()))


def test_delete_asks_first_and_yes_skips_the_question(cli: Cli) -> None:
    created = cli.create()
    declined = cli("app", "delete", created["appId"], input="n\n")
    assert declined.exit_code == 1
    cli.ok("app", "show", created["appId"])
    cli.ok("app", "delete", created["appId"], "--yes")
    cli.fails("app", "show", created["appId"])
    assert created["appId"] not in {a["appId"] for a in cli.json("app", "list")}


def test_delete_after_confirmation(cli: Cli) -> None:
    created = cli.create()
    result = cli("app", "delete", created["displayName"], input="y\n")
    assert result.exit_code == 0, result.output
    cli.fails("app", "show", created["appId"])
