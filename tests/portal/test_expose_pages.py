"""Expose an API: Application ID URI, scopes, app roles and the access token version."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from dicomite.bootstrap import Context
from dicomite.identity import directory, principals
from tests.portal.conftest import PortalClient

XSS = '<script>alert("x")</script>'
ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
SignedIn = Callable[[str], PortalClient]


def register(client: PortalClient, name: str = "Studies API") -> str:
    """New registration through the portal; returns the application's object id."""
    response = client.submit("/portal/apps/new", {"name": name})
    found = re.search(r"/portal/apps/([0-9a-f-]{36})", str(response.url))
    assert found, response.text
    return found.group(1)


def app_id_of(context: Context, object_id: str) -> str:
    with context.store.read() as session:
        return directory.get_application(session, context.tenant_id, object_id).app_id


def role_form(**overrides: str) -> dict[str, str]:
    return {
        "display_name": "Studies reader",
        "member_types": "Application",
        "value": "Studies.Read",
        "description": "Read studies",
        "enabled": "true",
        **overrides,
    }


def scope_form(**overrides: str) -> dict[str, str]:
    return {
        "value": "Studies.Search",
        "type": "Admin",
        "admin_name": "Search studies",
        "admin_description": "Lets the app search studies",
        "state": "enabled",
        **overrides,
    }


def test_application_id_uri_suggests_api_app_id_and_saves(
    signed_in: SignedIn, portal_context: Context
) -> None:
    admin = signed_in("app-admin")
    app = register(admin)
    app_id = app_id_of(portal_context, app)
    page = admin.get(f"/portal/apps/{app}/expose")
    assert page.status_code == 200
    assert "Application ID URI" in page.text and ">Add</a>" in page.text
    assert f'value="api://{app_id}"' in admin.get(f"/portal/apps/{app}/expose/uri").text

    saved = admin.submit(f"/portal/apps/{app}/expose/uri", {"identifier_uri": f"api://{app_id}"})
    assert saved.status_code == 200 and "Saved." in saved.text
    assert f"api://{app_id}" in saved.text and ">Edit</a>" in saved.text
    with portal_context.store.read() as session:
        found = principals.find_resource(session, portal_context.tenant_id, f"api://{app_id}")
        assert found is not None and found.app_id == app_id  # the domain synced the principal


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("not a uri", "must be an absolute"),
        ("", "must be a non-empty string"),
        ("https://dicom.healthcareapis.azure.com", "must use a verified domain"),
    ],
)
def test_invalid_identifier_uri_is_refused_with_the_reason(
    signed_in: SignedIn, uri: str, message: str
) -> None:
    admin = signed_in("global-admin")
    app = register(admin)
    response = admin.submit(f"/portal/apps/{app}/expose/uri", {"identifier_uri": uri})
    assert response.status_code == 400
    assert 'class="error-box"' in response.text and message in response.text
    assert "Application ID URI" in response.text  # the form again, not an error page


def test_add_a_scope_sets_the_uri_first_and_lists_the_full_scope(
    signed_in: SignedIn, portal_context: Context
) -> None:
    admin = signed_in("global-admin")
    app = register(admin)
    app_id = app_id_of(portal_context, app)
    form = admin.get(f"/portal/apps/{app}/expose/scopes/new").text
    for label in (
        "Scope name",
        "Who can consent?",
        "Admins only",
        "Admins and users",
        "Admin consent display name",
        "Admin consent description",
        "State",
    ):
        assert label in form
    assert f'value="api://{app_id}"' in form  # the API has no URI yet: the form asks for one

    page = admin.submit(
        f"/portal/apps/{app}/expose/scopes/new", scope_form(identifier_uri=f"api://{app_id}")
    )
    assert page.status_code == 200 and "Scope saved." in page.text
    assert f"api://{app_id}/Studies.Search" in page.text
    assert "Admins only" in page.text and "Search studies" in page.text
    with portal_context.store.read() as session:
        stored = directory.get_application(session, portal_context.tenant_id, app)
        assert stored.identifier_uris == [f"api://{app_id}"]
        assert stored.oauth2_permission_scopes[0]["type"] == "Admin"


def test_scope_value_with_spaces_is_refused_and_the_form_keeps_the_input(
    signed_in: SignedIn,
) -> None:
    admin = signed_in("global-admin")
    app = register(admin)
    response = admin.submit(
        f"/portal/apps/{app}/expose/scopes/new",
        scope_form(value="Read studies", identifier_uri="https://studies.dicomite.localhost"),
    )
    assert response.status_code == 400
    assert "must not contain spaces" in response.text
    assert 'value="Read studies"' in response.text and "Search studies" in response.text


def test_create_an_app_role_disable_then_delete(
    signed_in: SignedIn, portal_context: Context
) -> None:
    admin = signed_in("global-admin")
    app = register(admin)
    form = admin.get(f"/portal/apps/{app}/expose/roles/new").text
    for label in (
        "Display name",
        "Allowed member types",
        "Applications",
        "Value",
        "Description",
        "Do you want to enable this app role?",
    ):
        assert label in form

    page = admin.submit(f"/portal/apps/{app}/expose/roles/new", role_form())
    assert "App role saved." in page.text and "Studies.Read" in page.text
    with portal_context.store.read() as session:
        role = directory.get_application(session, portal_context.tenant_id, app).app_roles[0]
    assert role["allowedMemberTypes"] == ["Application"] and role["isEnabled"] is True
    base = f"/portal/apps/{app}/expose/roles/{role['id']}"
    assert f'action="{base}/delete"' not in page.text  # enabled: disable first, as in Entra ID
    assert "To delete an app role, disable it first." in page.text

    disabled = admin.submit(f"{base}/state", {"enabled": "false"})
    assert "Disabled" in disabled.text and f'action="{base}/delete"' in disabled.text
    deleted = admin.submit(f"{base}/delete")
    assert "App role deleted." in deleted.text and "No app roles have been defined." in deleted.text


def test_edit_an_app_role_keeps_its_id(signed_in: SignedIn, portal_context: Context) -> None:
    admin = signed_in("global-admin")
    app = register(admin)
    admin.submit(f"/portal/apps/{app}/expose/roles/new", role_form())
    with portal_context.store.read() as session:
        role_id = directory.get_application(session, portal_context.tenant_id, app).app_roles[0][
            "id"
        ]
    base = f"/portal/apps/{app}/expose/roles/{role_id}"
    assert 'value="Studies reader"' in admin.get(base).text
    admin.submit(base, role_form(display_name="Readers", member_types="User,Application"))
    with portal_context.store.read() as session:
        roles = directory.get_application(session, portal_context.tenant_id, app).app_roles
    assert [(r["id"], r["displayName"]) for r in roles] == [(role_id, "Readers")]
    assert roles[0]["allowedMemberTypes"] == ["User", "Application"]
    assert roles[0]["isEnabled"] is True


def test_duplicate_role_value_is_refused(signed_in: SignedIn) -> None:
    admin = signed_in("global-admin")
    app = register(admin)
    admin.submit(f"/portal/apps/{app}/expose/roles/new", role_form())
    again = admin.submit(f"/portal/apps/{app}/expose/roles/new", role_form(display_name="Other"))
    assert again.status_code == 400
    assert "values must be unique" in again.text and 'value="Other"' in again.text


def test_role_without_member_type_is_refused(signed_in: SignedIn) -> None:
    admin = signed_in("global-admin")
    app = register(admin)
    response = admin.submit(f"/portal/apps/{app}/expose/roles/new", role_form(member_types=""))
    assert response.status_code == 400 and "allowedMemberTypes" in response.text


def test_access_token_version(signed_in: SignedIn, portal_context: Context) -> None:
    admin = signed_in("global-admin")
    app = register(admin)
    page = admin.submit(
        f"/portal/apps/{app}/expose/token-version", {"requested_access_token_version": "2"}
    )
    assert '<option value="2" selected>' in page.text
    with portal_context.store.read() as session:
        stored = directory.get_application(session, portal_context.tenant_id, app)
        sp = principals.service_principal_for_app(session, portal_context.tenant_id, stored.app_id)
    assert stored.requested_access_token_version == 2
    assert sp is not None and sp.requested_access_token_version == 2
    wrong = admin.submit(
        f"/portal/apps/{app}/expose/token-version", {"requested_access_token_version": "3"}
    )
    assert wrong.status_code == 400


def test_user_supplied_text_is_escaped(signed_in: SignedIn) -> None:
    admin = signed_in("global-admin")
    app = register(admin)
    admin.submit(
        f"/portal/apps/{app}/expose/scopes/new",
        scope_form(
            admin_name=XSS, admin_description=XSS, identifier_uri="https://dicomite.localhost/xss"
        ),
    )
    page = admin.submit(
        f"/portal/apps/{app}/expose/roles/new", role_form(display_name=XSS, description=XSS)
    )
    assert XSS not in page.text
    assert page.text.count(ESCAPED) >= 3  # scope display name, role name and description


def test_only_people_who_manage_the_app_may_expose_its_api(signed_in: SignedIn) -> None:
    admin = signed_in("app-admin")
    app = register(admin)
    for role in ("developer", "nobody"):
        other = signed_in(role)
        assert other.get(f"/portal/apps/{app}/expose").status_code == 403
        refused = other.submit(f"/portal/apps/{app}/expose/roles/new", role_form())
        assert refused.status_code == 403
    owner = signed_in("developer")
    own = register(owner, "Mine")
    assert owner.get(f"/portal/apps/{own}/expose").status_code == 200


def test_unknown_kind_or_item_is_not_found(signed_in: SignedIn) -> None:
    admin = signed_in("global-admin")
    app = register(admin)
    assert admin.get(f"/portal/apps/{app}/expose/widgets/new").status_code == 404
    missing = "00000000-0000-0000-0000-000000000000"
    assert admin.get(f"/portal/apps/{app}/expose/roles/{missing}").status_code == 404
