"""Hostile requests to the pages around the authorization endpoint, over the wire: the sign-in
page's ``next``, framing, the consent form's CSRF protection and parameters, and the
``form_post`` page's escaping."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from tests.fixtures.directory import DICOM, Admin
from tests.fixtures.server import Server
from tests.identity.people import FORM, HIDDEN_FIELD, STATE, Browserless, answer, shown

REDIRECT_URI = "https://app.example.com/cb"
FRAMED_BY_NOBODY = "frame-ancestors 'none'"


@pytest.fixture(scope="module")
def carol(server: Server, admin: Admin) -> Iterator[Browserless]:
    person = Browserless(server)
    person.sign_in(admin.add_person("DICOM Data Reader"))
    yield person
    person.close()


@pytest.fixture
def query(admin: Admin) -> dict[str, str]:
    """A code request of a new app, to which nobody consented yet."""
    app = admin.register()
    admin.add_redirect_uri(app.app_id, "web", REDIRECT_URI)
    return {
        "client_id": app.app_id,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": f"openid {DICOM}/user_impersonation",
        "state": STATE,
    }


def _consent_path(server: Server) -> str:
    return f"/{server.tenant_id}/oauth2/v2.0/consent"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "/\\evil.example",
        "https://evil.example",
        "/%2F/evil.example",
        "\t//evil.example",
        "/\t/evil.example",
        "/..//oauth2/authorize?x",
    ],
)
def test_next_never_leaves_the_portal(server: Server, carol: Browserless, target: str) -> None:
    with server.client() as stranger:
        form = stranger.get("/portal/signin", params={"next": target})
    assert 'name="next" value="/portal/"' in form.text
    signed_in = carol.http.get("/portal/signin", params={"next": target})
    assert signed_in.headers["location"] == "/portal/"


def test_sign_in_and_consent_pages_are_framed_by_nobody(
    server: Server, carol: Browserless, query: dict[str, str]
) -> None:
    with server.client() as stranger:
        sent = stranger.get(f"/{server.tenant_id}/oauth2/v2.0/authorize", params=query)
        sign_in = stranger.get(sent.headers["location"])
    consent = carol.authorize(**query)
    assert "Permissions requested" in consent.text
    for page in (sign_in, consent):
        policy = page.headers["content-security-policy"]
        assert FRAMED_BY_NOBODY in policy and page.headers["x-frame-options"] == "DENY"
        assert "form-action 'self' https://app.example.com;" in policy


@pytest.mark.parametrize("token", [None, "forged", "another session's"])
def test_consent_needs_this_sessions_csrf_token(
    server: Server, admin: Admin, carol: Browserless, query: dict[str, str], token: str | None
) -> None:
    fields = query | {"decision": "accept"}
    if token == "forged":
        fields["csrf_token"] = "A" * 43
    elif token:
        other = Browserless(server)
        other.sign_in(admin.add_person(None))
        fields["csrf_token"] = other.csrf_token()
        other.close()
    posted = carol.http.post(_consent_path(server), data=fields)
    assert posted.status_code == 403 and "location" not in posted.headers
    silent = answer(carol.authorize(**query, prompt="none"), REDIRECT_URI)
    assert silent["error"] == "consent_required"  # nothing was recorded


def test_cancel_is_access_denied(carol: Browserless, query: dict[str, str]) -> None:
    declined = answer(carol.consent(carol.authorize(**query), "cancel"), REDIRECT_URI)
    assert declined["error"] == "access_denied" and declined["state"] == STATE


@pytest.mark.parametrize(("states", "code"), [(["s" * 5000], 9002313), ([STATE, "again"], 90015)])
def test_consent_form_is_read_as_the_authorization_request(
    server: Server, carol: Browserless, query: dict[str, str], states: list[str], code: int
) -> None:
    """The same limits as the authorization endpoint: no value over 4096 characters (it would
    go back in the Location header), no parameter twice."""
    fields = [(k, v) for k, v in query.items() if k != "state"] + [("state", s) for s in states]
    fields += [("csrf_token", carol.csrf_token()), ("decision", "accept")]
    posted = carol.http.post(_consent_path(server), content=urlencode(fields), headers=FORM)
    shown(posted, code)


def test_consent_page_carries_no_field_of_its_own_from_the_request(
    carol: Browserless, query: dict[str, str]
) -> None:
    page = carol.authorize(**query, csrf_token="planted", decision="accept")
    names = [name for name, _ in HIDDEN_FIELD.findall(page.text)]
    assert names.count("csrf_token") == 2  # the sign-out form's and the consent form's
    assert "decision" not in names and "planted" not in page.text
    assert "code" in answer(carol.consent(page), REDIRECT_URI)


def test_form_post_page_escapes_the_state(carol: Browserless, query: dict[str, str]) -> None:
    state = "\"><script>alert(1)</script><img src=x onerror=alert(2)>'&amp;"
    page = carol.consent(carol.authorize(**query | {"state": state, "response_mode": "form_post"}))
    assert answer(page, REDIRECT_URI)["state"] == state
    assert "<script>alert" not in page.text and "<img" not in page.text
    assert FRAMED_BY_NOBODY in page.headers["content-security-policy"]
