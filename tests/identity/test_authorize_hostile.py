"""Hostile requests to the authorization endpoint and the person grants of the token endpoint,
over the wire: redirect URIs that are not exactly the registered one, PKCE downgrades and
malformed challenges or verifiers, racing and stolen codes, a resource nobody consented to,
scope tricks, oversized and malformed parameters, people deleted. Every refusal is Entra ID's
error, at the redirect URI once it is trusted and on a page before; never a 500. (The common
refusals are in test_person_grants.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from dicomite.identity import directory
from tests.fixtures.directory import DICOM, Admin, RegisteredApp
from tests.fixtures.server import Server
from tests.identity.people import (
    IMPERSONATION,
    STATE,
    Browserless,
    Pkce,
    answer,
    code_request,
    shown,
)
from tests.identity.wire import assert_aadsts, post_token

WEB_URI = "https://app.example.com/cb"


@dataclass
class Client:
    app: RegisteredApp
    redirect_uri: str

    def query(self, pkce: Pkce | None = None, **params: str) -> dict[str, str]:
        return code_request(self.app.app_id, self.redirect_uri, pkce) | params


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
def alice(server: Server, admin: Admin, web: Client, native: Client) -> Iterator[Browserless]:
    """A DICOM Data Owner, signed in, who consented to user_impersonation for both apps."""
    person = Browserless(server)
    person.sign_in(admin.add_person("DICOM Data Owner"))
    for client in (web, native):
        page = person.authorize(**client.query(Pkce.new()))
        assert answer(person.consent(page), client.redirect_uri)["state"] == STATE
    yield person
    person.close()


def _code(person: Browserless, client: Client, pkce: Pkce | None = None, **params: str) -> str:
    got = answer(person.authorize(**client.query(pkce, **params)), client.redirect_uri)
    assert "code" in got, got
    return got["code"]


def _redeem(server: Server, client: Client, code: str, **fields: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": client.app.app_id,
        "code": code,
        "redirect_uri": client.redirect_uri,
        "client_secret": client.app.secret or "",
    }
    return post_token(server, {k: v for k, v in (form | fields).items() if v})


def _refused(response: httpx.Response, client: Client, error: str, code: int) -> str:
    """An error sent to the redirect URI, with the request's state and no code; its message."""
    got = answer(response, client.redirect_uri)
    assert got["error"] == error, got
    assert got["error_description"].startswith(f"AADSTS{code}:"), got
    assert got["state"] == STATE and "code" not in got
    return got["error_description"].split("\r\n")[0]


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
def test_redirect_uri_is_matched_exactly(alice: Browserless, web: Client, uri: str) -> None:
    shown(alice.authorize(**web.query(redirect_uri=uri)), 50011)


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
    alice: Browserless, native: Client, uri: str
) -> None:
    shown(alice.authorize(**native.query(Pkce.new(), redirect_uri=uri)), 50011)


def test_loopback_code_is_bound_to_its_port(
    server: Server, alice: Browserless, native: Client
) -> None:
    pkce = Pkce.new()
    code = _code(alice, Client(native.app, "http://localhost:61000/cb"), pkce)
    redeemed = _redeem(server, native, code, code_verifier=pkce.verifier)
    assert_aadsts(redeemed, 400, "invalid_grant", 50011)  # issued for port 61000, not 5123


# PKCE ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["plain", None])  # RFC 7636 §4.3: no method means plain
def test_plain_challenge_is_refused(alice: Browserless, web: Client, method: str | None) -> None:
    params = {"code_challenge": "a" * 43} | ({"code_challenge_method": method} if method else {})
    _refused(alice.authorize(**web.query(**params)), web, "invalid_request", 5000813)


@pytest.mark.parametrize("challenge", ["a" * 42, "a" * 44, "a" * 128, "a" * 42 + "="])
def test_challenge_must_be_a_sha256_digest(alice: Browserless, web: Client, challenge: str) -> None:
    params = {"code_challenge": challenge, "code_challenge_method": "S256"}
    message = _refused(alice.authorize(**web.query(**params)), web, "invalid_request", 9002313)
    assert "code_challenge" in message


def test_pkce_downgrade_is_refused(server: Server, alice: Browserless, web: Client) -> None:
    pkce = Pkce.new()
    challenged = _code(alice, web, pkce)
    assert_aadsts(_redeem(server, web, challenged), 400, "invalid_grant", 501481)
    unchallenged = _code(alice, web)
    with_verifier = _redeem(server, web, unchallenged, code_verifier=pkce.verifier)
    assert_aadsts(with_verifier, 400, "invalid_grant", 501481)
    assert _redeem(server, web, challenged, code_verifier=pkce.verifier).status_code == 200


@pytest.mark.parametrize("verifier", ["abc", "a" * 42, "a" * 129, "é" * 50, "a b" * 20])
def test_verifier_must_follow_rfc7636(
    server: Server, alice: Browserless, web: Client, verifier: str
) -> None:
    """RFC 7636 §4.1: 43 to 128 unreserved characters, whatever its digest."""
    code = _code(alice, web, Pkce.of(verifier))
    redeemed = _redeem(server, web, code, code_verifier=verifier)
    body = assert_aadsts(redeemed, 400, "invalid_request", 9002313)
    assert "code_verifier" in body["error_description"]


def test_public_client_presents_no_secret(
    server: Server, alice: Browserless, native: Client
) -> None:
    pkce = Pkce.new()
    code = _code(alice, native, pkce)
    redeemed = _redeem(server, native, code, code_verifier=pkce.verifier, client_secret="x")
    assert_aadsts(redeemed, 400, "invalid_request", 700025)


# Codes --------------------------------------------------------------------------------------


def test_concurrent_redemptions_issue_tokens_once(
    server: Server, alice: Browserless, web: Client
) -> None:
    code = _code(alice, web)
    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: _redeem(server, web, code), range(6)))
    assert sorted(r.status_code for r in responses) == [200, 400, 400, 400, 400, 400]


def test_code_of_one_app_is_refused_to_another(
    server: Server, admin: Admin, alice: Browserless, web: Client
) -> None:
    other = Client(admin.register(), web.redirect_uri)
    admin.add_redirect_uri(other.app.app_id, "web", web.redirect_uri)
    redeemed = _redeem(server, other, _code(alice, web))
    assert_aadsts(redeemed, 400, "invalid_grant", 70000)


# Consent and scopes -------------------------------------------------------------------------


def test_default_scope_of_an_unconfigured_resource_is_refused(
    admin: Admin, alice: Browserless
) -> None:
    """No consent page and a DICOM token with an empty ``scp`` and the person's data role in
    ``roles``, for an app nobody gave a DICOM permission: Entra ID refuses the request."""
    client = Client(admin.register(), WEB_URI)
    admin.add_redirect_uri(client.app.app_id, "web", WEB_URI)
    for scope in (f"{DICOM}/.default", f"openid offline_access {DICOM}/.default"):
        response = alice.authorize(**client.query(scope=scope))
        _refused(response, client, "invalid_client", 650057)


def test_admin_only_scope_needs_an_administrator(
    server: Server, alice: Browserless, web: Client
) -> None:
    scope = f"{DICOM}/Dicom.ReadWrite"  # "Admin" consent type; Alice owns DICOM data only
    _refused(alice.authorize(**web.query(scope=scope)), web, "consent_required", 65001)
    forced = web.query(scope=scope) | {"csrf_token": alice.csrf_token(), "decision": "accept"}
    posted = alice.http.post(f"/{server.tenant_id}/oauth2/v2.0/consent", data=forced)
    _refused(posted, web, "consent_required", 65001)


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
def test_scope_tricks(alice: Browserless, web: Client, scope: str, error: str, code: int) -> None:
    _refused(alice.authorize(**web.query(scope=scope)), web, error, code)


# Parameters ---------------------------------------------------------------------------------


def test_tokens_never_travel_in_the_query(admin: Admin, alice: Browserless) -> None:
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
        params = {"response_type": response_type, "response_mode": "query"}
        _refused(alice.authorize(**implicit.query(**params)), implicit, "invalid_request", 700053)


@pytest.mark.parametrize(
    ("params", "error", "code", "mentions"),
    [
        ({"prompt": "evil"}, "invalid_request", 9002313, "prompt"),
        ({"response_type": "code evil"}, "unsupported_response_type", 700051, "code evil"),
        ({"response_mode": "evil"}, "invalid_request", 700053, "evil"),
        ({"nonce": "n" * 513}, "invalid_request", 9002313, "nonce"),  # kept with the code
    ],
)
def test_bad_parameters_are_explained(
    alice: Browserless, web: Client, params: dict[str, str], error: str, code: int, mentions: str
) -> None:
    message = _refused(alice.authorize(**web.query(**params)), web, error, code)
    assert mentions in message


@pytest.mark.parametrize("moment", ["999999999999", "²", "0" * 40])
def test_forged_sign_in_moment_is_no_500(alice: Browserless, web: Client, moment: str) -> None:
    _code(alice, web, dicomite_signed_in_after=moment)


def test_oversized_and_duplicated_parameters_are_shown_not_sent(
    alice: Browserless, web: Client
) -> None:
    shown(alice.authorize(**web.query(state="s" * 5000)), 9002313)
    path = f"/{alice.server.tenant_id}/oauth2/v2.0/authorize"
    twice = [*web.query().items(), ("state", "again")]
    shown(alice.http.get(path, params=twice), 90015)


def test_other_tenant_is_refused(alice: Browserless, web: Client) -> None:
    path = "/00000000-0000-0000-0000-000000000000/oauth2/v2.0/authorize"
    shown(alice.http.get(path, params=web.query()), 90002)


# People and logs ----------------------------------------------------------------------------


@pytest.mark.parametrize(("enabled", "code"), [(False, 50057), (None, 70000)])
def test_disabled_or_deleted_person_loses_session_and_tokens(
    server: Server, admin: Admin, web: Client, enabled: bool | None, code: int
) -> None:
    name = admin.add_person("DICOM Data Reader")
    person = Browserless(server)
    person.sign_in(name)
    consented = answer(person.consent(person.authorize(**web.query())), web.redirect_uri)
    refresh_token = _redeem(server, web, consented["code"]).json()["refresh_token"]
    if enabled is None:
        admin.delete_person(name)
    else:
        admin.change_person(name, enabled=enabled)
    _refused(person.authorize(**web.query(prompt="none")), web, "login_required", 50058)
    person.close()
    form = {"grant_type": "refresh_token", "client_id": web.app.app_id}
    form |= {"client_secret": web.app.secret or "", "refresh_token": refresh_token}
    assert_aadsts(post_token(server, form), 400, "invalid_grant", code)


def test_no_code_or_token_reaches_the_log(server: Server, alice: Browserless, web: Client) -> None:
    code = _code(alice, web)
    issued = _redeem(server, web, code).json()
    form = {"grant_type": "refresh_token", "client_id": web.app.app_id}
    form |= {"client_secret": web.app.secret or "", "refresh_token": issued["refresh_token"]}
    refreshed = post_token(server, form).json()
    _redeem(server, web, code)  # a replay, refused
    values = [code, *(issued[k] for k in ("access_token", "refresh_token", "id_token"))]
    values += [refreshed["access_token"], refreshed["refresh_token"]]
    log = server.log_text()
    assert not [value for value in values if value[:40] in log]
