"""Enterprise applications → Consent and permissions: the tenant's user consent setting. A
Global Administrator changes it; other directory roles see it; sign-ins follow it at once."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

import httpx

from dicomite.bootstrap import Context
from dicomite.clock import utcnow
from dicomite.identity import directory
from dicomite.store.tables import Tenant
from tests.portal.conftest import PortalClient

SignedIn = Callable[[str], PortalClient]
PAGE = "/portal/enterprise/consent"
REDIRECT_URI = "http://localhost:5555/signed-in"


def _allowed(context: Context) -> bool:
    with context.store.read() as session:
        return session.get_one(Tenant, context.tenant_id).users_can_consent


def test_a_global_administrator_turns_user_consent_off_and_on(
    signed_in: SignedIn, portal_context: Context
) -> None:
    admin = signed_in("global-admin")
    page = admin.get(PAGE)
    assert page.status_code == 200 and "User consent for applications" in page.text
    assert 'value="allow" checked' in page.text and "Save" in page.text
    assert PAGE in admin.get("/portal/enterprise").text  # linked from the list

    saved = admin.submit(PAGE, {"user_consent": "deny"})
    assert saved.status_code == 200 and "User consent settings saved." in saved.text
    assert 'value="deny" checked' in saved.text and _allowed(portal_context) is False
    admin.submit(PAGE, {"user_consent": "allow"})
    assert _allowed(portal_context) is True


def test_other_roles_see_the_setting_but_cannot_change_it(
    signed_in: SignedIn, portal_context: Context
) -> None:
    app_admin = signed_in("app-admin")
    page = app_admin.get(PAGE)
    assert page.status_code == 200 and "Only a Global Administrator" in page.text
    assert "<fieldset" in page.text and " disabled>" in page.text
    refused = app_admin.submit(PAGE, {"user_consent": "deny"})
    assert refused.status_code == 403 and _allowed(portal_context) is True
    assert signed_in("reader").get(PAGE).status_code == 403  # no directory role


def _authorize(client: PortalClient, context: Context) -> httpx.Response:
    """A sign-in to a new web app asking for the DICOM service as the person."""
    with context.store.write() as session:
        app, _ = directory.register_app(session, context.tenant_id, utcnow(), "Viewer")
        directory.add_redirect_uri(session, app, "web", REDIRECT_URI)
        app_id = app.app_id
    params = {
        "client_id": app_id,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid https://dicom.healthcareapis.azure.com/user_impersonation",
    }
    return client.get(
        f"/{context.tenant_id}/oauth2/v2.0/authorize", params=params, follow_redirects=False
    )


def test_sign_ins_follow_the_setting(signed_in: SignedIn, portal_context: Context) -> None:
    reader = signed_in("reader")
    asked = _authorize(reader, portal_context)
    assert asked.status_code == 200 and "Permissions requested" in asked.text

    signed_in("global-admin").submit(PAGE, {"user_consent": "deny"})
    refused = _authorize(reader, portal_context)
    assert refused.status_code == 302
    answer = dict(parse_qsl(urlsplit(refused.headers["location"]).query))
    assert answer["error"] == "consent_required"
