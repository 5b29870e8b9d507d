"""API permissions blade: Request API permissions, admin consent and who may give it."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from dicomite.bootstrap import Context
from dicomite.identity import builtin, consent, directory, principals
from dicomite.identity.policy import GRANT_CONSENT, GRANT_GRAPH_CONSENT
from dicomite.store.tables import Tenant
from tests.portal.conftest import PortalClient, register_app

DICOM = builtin.DICOM_APP_ID
GRAPH = builtin.GRAPH_APP_ID
XSS = '<script>alert("x")</script>'
SignedIn = Callable[[str], PortalClient]


def add_permission(
    client: PortalClient, app: str, api: str = DICOM, role: str = builtin.DICOM_READWRITE
) -> None:
    response = client.submit(
        f"/portal/apps/{app}/permissions/add/{api}", {"type": "application", "permission": role}
    )
    assert response.status_code == 200, response.text
    assert "Permissions added." in response.text


def dicom_client(client: PortalClient, name: str = "Service client") -> tuple[str, str]:
    """A new app asking for Dicom.ReadWrite: its object id and its API permissions path."""
    app = register_app(client, name)
    add_permission(client, app)
    return app, f"/portal/apps/{app}/permissions"


def granted(context: Context, app_object_id: str, api: str = DICOM) -> tuple[str, ...]:
    """The application permissions the domain says are granted (not what a page shows)."""
    with context.store.read() as session:
        app = directory.get_application(session, context.tenant_id, app_object_id)
        client = principals.service_principal_for_app(session, context.tenant_id, app.app_id)
        resource = principals.find_resource(session, context.tenant_id, api)
        assert client is not None and resource is not None
        return consent.granted_role_values(session, client.id, resource)


def tenant_name(context: Context) -> str:
    with context.store.read() as session:
        tenant = session.get(Tenant, context.tenant_id)
        assert tenant is not None
        return tenant.display_name


def test_add_a_permission_then_grant_admin_consent(
    signed_in: SignedIn, portal_context: Context
) -> None:
    admin = signed_in("global-admin")
    app = register_app(admin)
    base = f"/portal/apps/{app}/permissions"
    tenant = tenant_name(portal_context)

    page = admin.get(base)
    assert "No permissions added." in page.text
    assert f"Grant admin consent for {tenant}" in page.text

    request = admin.get(f"{base}/add")
    assert "Request API permissions" in request.text and "APIs my organization uses" in request.text
    assert "Azure Healthcare APIs (DICOM service)" in request.text
    assert "Microsoft Graph" in request.text
    by_name = admin.get(f"{base}/add", params={"search": "dicom"}).text
    assert "DICOM service" in by_name and "Microsoft Graph" not in by_name
    by_app_id = admin.get(f"{base}/add", params={"search": GRAPH[:13]}).text
    assert "Microsoft Graph" in by_app_id and "DICOM service" not in by_app_id

    choose = admin.get(f"{base}/add/{DICOM}")
    assert "What type of permissions does your application require?" in choose.text
    assert "Delegated permissions" in choose.text and "Application permissions" in choose.text
    roles = admin.get(f"{base}/add/{DICOM}", params={"type": "application"}).text
    assert "Dicom.ReadWrite" in roles and "DICOM Data Owner" in roles and "Add permissions" in roles

    add_permission(admin, app)
    page = admin.get(base)
    assert "Dicom.ReadWrite" in page.text and "<td>Application</td>" in page.text
    assert f'<span class="status-warn">Not granted for {tenant}</span>' in page.text

    confirmation = admin.get(f"{base}/consent")
    assert "Grant admin consent confirmation." in confirmation.text
    assert f"for all accounts in {tenant}? This will update any existing" in confirmation.text
    response = admin.submit(f"{base}/consent")
    assert response.status_code == 200
    assert f'<span class="status-ok">Granted for {tenant}</span>' in response.text
    assert granted(portal_context, app) == ("Dicom.ReadWrite",)


def test_already_added_permissions_are_not_added_twice(signed_in: SignedIn) -> None:
    admin = signed_in("global-admin")
    app, base = dicom_client(admin)
    add_permission(admin, app)
    assert admin.get(base).text.count("<strong>Dicom.ReadWrite</strong>") == 1
    roles = admin.get(f"{base}/add/{DICOM}?type=application").text
    assert re.search(r'value="[^"]+" checked disabled', roles)


def test_add_needs_a_selected_permission(signed_in: SignedIn) -> None:
    admin = signed_in("global-admin")
    app = register_app(admin)
    response = admin.submit(f"/portal/apps/{app}/permissions/add/{DICOM}", {"type": "application"})
    assert response.status_code == 400
    assert "Select at least one permission to add." in response.text


def test_an_unknown_api_or_permission_is_not_found(signed_in: SignedIn) -> None:
    admin = signed_in("global-admin")
    app = register_app(admin)
    assert admin.get(f"/portal/apps/{app}/permissions/add/nope").status_code == 404
    response = admin.submit(
        f"/portal/apps/{app}/permissions/add/{DICOM}",
        {"type": "application", "permission": builtin.APPLICATION_READ_ALL},
    )
    assert response.status_code == 404


def test_developer_sees_a_disabled_button_and_the_server_refuses_consent(
    signed_in: SignedIn, portal_context: Context
) -> None:
    developer = signed_in("developer")
    app, base = dicom_client(developer)
    page = developer.get(base).text
    assert re.search(r'<button type="button" aria-disabled="true"[^>]*>Grant admin consent', page)
    assert f'href="{base}/consent"' not in page
    assert "Only an administrator can grant consent. Ask a Global Administrator or an " in page

    assert developer.get(f"{base}/consent").status_code == 403
    refused = developer.submit(f"{base}/consent")
    assert refused.status_code == 403
    assert GRANT_CONSENT in refused.text
    assert granted(portal_context, app) == ()
    assert "Not granted for" in developer.get(base).text


def test_developer_cannot_revoke_or_remove_a_granted_permission(
    signed_in: SignedIn, portal_context: Context
) -> None:
    developer = signed_in("developer")
    app, base = dicom_client(developer)
    assert signed_in("global-admin").submit(f"{base}/consent").is_success
    assert re.search(r'aria-disabled="true"[^>]*>Revoke admin consent', developer.get(base).text)
    assert developer.submit(f"{base}/revoke").status_code == 403
    removal = {"api": DICOM, "permission": builtin.DICOM_READWRITE}
    assert developer.submit(f"{base}/remove", removal).status_code == 403
    assert granted(portal_context, app) == ("Dicom.ReadWrite",)


def test_application_administrator_consents_for_dicom_but_not_for_graph(
    signed_in: SignedIn, portal_context: Context
) -> None:
    app_admin = signed_in("app-admin")
    dicom_app, dicom_base = dicom_client(app_admin, "DICOM client")
    assert app_admin.submit(f"{dicom_base}/consent").is_success
    assert granted(portal_context, dicom_app) == ("Dicom.ReadWrite",)

    both, base = dicom_client(app_admin, "Graph and DICOM client")
    add_permission(app_admin, both, GRAPH, builtin.APPLICATION_READ_ALL)
    page = app_admin.get(base).text
    assert 'aria-disabled="true"' in page and GRANT_GRAPH_CONSENT in page
    refused = app_admin.submit(f"{base}/consent")
    assert refused.status_code == 403
    assert GRANT_GRAPH_CONSENT in refused.text
    assert granted(portal_context, both) == ()
    assert granted(portal_context, both, GRAPH) == ()


def test_revoke_admin_consent_after_confirmation(
    signed_in: SignedIn, portal_context: Context
) -> None:
    admin = signed_in("global-admin")
    app, base = dicom_client(admin)
    admin.submit(f"{base}/consent")
    assert "Revoke admin consent confirmation." in admin.get(f"{base}/revoke").text
    response = admin.submit(f"{base}/revoke")
    assert "Admin consent revoked." in response.text and "Not granted for" in response.text
    assert granted(portal_context, app) == ()


def test_remove_a_permission(signed_in: SignedIn, portal_context: Context) -> None:
    admin = signed_in("global-admin")
    app, base = dicom_client(admin)
    assert f'action="{base}/remove" data-confirm="Remove the permission Dicom.ReadWrite' in (
        admin.get(base).text
    )
    response = admin.submit(f"{base}/remove", {"api": DICOM, "permission": builtin.DICOM_READWRITE})
    assert "Permission removed." in response.text and "No permissions added." in response.text
    with portal_context.store.read() as session:
        stored = directory.get_application(session, portal_context.tenant_id, app)
        assert stored.required_resource_access == []
    again = admin.submit(f"{base}/remove", {"api": DICOM, "permission": builtin.DICOM_READWRITE})
    assert again.status_code == 404


def test_delegated_permissions_of_a_custom_api(
    signed_in: SignedIn, portal_context: Context
) -> None:
    admin = signed_in("global-admin")
    api = register_app(admin, "Reports API")
    scope = {
        "id": "0b9b3c2a-8d3e-4f6a-9c1d-2e4f6a8b0c1d",
        "value": "Reports.Read",
        "adminConsentDisplayName": XSS,
        "adminConsentDescription": "Read reports",
        "type": "Admin",
    }
    with portal_context.store.write() as session:
        app = directory.get_application(session, portal_context.tenant_id, api)
        directory.update_application(
            session, app, identifier_uris=[f"api://{app.app_id}"], oauth2_permission_scopes=[scope]
        )
        api_app_id = app.app_id
    client = register_app(admin)
    base = f"/portal/apps/{client}/permissions"
    assert "Reports API" in admin.get(f"{base}/add").text
    listed = admin.get(f"{base}/add/{api_app_id}?type=delegated").text
    assert "Reports.Read" in listed and XSS not in listed and "&lt;script&gt;" in listed
    assert (
        "exposes no application permissions"
        in admin.get(f"{base}/add/{api_app_id}?type=application").text
    )
    admin.submit(f"{base}/add/{api_app_id}", {"type": "delegated", "permission": scope["id"]})
    page = admin.submit(f"{base}/consent").text
    assert "<td>Delegated</td>" in page and "Granted for" in page
    assert XSS not in page


@pytest.mark.parametrize(
    "path", ["", "/add", f"/add/{DICOM}", "/consent", "/revoke"], ids=lambda p: p or "blade"
)
def test_developer_cannot_open_someone_elses_app(signed_in: SignedIn, path: str) -> None:
    app = register_app(signed_in("global-admin"))
    assert signed_in("developer").get(f"/portal/apps/{app}/permissions{path}").status_code == 403


def test_developer_cannot_add_to_someone_elses_app(
    signed_in: SignedIn, portal_context: Context
) -> None:
    app = register_app(signed_in("global-admin"))
    developer = signed_in("developer")
    response = developer.submit(
        f"/portal/apps/{app}/permissions/add/{DICOM}",
        {"type": "application", "permission": builtin.DICOM_READWRITE},
    )
    assert response.status_code == 403
    with portal_context.store.read() as session:
        stored = directory.get_application(session, portal_context.tenant_id, app)
        assert stored.required_resource_access == []


def test_display_names_are_escaped(signed_in: SignedIn) -> None:
    admin = signed_in("global-admin")
    _, base = dicom_client(admin, XSS)
    for path in ("", "/add", f"/add/{DICOM}?type=application", "/consent"):
        page = admin.get(f"{base}{path}").text
        assert XSS not in page and "&lt;script&gt;" in page
