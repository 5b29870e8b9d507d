"""Certificates & secrets blade: a secret's value shown once, expiry rules, certificate upload."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest

from dicomite.bootstrap import Context
from dicomite.clock import utcnow
from dicomite.identity import credentials, directory
from dicomite.store.tables import KeyCredential, PasswordCredential
from tests.fixtures.directory import make_certificate
from tests.portal.conftest import AdminApp, PortalClient, register_app
from tests.portal.test_permissions_pages import XSS

SignedIn = Callable[[str], PortalClient]
NEW_VALUE = re.compile(r'<code id="new-secret-value">([^<]+)</code>')
NEW_ID = re.compile(r'<code id="new-secret-id">([^<]+)</code>')
WARNING = (
    "Client secret values cannot be viewed, except for immediately after creation. Be sure to "
    "save the secret when created before leaving the page."
)


def stored_secrets(context: Context, app: str) -> list[PasswordCredential]:
    with context.store.read() as session:
        found = directory.get_application(session, context.tenant_id, app)
        return list(credentials.list_passwords(session, found))


def stored_certificates(context: Context, app: str) -> list[KeyCredential]:
    with context.store.read() as session:
        found = directory.get_application(session, context.tenant_id, app)
        return list(credentials.list_certificates(session, found))


def add_secret(client: PortalClient, app: str, follow: bool = True, **fields: str):  # type: ignore[no-untyped-def]
    """Submit "Add a client secret"; by default follow the redirect to the page showing it."""
    return client.submit(
        f"/portal/apps/{app}/credentials/secrets/new",
        {"description": "ci", "expires": "180", **fields},
        follow_redirects=follow,
    )


def upload(client: PortalClient, app: str, data: bytes, name: str = "client.cer", **fields: str):  # type: ignore[no-untyped-def]
    return client.post(
        f"/portal/apps/{app}/credentials/certificates/new",
        data={"csrf_token": client.csrf(), "description": "signing", **fields},
        files={"certificate": (name, data, "application/x-x509-ca-cert")},
    )


def test_blade_defaults_to_client_secrets_with_counts(admin_app: AdminApp) -> None:
    admin, app = admin_app
    page = admin.get(f"/portal/apps/{app}/credentials").text
    assert 'aria-selected="true">Client secrets (0)</a>' in page
    assert 'aria-selected="false">Certificates (0)</a>' in page
    assert "No client secrets have been created" in page and "+ New client secret" in page
    form = admin.get(f"/portal/apps/{app}/credentials/secrets/new").text
    labels = re.findall(r'<option value="[^"]+"(?: selected)?>([^<]+)</option>', form)
    assert labels == [
        "Recommended: 180 days (6 months)",
        "90 days (3 months)",
        "365 days (12 months)",
        "545 days (18 months)",
        "730 days (24 months)",
        "Custom",
    ]
    assert '<option value="180" selected>' in form and 'id="custom-dates" hidden' in form


def test_new_secret_value_is_shown_once_then_only_its_hint(
    admin_app: AdminApp, portal_context: Context
) -> None:
    admin, app = admin_app
    response = add_secret(admin, app)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    value_match, id_match = NEW_VALUE.search(response.text), NEW_ID.search(response.text)
    assert value_match and id_match
    value, key_id = value_match.group(1), id_match.group(1)
    assert 'data-copy-target="new-secret-value"' in response.text
    assert 'data-copy-target="new-secret-id"' in response.text
    assert WARNING in response.text and "Client secrets (1)" in response.text

    [secret] = stored_secrets(portal_context, app)
    assert secret.key_id == key_id and secret.hint == value[:3] and len(value) == 40
    assert secret.secret_hash == portal_context.protection.secret_hash(value)
    assert abs(secret.end_at - secret.start_at - timedelta(days=180)) < timedelta(minutes=1)

    base = f"/portal/apps/{app}"
    pages = [
        base,
        f"{base}/credentials",
        f"{base}/credentials?tab=secrets",
        f"{base}/credentials?tab=certificates",
        f"{base}/credentials/secrets/new",
        f"{base}/credentials/certificates/new",
        f"{base}/permissions",
        f"{base}/permissions/add",
        "/portal/apps",
        "/portal/",
    ]
    for path in pages:
        page = admin.get(path)
        assert page.status_code == 200, path
        assert value not in page.text and value[3:] not in page.text, path
    listed = admin.get(f"{base}/credentials").text
    assert f"<code>{value[:3]}***" in listed and key_id in listed
    assert "new-secret-value" not in listed and WARNING not in listed


def test_creating_a_secret_redirects_and_a_reload_creates_nothing(
    admin_app: AdminApp, portal_context: Context
) -> None:
    """Post/redirect/get: the POST answers 303; the page it leads to shows the value once, and
    reloading that page shows only the hint and adds no second secret."""
    admin, app = admin_app
    posted = add_secret(admin, app, follow=False)
    assert posted.status_code == 303 and "new-secret-value" not in posted.text
    target = posted.headers["location"]
    assert target.startswith(f"/portal/apps/{app}/credentials")

    shown = admin.get(target)
    match = NEW_VALUE.search(shown.text)
    assert shown.status_code == 200 and match and WARNING in shown.text
    value = match.group(1)
    reloaded = admin.get(target)
    assert reloaded.status_code == 200 and "Client secrets (1)" in reloaded.text
    assert value not in reloaded.text and "new-secret-value" not in reloaded.text
    assert f"<code>{value[:3]}***" in reloaded.text
    [secret] = stored_secrets(portal_context, app)
    assert secret.secret_hash == portal_context.protection.secret_hash(value)


def test_the_handed_over_value_is_for_its_own_session_only(
    admin_app: AdminApp, signed_in: SignedIn
) -> None:
    """The redirect's cookie, replayed by another signed-in session, shows nothing."""
    admin, app = admin_app
    posted = add_secret(admin, app, follow=False)
    other = signed_in("global-admin")
    for name, value in posted.cookies.items():
        other.cookies.set(name, value)
    page = other.get(posted.headers["location"])
    assert page.status_code == 200 and "new-secret-value" not in page.text
    assert "Client secrets (1)" in page.text


def test_preset_expiries_up_to_24_months(admin_app: AdminApp, portal_context: Context) -> None:
    admin, app = admin_app
    for days in ("90", "365", "545", "730"):
        assert add_secret(admin, app, expires=days).status_code == 200
    lengths = sorted((s.end_at - s.start_at).days for s in stored_secrets(portal_context, app))
    assert lengths == [90, 365, 545, 730]


def test_custom_expiry_over_24_months_is_rejected(
    admin_app: AdminApp, portal_context: Context
) -> None:
    admin, app = admin_app
    response = add_secret(admin, app, expires="custom", start="2030-01-15", end="2032-01-16")
    assert response.status_code == 400
    assert "A client secret may be valid for at most 24 months." in response.text
    assert '<div id="custom-dates">' in response.text and 'value="2032-01-16"' in response.text
    assert '<option value="custom" selected>' in response.text
    assert stored_secrets(portal_context, app) == []
    exactly = add_secret(admin, app, expires="custom", start="2030-01-15", end="2032-01-15")
    assert exactly.status_code == 200 and NEW_VALUE.search(exactly.text)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"start": "2030-02-01", "end": "2030-01-01"}, "The end date must be later than"),
        ({"start": "2030-02-01", "end": ""}, "Choose a start date and an end date"),
        ({"start": "01/02/2030", "end": "2030-03-01"}, "The start date must be a date"),
    ],
)
def test_custom_dates_are_checked(
    admin_app: AdminApp,
    portal_context: Context,
    fields: dict[str, str],
    message: str,
) -> None:
    admin, app = admin_app
    response = add_secret(admin, app, expires="custom", **fields)
    assert response.status_code == 400 and message in response.text
    assert stored_secrets(portal_context, app) == []


def test_expiring_and_expired_credentials_are_flagged(admin_app: AdminApp) -> None:
    admin, app = admin_app
    today = utcnow().date()
    soon = (today + timedelta(days=10)).isoformat()
    add_secret(admin, app, expires="custom", start=today.isoformat(), end=soon)
    add_secret(admin, app, description="later")
    secrets_tab = admin.get(f"/portal/apps/{app}/credentials").text
    assert secrets_tab.count('<span class="status-warn">Expires soon</span>') == 1

    upload(admin, app, make_certificate(days=20).certificate_pem)
    old = make_certificate(days=30, start=utcnow() - timedelta(days=60))
    upload(admin, app, old.certificate_pem, description="old")
    certificates_tab = admin.get(f"/portal/apps/{app}/credentials?tab=certificates").text
    assert '<span class="status-warn">Expires soon</span>' in certificates_tab
    assert '<span class="status-bad">Expired</span>' in certificates_tab


def test_delete_a_client_secret(admin_app: AdminApp, portal_context: Context) -> None:
    admin, app = admin_app
    key_id = NEW_ID.search(add_secret(admin, app).text).group(1)  # type: ignore[union-attr]
    page = admin.get(f"/portal/apps/{app}/credentials").text
    action = f"/portal/apps/{app}/credentials/secrets/{key_id}/delete"
    assert f'action="{action}" data-confirm="Delete the client secret ci?' in page
    response = admin.submit(action)
    assert "Client secret deleted." in response.text and "Client secrets (0)" in response.text
    assert stored_secrets(portal_context, app) == []


def test_upload_a_certificate_shows_its_thumbprint(
    admin_app: AdminApp, portal_context: Context
) -> None:
    admin, app = admin_app
    pair = make_certificate()
    response = upload(admin, app, pair.certificate_pem, name="client.pem")
    assert response.status_code == 200
    assert "Certificate uploaded." in response.text and "Certificates (1)" in response.text
    assert f'<code class="thumbprint">{pair.thumbprint_hex}</code>' in response.text
    assert "<td>signing</td>" in response.text
    [stored] = stored_certificates(portal_context, app)
    assert stored.key_id in response.text
    assert stored.end_at.strftime("%Y-%m-%d") in response.text

    again = upload(admin, app, pair.certificate_pem)
    assert again.status_code == 400 and "already registered" in again.text
    action = f"/portal/apps/{app}/credentials/certificates/{stored.key_id}/delete"
    assert f'action="{action}"' in response.text
    removed = admin.submit(action)
    assert "Certificate deleted." in removed.text and "Certificates (0)" in removed.text
    assert stored_certificates(portal_context, app) == []


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("client.cer", b"not a certificate", "The key is not an X.509 certificate"),
        ("client.key", b"-----BEGIN CERTIFICATE-----", "Only .cer, .pem and .crt"),
        ("client.crt", b"", "The file is empty or too large"),
        ("client.crt", b"0" * (64 * 1024 + 1), "The file is empty or too large"),
    ],
)
def test_a_bad_certificate_file_gives_a_400_page(
    admin_app: AdminApp,
    portal_context: Context,
    name: str,
    data: bytes,
    message: str,
) -> None:
    admin, app = admin_app
    response = upload(admin, app, data, name=name)
    assert response.status_code == 400
    assert message in response.text and "Upload certificate" in response.text
    assert stored_certificates(portal_context, app) == []


def test_upload_without_a_file_asks_for_one(admin_app: AdminApp) -> None:
    admin, app = admin_app
    response = admin.submit(f"/portal/apps/{app}/credentials/certificates/new", {})
    assert response.status_code == 400 and "Select a certificate file" in response.text


def test_descriptions_are_escaped(admin_app: AdminApp) -> None:
    admin, app = admin_app
    created = add_secret(admin, app, description=XSS)
    upload(admin, app, make_certificate().certificate_pem, description=XSS)
    for page in (
        created.text,
        admin.get(f"/portal/apps/{app}/credentials").text,
        admin.get(f"/portal/apps/{app}/credentials?tab=certificates").text,
    ):
        assert XSS not in page and "&lt;script&gt;alert(" in page


def test_developer_manages_the_credentials_of_their_own_apps_only(
    signed_in: SignedIn, portal_context: Context
) -> None:
    developer = signed_in("developer")
    own = register_app(developer)
    assert NEW_VALUE.search(add_secret(developer, own).text)
    assert upload(developer, own, make_certificate().certificate_pem).status_code == 200

    other = register_app(signed_in("global-admin"))
    base = f"/portal/apps/{other}/credentials"
    for path in ("", "/secrets/new", "/certificates/new"):
        assert developer.get(f"{base}{path}").status_code == 403
    assert add_secret(developer, other).status_code == 403
    assert upload(developer, other, make_certificate().certificate_pem).status_code == 403
    assert stored_secrets(portal_context, other) == []
    assert stored_certificates(portal_context, other) == []
