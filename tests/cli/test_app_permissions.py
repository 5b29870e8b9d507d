"""``dicomite app permission …`` and ``dicomite app consent``."""

from __future__ import annotations

from dicomite.bootstrap import Context
from dicomite.identity import builtin, consent, principals
from tests.cli.conftest import Cli


def granted(context: Context, app_id: str, api: str = builtin.DICOM_APP_ID) -> tuple[str, ...]:
    with context.store.read() as session:
        client = principals.service_principal_for_app(session, context.tenant_id, app_id)
        resource = principals.find_resource(session, context.tenant_id, api)
        assert client is not None and resource is not None
        return consent.granted_role_values(session, client.id, resource)


def add(cli: Cli, app: str, permission: str, api: str = "dicom") -> None:
    cli.ok("app", "permission", "add", app, "--api", api, "--permission", permission)


def test_add_list_consent_revoke(cli: Cli, context: Context) -> None:
    app = cli.create()["appId"]
    add(cli, app, "Dicom.ReadWrite")
    listed = cli.json("app", "permission", "list", app)
    assert [(p["value"], p["type"], p["status"]) for p in listed] == [
        ("Dicom.ReadWrite", "Application", "Not granted")
    ]
    assert listed[0]["resource_app_id"] == builtin.DICOM_APP_ID
    assert granted(context, app) == ()

    result = cli.ok("app", "consent", app)
    assert "Dicom.ReadWrite" in result.stdout
    assert granted(context, app) == ("Dicom.ReadWrite",)
    assert cli.json("app", "permission", "list", app)[0]["status"] == "Granted"
    assert "Granted" in cli.ok("app", "show", app).stdout

    revoked = cli.ok("app", "consent", app, "--revoke")
    assert "Revoked 1" in revoked.stdout
    assert granted(context, app) == ()
    assert cli.json("app", "permission", "list", app)[0]["status"] == "Not granted"


def test_revoke_on_one_api_only(cli: Cli, context: Context) -> None:
    app = cli.create()["appId"]
    add(cli, app, "Dicom.Read")
    add(cli, app, "Application.Read.All", api="graph")
    result = cli.json("app", "consent", app)
    assert sorted(result["granted_roles"]) == ["Application.Read.All", "Dicom.Read"]
    assert result["skipped"] == []
    assert cli.json("app", "consent", app, "--revoke", "--api", "graph") == {"revoked": 1}
    assert granted(context, app) == ("Dicom.Read",)
    assert granted(context, app, builtin.GRAPH_APP_ID) == ()


def test_api_by_identifier_uri_app_id_or_display_name(cli: Cli) -> None:
    app = cli.create()["appId"]
    add(cli, app, "Dicom.Read", api="https://dicom.healthcareapis.azure.com")
    add(cli, app, "Dicom.ReadWrite", api=builtin.DICOM_APP_ID)
    add(cli, app, "Application.Read.All", api="microsoft graph")
    add(cli, app, builtin.APPLICATION_READWRITE_ALL, api="graph")  # by permission id
    values = sorted(p["value"] for p in cli.json("app", "permission", "list", app))
    assert values == [
        "Application.Read.All",
        "Application.ReadWrite.All",
        "Dicom.Read",
        "Dicom.ReadWrite",
    ]


def test_adding_twice_keeps_one_entry(cli: Cli) -> None:
    app = cli.create()["appId"]
    add(cli, app, "Dicom.Read")
    add(cli, app, "Dicom.Read")
    assert len(cli.json("app", "permission", "list", app)) == 1


def test_unknown_api_or_permission_is_an_error(cli: Cli) -> None:
    app = cli.create()["appId"]
    base = ("app", "permission", "add", app)
    unknown_api = cli.fails(*base, "--api", "https://nowhere.example", "--permission", "X")
    assert "No API named 'https://nowhere.example'" in unknown_api
    unknown = cli.fails(*base, "--api", "dicom", "--permission", "Dicom.Everything")
    assert "no application permission 'Dicom.Everything'" in unknown
    delegated = cli.fails(
        *base, "--api", "dicom", "--permission", "Dicom.Everything", "--type", "delegated"
    )
    assert "no delegated permission 'Dicom.Everything'" in delegated
    cli.fails(*base, "--api", "dicom", "--permission", "Dicom.Read", "--type", "both", code=2)
    assert cli.json("app", "permission", "list", app) == []


def test_remove_drops_the_permission_and_its_consent(cli: Cli, context: Context) -> None:
    app = cli.create()["appId"]
    add(cli, app, "Dicom.Read")
    add(cli, app, "Dicom.ReadWrite")
    cli.ok("app", "consent", app)
    cli.ok("app", "permission", "remove", app, "--api", "dicom", "--permission", "Dicom.ReadWrite")
    assert [p["value"] for p in cli.json("app", "permission", "list", app)] == ["Dicom.Read"]
    assert granted(context, app) == ("Dicom.Read",)


def test_consent_with_nothing_configured(cli: Cli) -> None:
    app = cli.create()["appId"]
    assert "no permissions to grant" in cli.ok("app", "consent", app).stdout
    assert "No permissions configured" in cli.ok("app", "permission", "list", app).stdout
