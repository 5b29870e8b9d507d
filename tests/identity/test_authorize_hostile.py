"""Hostile requests to the authorization endpoint and the person grants of the token endpoint,
over the wire: redirect URIs that are not exactly the registered one, PKCE downgrades, replayed
and stolen codes and refresh tokens, consent that was never given, oversized and malformed
parameters, and people disabled, reset or deleted. Every refusal is Entra ID's error, at the
redirect URI once it is trusted and on a page before; never a 500."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import jwt
import pytest

from dicomite.clock import utcnow
from dicomite.identity import directory, users
from tests.fixtures.directory import DICOM, Admin, RegisteredApp
from tests.fixtures.server import Server
from tests.identity.wire import Browser, answer, assert_aadsts, error_page, post_token

IMPERSONATION = f"{DICOM}/user_impersonation"
WEB_URI = "https://app.example.com/cb"
SPA_URI = "https://spa.example.com/"


@dataclass
class Client:
    app: RegisteredApp
    redirect_uri: str

    def query(self, **params: str) -> dict[str, str]:
        """An authorization request for a code, with ``params`` on top."""
        base = {
            "client_id": self.app.app_id,
            "response_type": "code",
            "redirect_uri": self.redirect_uri,
            "scope": f"openid offline_access {IMPERSONATION}",
            "state": "s-1",
        }
        return base | params


@pytest.fixture(scope="module")
def web(admin: Admin) -> Client:
    app = admin.register()
    admin.add_redirect_uri(app.app_id, "web", WEB_URI)
    admin.add_redirect_uri(app.app_id, "web", "http://localhost/web")
    return Client(app, WEB_URI)


@pytest.fixture(scope="module")
def native(admin: Admin) -> Client:
    app = admin.register(secret=False)
    admin.add_redirect_uri(app.app_id, "publicClient", "http://localhost/cb")
    return Client(app, "http://localhost:5123/cb")


@pytest.fixture(scope="module")
def spa(admin: Admin) -> Client:
    app = admin.register(secret=False)
    admin.add_redirect_uri(app.app_id, "spa", SPA_URI)
    return Client(app, SPA_URI)


@pytest.fixture(scope="module")
def alice(
    server: Server, admin: Admin, web: Client, native: Client, spa: Client
) -> Iterator[Browser]:
    """A DICOM Data Owner, signed in, who consented to user_impersonation for the three apps."""
    person = Browser(server)
    person.sign_in(admin.add_person("DICOM Data Owner"))
    for client in (web, native, spa):
        page = person.authorize(client.query(**_challenge(_verifier())))
        assert answer(person.consent(page))["state"] == "s-1"
    yield person
    person.close()


def _verifier() -> str:
    return secrets.token_urlsafe(48)


def _challenge(verifier: str) -> dict[str, str]:
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return {"code_challenge": challenge, "code_challenge_method": "S256"}


def _code(person: Browser, client: Client, **params: str) -> str:
    got = answer(person.authorize(client.query(**params)))
    assert "code" in got, got
    return got["code"]


def _redeem(
    server: Server, client: Client, code: str, origin: str = "", **fields: str
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": client.app.app_id,
        "code": code,
        "redirect_uri": client.redirect_uri,
    }
    if client.app.secret:
        form["client_secret"] = client.app.secret
    headers = {"origin": origin} if origin else {}
    return post_token(server, {k: v for k, v in (form | fields).items() if v}, headers=headers)


def _refresh(server: Server, client: Client, token: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "client_id": client.app.app_id, "refresh_token": token}
    if client.app.secret:
        form["client_secret"] = client.app.secret
    return post_token(server, form)


def _refused(response: httpx.Response, error: str, code: int) -> None:
    """An error sent to the redirect URI, with the request's state and no code."""
    got = answer(response)
    assert got["error"] == error, got
    assert got["error_description"].startswith(f"AADSTS{code}:"), got
    assert got["state"] == "s-1"
    assert "code" not in got


# Redirect URIs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "HTTPS://app.example.com/cb",
        "https://APP.example.com/cb",
        "https://app.example.com/CB",
        "https://app.example.com/cb/",
        "https://app.example.com/cb/x",
        "https://app.example.com/cb/../cb",
        "https://app.example.com/%63b",
        "https://app.example.com/cb?x=1",
        "https://app.example.com/cb#x",
        "https://app.example.com:443/cb",
        "https://evil.example@app.example.com/cb",
        "https://app.example.com@evil.example/cb",
        "https://app.example.com/cb\t",
        " https://app.example.com/cb",
        "http://app.example.com/cb",
        "http://localhost:8080/web",  # any port only for public clients' loopback URIs
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
    ],
)
def test_redirect_uri_is_matched_exactly(alice: Browser, web: Client, uri: str) -> None:
    error_page(alice.authorize(web.query(redirect_uri=uri)), 50011)


@pytest.mark.parametrize(
    "uri",
    [
        "http://localhost:5123/cb/",
        "http://localhost:5123/CB",
        "http://localhost:5123/cb?x=1",
        "http://localhost:5123/cb#x",
        "http://user@localhost:5123/cb",
        "http://localhost:99999/cb",
        "https://localhost:5123/cb",
        "http://127.0.0.1:5123/cb",
        # Parsing (as browsers do) drops tabs and newlines: not the registered URI either.
        "http://localhost:5123/cb\t",
        "http://local\thost:5123/cb",
        "http://localhost:5123/c\nb",
        "http://localhost:5123/cb" + "\t" * 600,
    ],
)
def test_loopback_redirect_uri_differs_only_by_port(
    alice: Browser, native: Client, uri: str
) -> None:
    error_page(alice.authorize(native.query(redirect_uri=uri, **_challenge(_verifier()))), 50011)


def test_loopback_redirect_uri_on_any_port(server: Server, alice: Browser, native: Client) -> None:
    verifier = _verifier()
    code = _code(alice, native, redirect_uri="http://localhost:61000/cb", **_challenge(verifier))
    redeemed = _redeem(server, native, code, code_verifier=verifier)
    assert_aadsts(redeemed, 400, "invalid_grant", 50011)  # issued for port 61000, not 5123


# PKCE ---------------------------------------------------------------------------------------


def test_public_client_without_pkce_is_refused(alice: Browser, native: Client) -> None:
    _refused(alice.authorize(native.query()), "invalid_request", 9002325)


@pytest.mark.parametrize("method", ["plain", None])  # RFC 7636 §4.3: no method means plain
def test_plain_challenge_is_refused(alice: Browser, web: Client, method: str | None) -> None:
    params = {"code_challenge": "a" * 43} | ({"code_challenge_method": method} if method else {})
    _refused(alice.authorize(web.query(**params)), "invalid_request", 5000813)


@pytest.mark.parametrize("challenge", ["a" * 42, "a" * 44, "a" * 128, "a" * 42 + "="])
def test_challenge_must_be_a_sha256_digest(alice: Browser, web: Client, challenge: str) -> None:
    params = {"code_challenge": challenge, "code_challenge_method": "S256"}
    response = alice.authorize(web.query(**params))
    _refused(response, "invalid_request", 9002313)
    assert "code_challenge" in answer(response)["error_description"]


def test_pkce_downgrade_is_refused(server: Server, alice: Browser, web: Client) -> None:
    verifier = _verifier()
    challenged = _code(alice, web, **_challenge(verifier))
    assert_aadsts(_redeem(server, web, challenged), 400, "invalid_grant", 501481)
    wrong = _redeem(server, web, challenged, code_verifier=_verifier())
    assert_aadsts(wrong, 400, "invalid_grant", 501481)
    plain = _code(alice, web)
    with_verifier = _redeem(server, web, plain, code_verifier=verifier)
    assert_aadsts(with_verifier, 400, "invalid_grant", 501481)
    assert _redeem(server, web, challenged, code_verifier=verifier).status_code == 200


@pytest.mark.parametrize("verifier", ["abc", "a" * 42, "a" * 129, "é" * 50, "a b" * 20])
def test_verifier_must_follow_rfc7636(
    server: Server, alice: Browser, web: Client, verifier: str
) -> None:
    """RFC 7636 §4.1: 43 to 128 unreserved characters, whatever its digest."""
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    code = _code(alice, web, code_challenge=challenge, code_challenge_method="S256")
    body = assert_aadsts(
        _redeem(server, web, code, code_verifier=verifier), 400, "invalid_request", 9002313
    )
    assert "code_verifier" in body["error_description"]


# Codes and refresh tokens --------------------------------------------------------------------


def test_replayed_code_revokes_its_refresh_tokens(
    server: Server, alice: Browser, web: Client
) -> None:
    code = _code(alice, web)
    issued = _redeem(server, web, code).json()
    assert_aadsts(_redeem(server, web, code), 400, "invalid_grant", 54005)
    assert_aadsts(_refresh(server, web, issued["refresh_token"]), 400, "invalid_grant", 70000)


def test_concurrent_redemptions_issue_tokens_once(
    server: Server, alice: Browser, web: Client
) -> None:
    code = _code(alice, web)
    with ThreadPoolExecutor(6) as pool:
        statuses = sorted(
            r.status_code for r in pool.map(lambda _: _redeem(server, web, code), range(6))
        )
    assert statuses == [200, 400, 400, 400, 400, 400]


def test_code_of_one_app_is_refused_to_another(
    server: Server, admin: Admin, alice: Browser, web: Client
) -> None:
    other = Client(admin.register(), web.redirect_uri)
    admin.add_redirect_uri(other.app.app_id, "web", web.redirect_uri)
    redeemed = _redeem(server, other, _code(alice, web))
    assert_aadsts(redeemed, 400, "invalid_grant", 70000)


def test_refresh_token_reuse_revokes_the_family(
    server: Server, alice: Browser, web: Client
) -> None:
    first = _redeem(server, web, _code(alice, web)).json()["refresh_token"]
    second = _refresh(server, web, first).json()["refresh_token"]
    assert_aadsts(_refresh(server, web, first), 400, "invalid_grant", 70000)
    assert_aadsts(_refresh(server, web, second), 400, "invalid_grant", 70000)


def test_client_authentication_follows_the_platform(
    server: Server, alice: Browser, web: Client, spa: Client
) -> None:
    code = _code(alice, web)
    assert_aadsts(_redeem(server, web, code, client_secret=""), 401, "invalid_client", 7000216)
    verifier = _verifier()
    code = _code(alice, spa, **_challenge(verifier))
    no_origin = _redeem(server, spa, code, code_verifier=verifier)
    assert_aadsts(no_origin, 400, "invalid_request", 9002327)
    origin = "https://spa.example.com"
    secret = _redeem(server, spa, code, origin, code_verifier=verifier, client_secret="x")
    assert_aadsts(secret, 400, "invalid_request", 700025)


# Consent and scopes -------------------------------------------------------------------------


def test_default_scope_of_an_unconfigured_resource_is_refused(
    server: Server, admin: Admin, alice: Browser
) -> None:
    """An app with no DICOM permission must not get a DICOM token without consent: one with
    an empty ``scp`` and the person's data role in ``roles`` passes for an app-only token."""
    client = Client(admin.register(), WEB_URI)
    admin.add_redirect_uri(client.app.app_id, "web", WEB_URI)
    _refused(alice.authorize(client.query(scope=f"{DICOM}/.default")), "invalid_client", 650057)


def test_prompt_none_needs_a_session_and_consent(
    server: Server, admin: Admin, alice: Browser, web: Client
) -> None:
    stranger = Browser(server)
    _refused(stranger.authorize(web.query(prompt="none")), "login_required", 50058)
    stranger.close()
    scope = f"{DICOM}/Dicom.Read"
    _refused(alice.authorize(web.query(prompt="none", scope=scope)), "consent_required", 65001)


@pytest.mark.parametrize(
    ("scope", "error", "code"),
    [
        (f"{IMPERSONATION} https://graph.microsoft.com/User.Read", "invalid_scope", 28000),
        (f"{DICOM}/nope", "invalid_scope", 650053),
        (f"{DICOM}/.default {IMPERSONATION}", "invalid_scope", 650053),
        (" ".join(f"{DICOM}/s{i}" for i in range(60)), "invalid_scope", 650053),
        (f"{DICOM}/ûser_impersonation", "invalid_scope", 650053),
        ("openid \x00", "invalid_scope", 650053),
        ("https://evil.example/x", "invalid_resource", 500011),
        (f"{DICOM}//user_impersonation", "invalid_resource", 500011),
    ],
)
def test_scope_tricks(alice: Browser, web: Client, scope: str, error: str, code: int) -> None:
    _refused(alice.authorize(web.query(scope=scope)), error, code)


def test_admin_only_scope_needs_an_administrator(
    server: Server, alice: Browser, web: Client
) -> None:
    scope = f"{DICOM}/Dicom.ReadWrite"  # "Admin" consent type; Alice owns DICOM data only
    _refused(alice.authorize(web.query(scope=scope)), "consent_required", 65001)
    forced = web.query(scope=scope) | {"csrf_token": alice.csrf_token(), "decision": "accept"}
    posted = alice.client.post(f"/{server.tenant_id}/oauth2/v2.0/consent", data=forced)
    _refused(posted, "consent_required", 65001)


def test_nonce_is_bound_into_the_id_token(server: Server, alice: Browser, web: Client) -> None:
    issued = _redeem(server, web, _code(alice, web, nonce="n-1")).json()
    assert jwt.decode(issued["id_token"], options={"verify_signature": False})["nonce"] == "n-1"


# Parameters ---------------------------------------------------------------------------------


def test_tokens_never_travel_in_the_query(admin: Admin, alice: Browser) -> None:
    implicit = Client(admin.register(), WEB_URI)
    admin.add_redirect_uri(implicit.app.app_id, "web", WEB_URI)
    with admin.context.store.write() as session:
        app = directory.get_application_by_app_id(
            session, admin.context.tenant_id, implicit.app.app_id
        )
        directory.update_application(
            session, app, enable_access_token_issuance=True, enable_id_token_issuance=True
        )
    for response_type in ("token", "id_token", "code id_token"):
        params = {"response_type": response_type, "response_mode": "query", "nonce": "n"}
        _refused(alice.authorize(implicit.query(**params)), "invalid_request", 700053)


@pytest.mark.parametrize(
    ("params", "code", "mentions"),
    [
        ({"prompt": "evil"}, 9002313, "prompt"),
        ({"response_type": "code evil"}, 700051, "code evil"),
        ({"response_type": "token", "response_mode": "query"}, 700054, "token"),
        ({"response_mode": "evil"}, 700053, "evil"),
        ({"nonce": "n" * 513}, 9002313, "nonce"),  # kept with the code: at most 512
    ],
)
def test_bad_parameters_are_explained(
    alice: Browser, web: Client, params: dict[str, str], code: int, mentions: str
) -> None:
    response = alice.authorize(web.query(**params))
    got = answer(response)
    assert got["error_description"].startswith(f"AADSTS{code}:"), got
    assert mentions in got["error_description"].split("\r\n")[0]
    assert got["state"] == "s-1" and "code" not in got


@pytest.mark.parametrize("moment", ["999999999999", "²", "0" * 40])
def test_forged_sign_in_moment_is_no_500(alice: Browser, web: Client, moment: str) -> None:
    response = alice.authorize(web.query(dicomite_signed_in_after=moment))
    assert "code" in answer(response)


def test_oversized_and_duplicated_parameters_are_shown_not_sent(
    alice: Browser, web: Client
) -> None:
    error_page(alice.authorize(web.query(state="s" * 5000)), 9002313)
    query = "&".join(f"{k}={v}" for k, v in web.query().items()) + "&state=again"
    path = f"/{alice.server.tenant_id}/oauth2/v2.0/authorize?{query}"
    error_page(alice.client.get(path), 90015)


def test_other_tenant_is_refused(alice: Browser, web: Client) -> None:
    other = "00000000-0000-0000-0000-000000000000"
    error_page(alice.authorize(web.query(), tenant=other), 90002)


# People -------------------------------------------------------------------------------------


@pytest.fixture
def bob(server: Server, admin: Admin, web: Client) -> Iterator[tuple[Browser, str, str]]:
    """A new person signed in, their refresh token for ``web``, and their name."""
    name = admin.add_person("DICOM Data Reader")
    person = Browser(server)
    person.sign_in(name)
    consented = answer(person.consent(person.authorize(web.query())))
    token = _redeem(server, web, consented["code"]).json()["refresh_token"]
    yield person, token, name
    person.close()


def _change(admin: Admin, name: str, change: str) -> None:
    password = users.new_password("an0ther horse battery staple")
    with admin.context.store.write() as session:
        user = users.user_by_name(session, admin.context.tenant_id, name)
        if change == "disable":
            users.set_enabled(session, user, False)
        elif change == "reset":
            users.reset_password(session, user, password, utcnow())
        else:
            users.delete_user(session, user)


@pytest.mark.parametrize(
    ("change", "code"), [("disable", 50057), ("reset", 50173), ("delete", 70000)]
)
def test_person_changed_gets_no_more_tokens(
    server: Server,
    admin: Admin,
    web: Client,
    bob: tuple[Browser, str, str],
    change: str,
    code: int,
) -> None:
    person, refresh_token, name = bob
    _change(admin, name, change)
    assert_aadsts(_refresh(server, web, refresh_token), 400, "invalid_grant", code)
    _refused(person.authorize(web.query(prompt="none")), "login_required", 50058)


# Logs ---------------------------------------------------------------------------------------


def test_no_code_or_token_reaches_the_log(server: Server, alice: Browser, web: Client) -> None:
    code = _code(alice, web)
    issued = _redeem(server, web, code).json()
    refreshed = _refresh(server, web, issued["refresh_token"]).json()
    _redeem(server, web, code)  # a replay, refused
    values = [code, *(issued[k] for k in ("access_token", "refresh_token", "id_token"))]
    values += [refreshed["access_token"], refreshed["refresh_token"]]
    assert jwt.decode(issued["id_token"], options={"verify_signature": False})["aud"]
    log = server.log_text()
    assert not [value for value in values if value in log or value[:40] in log]
