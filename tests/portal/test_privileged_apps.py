"""On a running server: an Application Administrator cannot take over an application that holds
Microsoft Graph permissions (the bootstrap management client among them) by adding a secret to
it or changing its permissions; a Global Administrator can (issue 13, item 4)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dicomite.identity import consent, credentials, federated_credentials, principals
from dicomite.identity.builtin import APPLICATION_READWRITE_ALL, DICOM_APP_ID, GRAPH_APP_ID
from tests.fixtures.directory import GRAPH_SCOPE, Admin, make_certificate
from tests.fixtures.server import Server
from tests.portal.wire import PortalSession, new_person, secret_ids, stored_app

GRAPH = GRAPH_SCOPE.removesuffix("/.default")
REFUSAL = "Only a Global Administrator can change its credentials"


@pytest.fixture(scope="module")
def app_admin(server: Server) -> Iterator[PortalSession]:
    person = new_person(server, "application-administrator")
    yield person
    person.close()


@pytest.fixture(scope="module")
def global_admin(server: Server) -> Iterator[PortalSession]:
    person = PortalSession(server, server.admin_username, server.admin_password)
    yield person
    person.close()


def _refused(response_text: str, status: int) -> None:
    assert status == 403, response_text
    assert REFUSAL in response_text and "Microsoft Graph application permissions" in response_text


def test_application_administrator_cannot_add_a_secret_to_the_bootstrap_client(
    app_admin: PortalSession, admin: Admin, server: Server
) -> None:
    bootstrap = stored_app(admin, server.client_id)
    base = f"/portal/apps/{bootstrap.id}/credentials"
    before = secret_ids(admin, server.client_id)

    form = app_admin.get(f"{base}/secrets/new")
    _refused(form.text, form.status_code)
    added = app_admin.submit(f"{base}/secrets/new", {"description": "mine", "expires": "90"})
    _refused(added.text, added.status_code)
    removed = app_admin.submit(f"{base}/secrets/{sorted(before)[0]}/delete", {})
    _refused(removed.text, removed.status_code)
    pem = make_certificate().certificate_pem
    uploaded = app_admin.submit(
        f"{base}/certificates/new",
        {"description": "mine"},
        files={"certificate": ("mine.pem", pem, "application/x-pem-file")},
    )
    _refused(uploaded.text, uploaded.status_code)

    form = app_admin.get(f"{base}/federated/new")
    _refused(form.text, form.status_code)
    trusted = app_admin.submit(
        f"{base}/federated/new",
        {"scenario": "other", "issuer": "https://idp.example", "subject": "me", "name": "mine"},
    )
    _refused(trusted.text, trusted.status_code)

    assert secret_ids(admin, server.client_id) == before
    with admin.context.store.read() as session:
        bootstrap = stored_app(admin, server.client_id)
        assert not credentials.list_certificates(session, bootstrap)
        assert not federated_credentials.federated_credentials_of(session, bootstrap)


def test_application_administrator_cannot_change_the_bootstrap_clients_permissions(
    app_admin: PortalSession, admin: Admin, server: Server
) -> None:
    bootstrap = stored_app(admin, server.client_id)
    base = f"/portal/apps/{bootstrap.id}/permissions"

    page = app_admin.get(base)
    assert page.status_code == 200 and REFUSAL in page.text
    assert 'aria-disabled="true"' in page.text
    attempts = [
        app_admin.submit(
            f"{base}/add/{DICOM_APP_ID}", {"type": "application", "permission": "Dicom.Read"}
        ),
        app_admin.submit(
            f"{base}/remove", {"api": GRAPH_APP_ID, "permission": APPLICATION_READWRITE_ALL}
        ),
        app_admin.submit(f"{base}/revoke", {}),
        app_admin.submit(f"{base}/consent", {}),
        app_admin.submit(f"/portal/apps/{bootstrap.id}/delete", {}),
    ]
    for response in attempts:
        _refused(response.text, response.status_code)

    after = stored_app(admin, server.client_id)
    assert after.required_resource_access == bootstrap.required_resource_access
    with admin.context.store.read() as session:  # its consent was not revoked either
        tenant = admin.context.tenant_id
        client = principals.service_principal_for_app(session, tenant, server.client_id)
        graph = principals.service_principal_for_app(session, tenant, GRAPH_APP_ID)
        assert client is not None and graph is not None
        held = set(consent.granted_role_values(session, client.id, graph))
    assert held == {"Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"}


def test_an_app_granted_any_graph_permission_is_protected(
    app_admin: PortalSession, admin: Admin
) -> None:
    reader = admin.register(roles=("Application.Read.All",), api=GRAPH)
    assert reader.secret_key_id is not None
    base = f"/portal/apps/{reader.object_id}/credentials"
    added = app_admin.submit(f"{base}/secrets/new", {"description": "mine", "expires": "90"})
    _refused(added.text, added.status_code)
    assert secret_ids(admin, reader.app_id) == {reader.secret_key_id}


def test_global_administrator_can_add_a_secret_to_the_bootstrap_client(
    global_admin: PortalSession, admin: Admin, server: Server
) -> None:
    bootstrap = stored_app(admin, server.client_id)
    base = f"/portal/apps/{bootstrap.id}/credentials"
    before = secret_ids(admin, server.client_id)

    added = global_admin.submit(f"{base}/secrets/new", {"description": "ga", "expires": "90"})
    assert added.status_code == 200, added.text
    new = secret_ids(admin, server.client_id) - before
    assert len(new) == 1
    removed = global_admin.submit(f"{base}/secrets/{new.pop()}/delete", {})
    assert removed.status_code == 200
    assert secret_ids(admin, server.client_id) == before


def test_apps_without_graph_permissions_are_unaffected(
    app_admin: PortalSession, admin: Admin
) -> None:
    dicom_client = admin.register(roles=("Dicom.Read",))  # consented, but not to Graph
    asks_only = admin.register(roles=("Application.Read.All",), api=GRAPH, grant=False)
    for app in (dicom_client, asks_only):
        before = secret_ids(admin, app.app_id)
        base = f"/portal/apps/{app.object_id}/credentials"
        added = app_admin.submit(f"{base}/secrets/new", {"description": "ok", "expires": "90"})
        assert added.status_code == 200, added.text
        assert len(secret_ids(admin, app.app_id) - before) == 1
        permissions = f"/portal/apps/{app.object_id}/permissions"
        configured = app_admin.submit(
            f"{permissions}/add/{DICOM_APP_ID}",
            {"type": "application", "permission": "Dicom.ReadWrite"},
        )
        assert configured.status_code == 200, configured.text
        assert REFUSAL not in app_admin.get(permissions).text
