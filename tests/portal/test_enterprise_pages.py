"""Enterprise applications: the service principals, their granted permissions and, for an API,
who holds its roles."""

from __future__ import annotations

from collections.abc import Callable

from dicomite.bootstrap import BOOTSTRAP_APP_NAME, Context
from dicomite.clock import utcnow
from dicomite.identity import builtin, consent, directory, principals, users
from dicomite.identity.permission_kind import PermissionKind
from dicomite.store.tables import ServicePrincipal
from tests.portal.conftest import PortalClient
from tests.portal.test_expose_pages import ESCAPED, XSS, register

SignedIn = Callable[[str], PortalClient]


def principal(context: Context, app_id: str) -> ServicePrincipal:
    with context.store.read() as session:
        sp = principals.service_principal_for_app(session, context.tenant_id, app_id)
    assert sp is not None
    return sp


def consent_to_dicom(context: Context, object_id: str) -> str:
    """Dicom.ReadWrite asked for and granted, as the API permissions blade would; the appId."""
    with context.store.write() as session:
        app = directory.get_application(session, context.tenant_id, object_id)
        dicom = principals.find_resource(session, context.tenant_id, builtin.DICOM_APP_ID)
        assert dicom is not None
        consent.add_permission(session, app, dicom, builtin.DICOM_READWRITE, PermissionKind.ROLE)
        consent.grant_admin_consent(session, app, utcnow())
        return app.app_id


def test_list_shows_builtin_apis_and_registered_apps(signed_in: SignedIn) -> None:
    admin = signed_in("global-admin")
    register(admin, "Studies uploader")
    page = admin.get("/portal/enterprise")
    assert page.status_code == 200
    labels = ("Name", "Application ID", "Object ID", "Application type", "Microsoft built-in")
    names = ("Microsoft Graph", builtin.DICOM_APP_ID, "Studies uploader", "This directory")
    for text in (*labels, *names):
        assert text in page.text
    mine = admin.get("/portal/enterprise", params={"type": "directory"}).text
    assert "Studies uploader" in mine and "Microsoft Graph" not in mine
    found = admin.get("/portal/enterprise", params={"search": "UPLOAD"}).text
    assert "Studies uploader" in found and builtin.DICOM_APP_ID not in found
    by_app_id = admin.get("/portal/enterprise", params={"search": builtin.GRAPH_APP_ID}).text
    assert "Microsoft Graph" in by_app_id and "Studies uploader" not in by_app_id
    none = admin.get("/portal/enterprise", params={"search": "no such thing"}).text
    assert "No applications match these filters." in none


def test_permissions_show_admin_consented_roles_and_delegated_grants(
    signed_in: SignedIn, portal_context: Context
) -> None:
    admin = signed_in("global-admin")
    client_app = register(admin, "Uploader")
    app_id = consent_to_dicom(portal_context, client_app)
    api = register(admin, "Reports API")
    reports_uri = f"api://{portal_context.tenant_id}/reports"
    admin.submit(
        f"/portal/apps/{api}/expose/scopes/new",
        {
            "value": "Reports.Read",
            "type": "User",
            "admin_name": "Read reports",
            "state": "enabled",
            "identifier_uri": reports_uri,
        },
    )
    with portal_context.store.write() as session:
        client = principals.service_principal_for_app(session, portal_context.tenant_id, app_id)
        reports = principals.find_resource(session, portal_context.tenant_id, reports_uri)
        assert client is not None and reports is not None
        consent.grant_delegated(session, client, reports, ["Reports.Read"])
        person = users.create_user(
            session,
            portal_context.tenant_id,
            utcnow(),
            user_principal_name=f"consenter@{portal_context.tenant_domain}",
            display_name="Consenter",
            password=users.new_password("Correct-Horse-9"),
        )
        consent.grant_delegated(session, client, reports, ["Reports.Read"], person.id)

    sp = principal(portal_context, app_id)
    page = admin.get(f"/portal/enterprise/{sp.id}/permissions")
    assert page.status_code == 200
    rows = page.text.split("<tbody>")[1]
    assert "Azure Healthcare APIs" in rows and "Dicom.ReadWrite" in rows
    assert "Reports API" in rows and "Reports.Read" in rows
    assert rows.count("<td>Application</td>") == 1 and rows.count("<td>Delegated</td>") == 2
    assert "Read reports" in rows
    assert rows.count("<td>Admin consent</td>") == 2 and rows.count("<td>User consent</td>") == 1


def test_a_resource_api_lists_who_holds_its_roles(
    signed_in: SignedIn, portal_context: Context
) -> None:
    admin = signed_in("app-admin")
    app_id = consent_to_dicom(portal_context, register(admin, "Archive sync"))
    dicom = principal(portal_context, builtin.DICOM_APP_ID)
    page = admin.get(f"/portal/enterprise/{dicom.id}/users")
    assert page.status_code == 200 and "Users and groups" in page.text
    assert "Archive sync" in page.text and "Dicom.ReadWrite" in page.text
    assert f"/portal/enterprise/{principal(portal_context, app_id).id}" in page.text
    graph = principal(portal_context, builtin.GRAPH_APP_ID)
    held = admin.get(f"/portal/enterprise/{graph.id}/users").text
    assert BOOTSTRAP_APP_NAME in held and "Application.ReadWrite.All" in held


def test_overview_links_to_the_registration_only_for_those_who_manage_it(
    signed_in: SignedIn, portal_context: Context
) -> None:
    admin = signed_in("app-admin")
    app = register(admin, "Admin's app")
    sp = principal(portal_context, app_id := consent_to_dicom(portal_context, app))
    overview = admin.get(f"/portal/enterprise/{sp.id}")
    assert f'href="/portal/apps/{app}"' in overview.text and app_id in overview.text
    assert f'href="/portal/signins?app={app_id}"' in overview.text
    developer = signed_in("developer")
    seen = developer.get(f"/portal/enterprise/{sp.id}")
    assert seen.status_code == 200 and f'href="/portal/apps/{app}"' not in seen.text
    dicom = principal(portal_context, builtin.DICOM_APP_ID)
    builtin_page = admin.get(f"/portal/enterprise/{dicom.id}").text
    assert "Microsoft built-in" in builtin_page and "Dicom.Read" in builtin_page


def test_people_without_a_directory_role_may_not_look(
    signed_in: SignedIn, portal_context: Context
) -> None:
    dicom = principal(portal_context, builtin.DICOM_APP_ID)
    for role in ("reader", "nobody"):
        client = signed_in(role)
        for path in ("", f"/{dicom.id}", f"/{dicom.id}/permissions", f"/{dicom.id}/users"):
            assert client.get(f"/portal/enterprise{path}").status_code == 403


def test_unknown_principal_is_not_found(signed_in: SignedIn) -> None:
    admin = signed_in("global-admin")
    assert admin.get("/portal/enterprise/00000000-0000-0000-0000-000000000000").status_code == 404
    assert admin.get("/portal/enterprise/not-a-guid").status_code == 400


def test_names_are_escaped(signed_in: SignedIn, portal_context: Context) -> None:
    admin = signed_in("global-admin")
    app_id = consent_to_dicom(portal_context, register(admin, XSS))
    sp = principal(portal_context, app_id)
    dicom = principal(portal_context, builtin.DICOM_APP_ID)
    for path in ("", f"/{sp.id}", f"/{sp.id}/permissions", f"/{dicom.id}/users"):
        page = admin.get(f"/portal/enterprise{path}").text
        assert XSS not in page and ESCAPED in page
