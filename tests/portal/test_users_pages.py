"""Users: Global Administrators create people, set their roles, reset passwords, block sign-in
and delete accounts; everyone else is refused on every route."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from httpx import Response
from sqlalchemy import select

from dicomite.bootstrap import Context
from dicomite.identity import passwords, users
from dicomite.store.tables import PortalSession, User
from tests.portal.conftest import CSRF_FIELD, PASSWORD, PortalClient, sign_in
from tests.portal.test_expose_pages import ESCAPED, XSS
from tests.portal.test_signins_pages import table

SignedIn = Callable[[str], PortalClient]
NEW_PASSWORD = "Another-Horse-7"


def user(context: Context, name: str) -> User:
    with context.store.read() as session:
        return users.user_by_name(session, context.tenant_id, name)


def sessions_of(context: Context, name: str) -> int:
    user_id = user(context, name).id
    with context.store.read() as session:
        return len(
            session.scalars(select(PortalSession).where(PortalSession.user_id == user_id)).all()
        )


def developer_signed_in(signed_in: SignedIn, context: Context) -> tuple[PortalClient, User]:
    """The developer's own browser, signed in, and their account."""
    return signed_in("developer"), user(context, "developer@" + context.tenant_domain)


def assert_signed_out(client: PortalClient, context: Context, target: User) -> None:
    assert sessions_of(context, target.user_principal_name) == 0
    assert "/portal/signin" in str(client.get("/portal/apps").url)


def cannot_sign_in(client: PortalClient, name: str) -> None:
    token = CSRF_FIELD.search(client.get("/portal/signin").text)
    assert token
    form = {"csrf_token": token.group(1), "username": name, "password": PASSWORD, "next": ""}
    assert "Sign out" not in client.post("/portal/signin", data=form).text


def new_user(admin: PortalClient, **fields: str) -> Response:
    form = {
        "user_principal_name": "jane@example.test",
        "display_name": "Jane Doe",
        "password_choice": "type",
        "password": PASSWORD,
        "directory_role": "",
        "dicom_role": "DICOM Data Reader",
        **fields,
    }
    return admin.submit("/portal/users/new", form)


def test_create_a_user_who_can_then_sign_in(
    signed_in: SignedIn, portal_context: Context, portal_client: PortalClient
) -> None:
    admin = signed_in("global-admin")
    form = admin.get("/portal/users/new").text
    for label in (
        "User principal name",
        "Display name",
        "Password",
        "Directory role",
        "Global Administrator",
        "Application Administrator",
        "Application Developer",
        "DICOM data role",
        "DICOM Data Reader",
        "DICOM Data Owner",
    ):
        assert label in form
    page = new_user(admin, directory_role="Application Developer").text
    assert "User created." in page and "jane@example.test" in page
    created = user(portal_context, "jane@example.test")
    assert created.directory_role == "Application Developer"
    assert created.dicom_role == "DICOM Data Reader"
    listing = admin.get("/portal/users").text
    assert "Jane Doe" in listing and "Application Developer" in listing
    sign_in(portal_client, "jane@example.test")


def test_password_policy_and_duplicate_names_are_explained(signed_in: SignedIn) -> None:
    admin = signed_in("global-admin")
    weak = new_user(admin, user_principal_name="weak@example.test", password="short")
    assert weak.status_code == 400 and "between 8 and 256 characters" in weak.text
    assert 'value="weak@example.test"' in weak.text  # the form keeps what was typed
    assert 'value="short"' not in weak.text  # but never the password
    new_user(admin)
    again = new_user(admin, user_principal_name="JANE@example.test", display_name="Jane again")
    assert again.status_code == 400 and "already exists" in again.text


def test_a_generated_password_is_shown_once_and_works(
    signed_in: SignedIn, portal_context: Context, portal_client: PortalClient
) -> None:
    admin = signed_in("global-admin")
    page = new_user(admin, user_principal_name="gen@example.test", password_choice="generate")
    shown = re.search(r'<code id="generated-password">([^<]+)</code>', page.text)
    assert shown and "It will not be shown again." in page.text
    created = user(portal_context, "gen@example.test")
    assert passwords.verify_password(created.password_hash, shown.group(1))
    assert shown.group(1) not in admin.get(f"/portal/users/{created.id}").text
    sign_in(portal_client, "gen@example.test", shown.group(1))


def test_change_roles(signed_in: SignedIn, portal_context: Context) -> None:
    admin = signed_in("global-admin")
    new_user(admin)
    jane = user(portal_context, "jane@example.test")
    page = admin.submit(
        f"/portal/users/{jane.id}/roles",
        {"directory_role": "Application Administrator", "dicom_role": ""},
    )
    assert "User updated." in page.text
    jane = user(portal_context, "jane@example.test")
    assert (jane.directory_role, jane.dicom_role) == ("Application Administrator", None)
    wrong = admin.submit(f"/portal/users/{jane.id}/roles", {"directory_role": "Emperor"})
    assert wrong.status_code == 400 and "is not a role" in wrong.text


def test_reset_password_signs_the_user_out(
    signed_in: SignedIn, portal_context: Context, portal_client: PortalClient
) -> None:
    admin = signed_in("global-admin")
    developer, target = developer_signed_in(signed_in, portal_context)
    weak = admin.submit(
        f"/portal/users/{target.id}/password", {"password_choice": "type", "password": "abc"}
    )
    assert weak.status_code == 400 and "between 8 and 256" in weak.text
    assert sessions_of(portal_context, target.user_principal_name) == 1
    page = admin.submit(
        f"/portal/users/{target.id}/password",
        {"password_choice": "type", "password": NEW_PASSWORD},
    )
    assert "Password reset. The user&#39;s sessions were signed out." in page.text
    assert NEW_PASSWORD not in page.text
    assert_signed_out(developer, portal_context, target)
    sign_in(portal_client, target.user_principal_name, NEW_PASSWORD)


def test_reset_to_a_generated_password(signed_in: SignedIn, portal_context: Context) -> None:
    admin = signed_in("global-admin")
    new_user(admin)
    jane = user(portal_context, "jane@example.test")
    page = admin.submit(f"/portal/users/{jane.id}/password", {"password_choice": "generate"})
    shown = re.search(r'<code id="generated-password">([^<]+)</code>', page.text)
    assert shown and "Password reset." in page.text
    assert passwords.verify_password(
        user(portal_context, jane.user_principal_name).password_hash, shown.group(1)
    )


def test_disable_and_enable(
    signed_in: SignedIn, portal_context: Context, portal_client: PortalClient
) -> None:
    admin = signed_in("global-admin")
    developer, target = developer_signed_in(signed_in, portal_context)
    page = admin.submit(f"/portal/users/{target.id}/enabled", {"enabled": "false"})
    assert "Account disabled." in page.text and "sign-in is blocked" in page.text
    assert_signed_out(developer, portal_context, target)
    cannot_sign_in(portal_client, target.user_principal_name)
    page = admin.submit(f"/portal/users/{target.id}/enabled", {"enabled": "true"})
    assert "Account enabled." in page.text
    sign_in(portal_client, target.user_principal_name)


def test_delete(signed_in: SignedIn, portal_context: Context) -> None:
    admin = signed_in("global-admin")
    new_user(admin)
    jane = user(portal_context, "jane@example.test")
    page = admin.submit(f"/portal/users/{jane.id}/delete")
    assert "User deleted." in page.text and "jane@example.test" not in page.text
    assert admin.get(f"/portal/users/{jane.id}").status_code == 404


@pytest.mark.parametrize(
    ("path", "form", "action"),
    [
        ("enabled", {"enabled": "false"}, "disable"),
        ("delete", {}, "delete"),
        ("roles", {"directory_role": "", "dicom_role": ""}, "remove the Global Administrator"),
    ],
)
def test_the_last_global_administrator_is_kept(
    signed_in: SignedIn, portal_context: Context, path: str, form: dict[str, str], action: str
) -> None:
    admin = signed_in("global-admin")
    me = user(portal_context, "global-admin@" + portal_context.tenant_domain)
    with portal_context.store.write() as session:  # the bootstrap administrator steps down
        for other in users.list_users(session, portal_context.tenant_id):
            if other.id != me.id:
                users.set_enabled(session, other, False)
    refused = admin.submit(f"/portal/users/{me.id}/{path}", form)
    assert refused.status_code == 403
    assert (
        f"You cannot {action}" in refused.text
        and "last enabled Global Administrator" in refused.text
    )
    assert 'class="error-box"' in refused.text  # shown on the user's page, not an error page
    assert user(portal_context, me.user_principal_name).account_enabled


def test_search(signed_in: SignedIn) -> None:
    admin = signed_in("global-admin")
    new_user(admin)
    found = table(admin.get("/portal/users", params={"search": "JANE"}).text)
    assert "jane@example.test" in found and "global-admin@" not in found
    assert "No users match" in admin.get("/portal/users", params={"search": "zzz"}).text


def test_display_names_are_escaped(signed_in: SignedIn, portal_context: Context) -> None:
    admin = signed_in("global-admin")
    new_user(admin, display_name=XSS)
    jane = user(portal_context, "jane@example.test")
    for path in ("/portal/users", f"/portal/users/{jane.id}"):
        page = admin.get(path).text
        assert XSS not in page and ESCAPED in page


USER_ROUTES = [
    ("GET", "/portal/users"),
    ("GET", "/portal/users/new"),
    ("POST", "/portal/users/new"),
    ("GET", "/portal/users/{id}"),
    ("POST", "/portal/users/{id}/roles"),
    ("POST", "/portal/users/{id}/password"),
    ("POST", "/portal/users/{id}/enabled"),
    ("POST", "/portal/users/{id}/delete"),
]


@pytest.mark.parametrize("role", ["app-admin", "developer", "owner", "nobody"])
def test_everyone_but_a_global_administrator_is_refused(
    signed_in: SignedIn, portal_context: Context, role: str
) -> None:
    client = signed_in(role)
    target = user(portal_context, f"{role}@{portal_context.tenant_domain}")
    assert 'href="/portal/users"' not in client.get("/portal/").text
    form = {
        "user_principal_name": "x@example.test",
        "display_name": "X",
        "password": PASSWORD,
        "password_choice": "type",
        "directory_role": "Global Administrator",
        "enabled": "false",
    }
    for method, path in USER_ROUTES:
        url = path.format(id=target.id)
        response = client.get(url) if method == "GET" else client.submit(url, form)
        assert response.status_code == 403, (method, url)
    after = user(portal_context, target.user_principal_name)
    assert after.account_enabled and after.directory_role == target.directory_role
    with portal_context.store.read() as session:
        assert users.find_user(session, portal_context.tenant_id, "x@example.test") is None
