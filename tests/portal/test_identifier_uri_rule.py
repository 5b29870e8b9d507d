"""On a running server: the Expose an API forms refuse an Application ID URI that names another
application (Entra ID's identifier-URI rule), with a message saying which ones are allowed
(issue 13, item 5)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dicomite.identity import directory, principals
from tests.fixtures.directory import Admin
from tests.fixtures.server import Server
from tests.portal.wire import PortalSession, new_person, stored_app

REFUSED = "must use a verified domain of the organization or its subdomain"


@pytest.fixture(scope="module")
def developer(server: Server) -> Iterator[PortalSession]:
    person = new_person(server, "application-developer")
    yield person
    person.close()


def _register(person: PortalSession, admin: Admin, name: str) -> tuple[str, str]:
    """New registration through the portal: (object id, appId)."""
    response = person.submit("/portal/apps/new", {"name": name})
    assert response.status_code == 200, response.text
    object_id = str(response.url).rstrip("/").split("/")[-1].split("?")[0]
    with admin.context.store.read() as session:
        app = directory.get_application(session, admin.context.tenant_id, object_id)
        return app.id, app.app_id


def test_a_developer_cannot_give_their_app_another_apps_uri(
    developer: PortalSession, admin: Admin, server: Server
) -> None:
    victim = admin.register(secret=False)  # someone else's API, no URI set yet
    squatter, squatter_app_id = _register(developer, admin, "Squatter")
    uri = f"api://{victim.app_id}"

    response = developer.submit(f"/portal/apps/{squatter}/expose/uri", {"identifier_uri": uri})

    assert response.status_code == 400, response.text
    assert 'class="error-box"' in response.text and REFUSED in response.text
    assert f"api://{squatter_app_id}" in response.text  # says what the app may use instead
    assert stored_app(admin, squatter_app_id).identifier_uris == []
    with admin.context.store.read() as session:
        assert principals.find_resource(session, server.tenant_id, uri) is None


def test_the_scope_form_applies_the_same_rule(developer: PortalSession, admin: Admin) -> None:
    victim = admin.register(secret=False)
    squatter, squatter_app_id = _register(developer, admin, "Scope squatter")
    form = {
        "value": "Studies.Read",
        "type": "Admin",
        "admin_name": "Read studies",
        "state": "enabled",
        "identifier_uri": f"api://{victim.app_id}",
    }
    response = developer.submit(f"/portal/apps/{squatter}/expose/scopes/new", form)
    assert response.status_code == 400 and REFUSED in response.text
    assert stored_app(admin, squatter_app_id).oauth2_permission_scopes == []


def test_own_tenant_and_domain_uris_are_saved(
    developer: PortalSession, admin: Admin, server: Server
) -> None:
    object_id, app_id = _register(developer, admin, "Own URI")
    for uri in (
        f"api://{app_id}",
        f"api://{server.tenant_id}/studies-{app_id[:8]}",
        f"https://studies-{app_id[:8]}.dicomite.localhost/api",
    ):
        saved = developer.submit(f"/portal/apps/{object_id}/expose/uri", {"identifier_uri": uri})
        assert saved.status_code == 200 and "Saved." in saved.text, saved.text
        assert stored_app(admin, app_id).identifier_uris == [uri]
