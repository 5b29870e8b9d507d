"""Authentication: platforms and redirect URIs, Web's logout URL and implicit grant settings,
"Allow public client flows", and the platform choice of New registration."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import pytest

from dicomite.bootstrap import Context
from dicomite.identity import directory
from dicomite.store.tables import Application
from tests.portal.conftest import PortalClient
from tests.portal.test_expose_pages import register

SignedIn = Callable[[str], PortalClient]


def stored(context: Context, object_id: str) -> Application:
    with context.store.read() as session:
        app = directory.get_application(session, context.tenant_id, object_id)
        session.expunge(app)
        return app


def base(app: str) -> str:
    return f"/portal/apps/{app}/authentication"


def remove_form(page: str, platform: str, app: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the page's (first) Remove form of ``platform``."""
    action = f"{base(app)}/platform/{platform}/remove"
    form = page[page.index(f'action="{action}"') :].split("</form>")[0]
    fields = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form))
    return action, {name: html.unescape(value) for name, value in fields.items()}


def test_the_blade_has_an_authentication_entry_and_starts_empty(signed_in: SignedIn) -> None:
    admin = signed_in("app-admin")
    app = register(admin)
    overview = admin.get(f"/portal/apps/{app}")
    assert f'<li><a href="{base(app)}">Authentication</a></li>' in overview.text
    assert "0 web, 0 spa, 0 public client" in overview.text
    page = admin.get(base(app))
    assert page.status_code == 200
    assert f'<li><a href="{base(app)}" aria-current="page">Authentication</a></li>' in page.text
    assert "This application has no platform configured" in page.text
    assert "Front-channel logout URL" not in page.text  # no Web card yet
    choices = admin.get(f"{base(app)}/platform").text
    for label in ("Web", "Single-page application", "Mobile and desktop applications"):
        assert label in choices


@pytest.mark.parametrize(
    ("platform", "uri", "attribute"),
    [
        ("web", "https://app.example/signin-oidc", "redirect_uris"),
        ("spa", "http://localhost:3000", "spa_redirect_uris"),
        ("publicClient", "myapp://auth", "public_client_redirect_uris"),
    ],
)
def test_add_a_platform_then_remove_its_uri(
    signed_in: SignedIn, portal_context: Context, platform: str, uri: str, attribute: str
) -> None:
    admin = signed_in("app-admin")
    app = register(admin)
    added = admin.submit(f"{base(app)}/platform/{platform}", {"redirect_uri": uri})
    assert added.status_code == 200 and "Redirect URI added." in added.text
    assert f"<code>{uri}</code>" in added.text
    assert getattr(stored(portal_context, app), attribute) == [uri]

    action, form = remove_form(added.text, platform, app)
    removed = admin.post(action, data=form)  # exactly what the page's form sends
    assert removed.status_code == 200 and "Redirect URI removed." in removed.text
    assert getattr(stored(portal_context, app), attribute) == []


@pytest.mark.parametrize(
    ("platform", "uri", "reason"),
    [
        ("web", "http://app.example/cb", "http is allowed only for localhost"),
        ("spa", "myapp://auth", "other schemes are for mobile and desktop"),
        ("publicClient", "https://*.app.example/cb", "wildcard"),
        ("web", "", "must be a non-empty string"),
    ],
)
def test_a_refused_uri_shows_the_reason_and_keeps_the_input(
    signed_in: SignedIn, portal_context: Context, platform: str, uri: str, reason: str
) -> None:
    admin = signed_in("app-admin")
    app = register(admin)
    refused = admin.submit(f"{base(app)}/platform/{platform}", {"redirect_uri": uri})
    assert refused.status_code == 400
    assert 'class="error-box" role="alert"' in refused.text and reason in refused.text
    assert f'value="{uri}"' in refused.text
    assert directory.redirect_uris_of(stored(portal_context, app), platform) == []


def test_web_logout_url_and_implicit_grant_checkboxes(
    signed_in: SignedIn, portal_context: Context
) -> None:
    admin = signed_in("app-admin")
    app = register(admin)
    admin.submit(f"{base(app)}/platform/web", {"redirect_uri": "https://app.example/cb"})
    page = admin.get(base(app)).text
    assert "Access tokens (used for implicit flows)" in page
    assert "ID tokens (used for implicit and hybrid flows)" in page

    form = {"logout_url": "https://app.example/signout", "id_tokens": "true"}
    saved = admin.submit(f"{base(app)}/web", form)
    assert saved.status_code == 200 and "Saved." in saved.text
    assert 'value="https://app.example/signout"' in saved.text
    assert 'id="id_tokens" name="id_tokens" type="checkbox" value="true" checked' in saved.text
    app_row = stored(portal_context, app)
    assert app_row.logout_url == "https://app.example/signout"
    assert (app_row.enable_access_token_issuance, app_row.enable_id_token_issuance) == (
        False,
        True,
    )

    cleared = admin.submit(f"{base(app)}/web", {"logout_url": "", "access_tokens": "true"})
    assert cleared.status_code == 200
    app_row = stored(portal_context, app)
    assert app_row.logout_url is None
    assert (app_row.enable_access_token_issuance, app_row.enable_id_token_issuance) == (
        True,
        False,
    )


def test_a_refused_logout_url_is_shown_with_the_reason(
    signed_in: SignedIn, portal_context: Context
) -> None:
    admin = signed_in("app-admin")
    app = register(admin)
    admin.submit(f"{base(app)}/platform/web", {"redirect_uri": "https://app.example/cb"})
    refused = admin.submit(f"{base(app)}/web", {"logout_url": "http://app.example/signout"})
    assert refused.status_code == 400 and "must be an absolute https URI" in refused.text
    assert 'value="http://app.example/signout"' in refused.text
    assert stored(portal_context, app).logout_url is None


def test_allow_public_client_flows(signed_in: SignedIn, portal_context: Context) -> None:
    admin = signed_in("app-admin")
    app = register(admin)
    assert 'id="public-client-no" type="radio"' in admin.get(base(app)).text
    assert 'value="no" checked' in admin.get(base(app)).text
    saved = admin.submit(f"{base(app)}/public-client-flows", {"allow_public_client_flows": "yes"})
    assert saved.status_code == 200 and 'value="yes" checked' in saved.text
    assert stored(portal_context, app).is_fallback_public_client is True
    refused = admin.submit(f"{base(app)}/public-client-flows", {"allow_public_client_flows": "x"})
    assert refused.status_code == 400
    assert stored(portal_context, app).is_fallback_public_client is True


def test_new_registration_puts_the_redirect_uri_on_the_chosen_platform(
    signed_in: SignedIn, portal_context: Context
) -> None:
    admin = signed_in("app-admin")
    assert "Single-page application (SPA)" in admin.get("/portal/apps/new").text
    response = admin.submit(
        "/portal/apps/new",
        {"name": "Viewer", "platform": "spa", "redirect_uri": "http://localhost:3000"},
    )
    app = response.url.path.rsplit("/", 1)[1]
    app_row = stored(portal_context, app)
    assert (app_row.redirect_uris, app_row.spa_redirect_uris) == ([], ["http://localhost:3000"])
    refused = admin.submit(
        "/portal/apps/new", {"name": "Odd", "platform": "ios", "redirect_uri": "myapp://x"}
    )
    assert refused.status_code == 400 and "must be one of web, spa, publicClient" in refused.text


def test_only_people_who_manage_the_app_may_change_its_platforms(
    signed_in: SignedIn, portal_context: Context
) -> None:
    app = register(signed_in("app-admin"))
    for role in ("developer", "nobody"):
        other = signed_in(role)
        assert other.get(base(app)).status_code == 403
        assert other.get(f"{base(app)}/platform/spa").status_code == 403
        for path, form in (
            (f"{base(app)}/platform/spa", {"redirect_uri": "https://evil.example/cb"}),
            (f"{base(app)}/web", {"logout_url": "https://evil.example/"}),
            (f"{base(app)}/public-client-flows", {"allow_public_client_flows": "yes"}),
        ):
            assert other.submit(path, form, follow_redirects=False).status_code == 403
    unchanged = stored(portal_context, app)
    assert unchanged.spa_redirect_uris == [] and unchanged.logout_url is None
    assert unchanged.is_fallback_public_client is False
    owner = signed_in("developer")
    own = register(owner, "Developer's own app")
    added = owner.submit(f"{base(own)}/platform/spa", {"redirect_uri": "http://localhost:3000"})
    assert added.status_code == 200


def test_forms_without_the_csrf_token_are_refused(
    signed_in: SignedIn, portal_context: Context
) -> None:
    admin = signed_in("app-admin")
    app = register(admin)
    response = admin.post(f"{base(app)}/platform/spa", data={"redirect_uri": "http://localhost"})
    assert response.status_code == 403
    assert stored(portal_context, app).spa_redirect_uris == []


def test_unknown_platform_or_uri_is_not_found(signed_in: SignedIn) -> None:
    admin = signed_in("app-admin")
    app = register(admin)
    assert admin.get(f"{base(app)}/platform/ios").status_code == 404
    gone = admin.submit(f"{base(app)}/platform/web/remove", {"redirect_uri": "https://x.example"})
    assert gone.status_code == 404


def test_uris_are_escaped(signed_in: SignedIn) -> None:
    admin = signed_in("app-admin")
    app = register(admin)
    uri = "myapp://auth/<b>x</b>"
    admin.submit(f"{base(app)}/platform/publicClient", {"redirect_uri": uri})
    page = admin.get(base(app)).text
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
