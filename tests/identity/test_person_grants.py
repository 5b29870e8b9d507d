"""The sign-in flows' refusals and edge cases, each answered as Entra ID answers, from the wire:
``prompt=none``, code replay, PKCE, redirect URIs, implicit issuance, and a person disabled or
whose password changed."""

from __future__ import annotations

from collections.abc import Iterator

import jwt
import pytest

from tests.fixtures.directory import Admin, RegisteredApp
from tests.fixtures.server import Server, free_port
from tests.identity.people import (
    IMPERSONATION,
    Browserless,
    Pkce,
    answer,
    code_request,
    redeem,
    token_form,
)
from tests.identity.wire import DESCRIPTION, assert_aadsts


@pytest.fixture(scope="module")
def web_app(admin: Admin) -> tuple[RegisteredApp, str]:
    """A confidential web app, admin-consented for everyone to user_impersonation."""
    app = admin.register()
    redirect_uri = f"https://localhost:{free_port()}/signin-oidc"
    admin.add_redirect_uri(app.app_id, "web", redirect_uri)
    admin.grant_delegated(app.app_id, "user_impersonation")
    return app, redirect_uri


@pytest.fixture(scope="module")
def spa(admin: Admin) -> tuple[RegisteredApp, str]:
    app = admin.register(secret=False)
    redirect_uri = f"https://localhost:{free_port()}/"
    admin.add_redirect_uri(app.app_id, "spa", redirect_uri)
    admin.grant_delegated(app.app_id, "user_impersonation")
    return app, redirect_uri


@pytest.fixture
def person(admin: Admin) -> str:
    return admin.add_person("DICOM Data Reader")


@pytest.fixture
def browser(server: Server) -> Iterator[Browserless]:
    browserless = Browserless(server)
    yield browserless
    browserless.close()


def error_of(params: dict[str, str], error: str, code: int) -> None:
    assert params["error"] == error, params
    match = DESCRIPTION.match(params["error_description"])
    assert match and int(match["code"]) == code, params


def signed_in_code(
    browser: Browserless, person: str, app: RegisteredApp, redirect_uri: str, pkce: Pkce | None
) -> str:
    browser.sign_in(person)
    params = answer(browser.authorize(**code_request(app.app_id, redirect_uri, pkce)), redirect_uri)
    assert params["state"] == "st@te with spaces & symbols"
    return params["code"]


def test_prompt_none_without_a_session_is_login_required(
    browser: Browserless, web_app: tuple[RegisteredApp, str]
) -> None:
    app, redirect_uri = web_app
    response = browser.authorize(**code_request(app.app_id, redirect_uri, None, prompt="none"))
    params = answer(response, redirect_uri)
    error_of(params, "login_required", 50058)
    assert params["state"] == "st@te with spaces & symbols"


def test_prompt_none_with_a_session_answers_at_once(
    browser: Browserless, person: str, web_app: tuple[RegisteredApp, str]
) -> None:
    app, redirect_uri = web_app
    browser.sign_in(person)
    response = browser.authorize(**code_request(app.app_id, redirect_uri, None, prompt="none"))
    assert set(answer(response, redirect_uri)) == {"code", "state"}


def test_prompt_none_without_consent_is_consent_required(
    browser: Browserless, person: str, admin: Admin
) -> None:
    app = admin.register()
    redirect_uri = f"https://localhost:{free_port()}/cb"
    admin.add_redirect_uri(app.app_id, "web", redirect_uri)
    browser.sign_in(person)
    response = browser.authorize(**code_request(app.app_id, redirect_uri, None, prompt="none"))
    error_of(answer(response, redirect_uri), "consent_required", 65001)


def test_a_code_is_redeemed_once_and_its_replay_revokes_the_refresh_token(
    server: Server, browser: Browserless, person: str, web_app: tuple[RegisteredApp, str]
) -> None:
    app, redirect_uri = web_app
    code = signed_in_code(browser, person, app, redirect_uri, None)
    form = token_form(app.app_id, code, redirect_uri, client_secret=app.secret)
    first = redeem(server, **form)
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert jwt.decode(tokens["id_token"], options={"verify_signature": False})["nonce"] == (
        "n-0S6_WzA2Mj"
    )
    assert_aadsts(redeem(server, **form), 400, "invalid_grant", 54005)
    refresh = redeem(
        server,
        grant_type="refresh_token",
        client_id=app.app_id,
        client_secret=app.secret or "",
        refresh_token=tokens["refresh_token"],
    )
    assert_aadsts(refresh, 400, "invalid_grant", 70000)


def test_a_refresh_token_is_single_use(
    server: Server, browser: Browserless, person: str, web_app: tuple[RegisteredApp, str]
) -> None:
    app, redirect_uri = web_app
    code = signed_in_code(browser, person, app, redirect_uri, None)
    tokens = redeem(server, **token_form(app.app_id, code, redirect_uri, client_secret=app.secret))
    old = tokens.json()["refresh_token"]
    form = {
        "grant_type": "refresh_token",
        "client_id": app.app_id,
        "client_secret": app.secret or "",
        "refresh_token": old,
        "scope": IMPERSONATION,
    }
    renewed = redeem(server, **form)
    assert renewed.status_code == 200, renewed.text
    newer = renewed.json()["refresh_token"]
    assert newer != old
    assert_aadsts(redeem(server, **form), 400, "invalid_grant", 70000)
    # The replay revoked the family: the newest token is gone too.
    assert_aadsts(redeem(server, **{**form, "refresh_token": newer}), 400, "invalid_grant", 70000)


def test_a_wrong_code_verifier_is_501481(
    server: Server, browser: Browserless, person: str, spa: tuple[RegisteredApp, str]
) -> None:
    app, redirect_uri = spa
    pkce = Pkce.new()
    code = signed_in_code(browser, person, app, redirect_uri, pkce)
    origin = {"Origin": redirect_uri.rstrip("/")}
    wrong = token_form(app.app_id, code, redirect_uri, code_verifier=Pkce.new().verifier)
    with server.client() as client:
        path = f"/{server.tenant_id}/oauth2/v2.0/token"
        refused = client.post(
            path, data={"grant_type": "authorization_code", **wrong}, headers=origin
        )
        assert_aadsts(refused, 400, "invalid_grant", 501481)
        right = token_form(app.app_id, code, redirect_uri, code_verifier=pkce.verifier)
        accepted = client.post(
            path, data={"grant_type": "authorization_code", **right}, headers=origin
        )
    assert accepted.status_code == 200, accepted.text


def test_a_spa_code_needs_the_origin_header(
    server: Server, browser: Browserless, person: str, spa: tuple[RegisteredApp, str]
) -> None:
    app, redirect_uri = spa
    pkce = Pkce.new()
    code = signed_in_code(browser, person, app, redirect_uri, pkce)
    form = token_form(app.app_id, code, redirect_uri, code_verifier=pkce.verifier)
    assert_aadsts(redeem(server, **form), 400, "invalid_request", 9002327)


def test_a_spa_must_send_a_code_challenge(
    browser: Browserless, person: str, spa: tuple[RegisteredApp, str]
) -> None:
    app, redirect_uri = spa
    browser.sign_in(person)
    params = answer(browser.authorize(**code_request(app.app_id, redirect_uri, None)), redirect_uri)
    error_of(params, "invalid_request", 9002325)


def test_a_web_app_cannot_redeem_without_its_secret(
    server: Server, browser: Browserless, person: str, web_app: tuple[RegisteredApp, str]
) -> None:
    """Entra ID's answer to a confidential client without a credential in a person's grant
    (7000216 is the client-credentials grant's)."""
    app, redirect_uri = web_app
    code = signed_in_code(browser, person, app, redirect_uri, None)
    assert_aadsts(
        redeem(server, **token_form(app.app_id, code, redirect_uri)), 401, "invalid_client", 7000218
    )


def test_an_unregistered_redirect_uri_gets_a_page_not_a_redirect(
    browser: Browserless, web_app: tuple[RegisteredApp, str]
) -> None:
    app, redirect_uri = web_app
    for wrong in (redirect_uri + "/", redirect_uri.upper(), "https://evil.example/signin-oidc"):
        response = browser.authorize(**code_request(app.app_id, wrong, None))
        assert response.status_code == 400, response.text
        assert "location" not in response.headers
        assert "AADSTS50011" in response.text
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_the_token_endpoint_checks_the_redirect_uri(
    server: Server, browser: Browserless, person: str, web_app: tuple[RegisteredApp, str]
) -> None:
    app, redirect_uri = web_app
    code = signed_in_code(browser, person, app, redirect_uri, None)
    form = token_form(app.app_id, code, redirect_uri + "x", client_secret=app.secret)
    assert_aadsts(redeem(server, **form), 400, "invalid_grant", 50011)


def test_implicit_tokens_need_the_app_to_enable_them(
    browser: Browserless, person: str, web_app: tuple[RegisteredApp, str]
) -> None:
    app, redirect_uri = web_app
    browser.sign_in(person)
    for response_type in ("token", "id_token", "id_token token"):
        request = code_request(app.app_id, redirect_uri, None, response_type=response_type)
        params = answer(browser.authorize(**request), redirect_uri)
        error_of(params, "unsupported_response_type", 700054)


def test_a_disabled_persons_refresh_is_50057(
    server: Server,
    browser: Browserless,
    admin: Admin,
    person: str,
    web_app: tuple[RegisteredApp, str],
) -> None:
    app, redirect_uri = web_app
    code = signed_in_code(browser, person, app, redirect_uri, None)
    tokens = redeem(server, **token_form(app.app_id, code, redirect_uri, client_secret=app.secret))
    admin.change_person(person, enabled=False)
    refresh = redeem(
        server,
        grant_type="refresh_token",
        client_id=app.app_id,
        client_secret=app.secret or "",
        refresh_token=tokens.json()["refresh_token"],
    )
    assert_aadsts(refresh, 400, "invalid_grant", 50057)


def test_a_password_reset_revokes_refresh_tokens_50173(
    server: Server,
    browser: Browserless,
    admin: Admin,
    person: str,
    web_app: tuple[RegisteredApp, str],
) -> None:
    app, redirect_uri = web_app
    code = signed_in_code(browser, person, app, redirect_uri, None)
    tokens = redeem(server, **token_form(app.app_id, code, redirect_uri, client_secret=app.secret))
    admin.change_person(person, password="An0ther long passphrase!")
    refresh = redeem(
        server,
        grant_type="refresh_token",
        client_id=app.app_id,
        client_secret=app.secret or "",
        refresh_token=tokens.json()["refresh_token"],
    )
    assert_aadsts(refresh, 400, "invalid_grant", 50173)
