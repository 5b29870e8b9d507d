"""Application platforms (web, spa, publicClient) and Entra ID's redirect-URI rules
(learn.microsoft.com/entra/identity-platform/reply-url), through the validation functions and
``directory.update_application``, which Graph, the portal and the CLI share."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from dicomite.bootstrap import Context
from dicomite.clock import utcnow
from dicomite.identity import directory
from dicomite.identity.problems import InvalidInput, NotFound
from dicomite.identity.validation import (
    check_logout_url,
    check_redirect_uri,
    normalize_redirect_uris,
)

APP_ID = str(uuid.uuid4())
LONG = "https://app.example/" + "a" * 236  # 256 characters


@pytest.mark.parametrize(
    ("platform", "uri"),
    [
        ("web", "https://app.example/signin-oidc"),
        ("web", "https://app.example:8443/cb?tenant=1"),
        ("web", "http://localhost:5000/cb"),
        ("web", "http://127.0.0.1/cb"),
        ("web", LONG),
        ("spa", "https://viewer.example/"),
        ("spa", "http://localhost:3000"),
        ("publicClient", "http://localhost"),
        ("publicClient", "https://login.microsoftonline.com/common/oauth2/nativeclient"),
        ("publicClient", "myapp://auth"),
        ("publicClient", f"ms-appx-web://microsoft.aad.brokerplugin/{APP_ID}"),
        ("publicClient", f"msal{APP_ID}://auth"),
        ("publicClient", "com.example.app:/oauth2redirect"),
    ],
)
def test_redirect_uris_entra_allows(platform: str, uri: str) -> None:
    assert check_redirect_uri(uri, platform) == uri


@pytest.mark.parametrize(
    ("platform", "uri", "reason"),
    [
        ("web", "/signin-oidc", "must be an absolute URI"),
        ("web", "app.example/cb", "must be an absolute URI"),
        ("web", "https://[::1/cb", "must be an absolute URI"),
        ("web", "https://app.example/cb x", "must be an absolute URI"),
        ("web", "https://app.example/cb#top", "fragment"),
        ("web", "https://*.app.example/cb", "wildcard"),
        ("spa", "https://app.example/*", "wildcard"),
        ("web", "https://app.example/a,b", "characters"),
        ("web", "https://user@app.example/cb", "user information"),
        ("web", "http://app.example/cb", "http is allowed only for localhost"),
        ("spa", "http://192.168.0.2/cb", "http is allowed only for localhost"),
        ("publicClient", "http://app.example/cb", "http is allowed only for localhost"),
        ("web", "myapp://auth", "other schemes are for mobile and desktop"),
        ("spa", "ms-appx-web://microsoft.aad.brokerplugin/x", "other schemes"),
        ("publicClient", "javascript://alert(1)", "characters"),
        ("publicClient", "javascript://x/%0aalert", "must not use the 'javascript' scheme"),
        ("publicClient", "data://text/html", "must not use the 'data' scheme"),
        ("web", "https:///cb", "must name a host"),
    ],
)
def test_redirect_uris_entra_refuses(platform: str, uri: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_redirect_uri(uri, platform)
    message = raised.value.message
    assert message.startswith(
        f"Invalid value specified for property '{platform}' of resource 'Application'."
    )
    assert reason in message


@pytest.mark.parametrize("value", [LONG + "b", "", None, 7, ["https://app.example"]])
def test_redirect_uris_longer_than_256_characters_or_not_text_are_refused(value: Any) -> None:
    with pytest.raises(InvalidInput):
        check_redirect_uri(value, "web")


def test_a_platform_keeps_each_uri_once_in_its_first_place() -> None:
    uris = ["https://b.example/cb", "https://a.example/cb", "https://b.example/cb"]
    assert normalize_redirect_uris(uris, "spa") == ["https://b.example/cb", "https://a.example/cb"]
    # Paths are case-sensitive (the browser keeps cookies per path), so these differ.
    assert len(normalize_redirect_uris(["https://a.example/CB", "https://a.example/cb"])) == 2


def test_a_platform_holds_at_most_256_uris() -> None:
    uris = [f"https://app.example/{n}" for n in range(257)]
    assert len(normalize_redirect_uris(uris[:256], "web")) == 256
    with pytest.raises(InvalidInput, match="at most 256 redirect URIs"):
        normalize_redirect_uris(uris, "web")
    with pytest.raises(InvalidInput, match="must be an array"):
        normalize_redirect_uris("https://app.example/", "web")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("https://app.example/signout-oidc", "https://app.example/signout-oidc"),
        ("http://localhost:5000/signout", "http://localhost:5000/signout"),
    ],
)
def test_logout_urls_entra_allows(value: str | None, expected: str | None) -> None:
    assert check_logout_url(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "http://app.example/signout",
        "http://127.0.0.1/signout",
        "myapp://signout",
        "https://app.example/signout#x",
        "https://*.app.example/signout",
        "/signout",
        LONG + "b",
        5,
    ],
)
def test_logout_urls_entra_refuses(value: Any) -> None:
    with pytest.raises(InvalidInput):
        check_logout_url(value)


# --- through directory.update_application, on both stores -------------------------------------


def _app(context: Context, session: Any, **fields: Any) -> Any:
    return directory.create_application(session, context.tenant_id, utcnow(), "Platforms", **fields)


def test_a_new_application_has_graphs_platform_defaults(context: Context) -> None:
    with context.store.write() as session:
        app = _app(context, session)
        assert [directory.redirect_uris_of(app, p) for p in ("web", "spa", "publicClient")] == [
            [],
            [],
            [],
        ]
        assert app.logout_url is None
        assert not app.enable_access_token_issuance and not app.enable_id_token_issuance
        assert app.is_fallback_public_client is False


def test_update_sets_only_the_platform_fields_given(context: Context) -> None:
    with context.store.write() as session:
        app = _app(
            context,
            session,
            redirect_uris=["https://app.example/signin-oidc"],
            spa_redirect_uris=["http://localhost:3000"],
            public_client_redirect_uris=["myapp://auth"],
            logout_url="https://app.example/signout-oidc",
            enable_id_token_issuance=True,
            is_fallback_public_client=True,
        )
        directory.update_application(session, app, enable_access_token_issuance=True)
        assert app.redirect_uris == ["https://app.example/signin-oidc"]
        assert app.spa_redirect_uris == ["http://localhost:3000"]
        assert app.public_client_redirect_uris == ["myapp://auth"]
        assert app.logout_url == "https://app.example/signout-oidc"
        assert (app.enable_access_token_issuance, app.enable_id_token_issuance) == (True, True)
        assert app.is_fallback_public_client is True
        directory.update_application(session, app, logout_url=None, spa_redirect_uris=[])
        assert app.logout_url is None and app.spa_redirect_uris == []
        assert app.redirect_uris == ["https://app.example/signin-oidc"]


def test_the_256_limit_counts_all_platforms_together(context: Context) -> None:
    web = [f"https://app.example/{n}" for n in range(200)]
    spa = [f"https://spa.example/{n}" for n in range(56)]
    with context.store.write() as session:
        app = _app(context, session, redirect_uris=web, spa_redirect_uris=spa)
        with pytest.raises(InvalidInput, match="at most 256 redirect URIs"):
            directory.add_redirect_uri(session, app, "publicClient", "myapp://auth")


@pytest.mark.parametrize(
    "field",
    ["enable_access_token_issuance", "enable_id_token_issuance", "is_fallback_public_client"],
)
def test_flags_must_be_booleans(context: Context, field: str) -> None:
    with context.store.write() as session:
        app = _app(context, session)
        with pytest.raises(InvalidInput, match="must be true or false"):
            directory.update_application(session, app, **{field: "true"})


def test_add_and_remove_one_redirect_uri(context: Context) -> None:
    with context.store.write() as session:
        app = _app(context, session, spa_redirect_uris=["https://viewer.example/"])
        directory.add_redirect_uri(session, app, "spa", "http://localhost:3000")
        directory.add_redirect_uri(session, app, "spa", "http://localhost:3000")
        assert app.spa_redirect_uris == ["https://viewer.example/", "http://localhost:3000"]
        directory.remove_redirect_uri(session, app, "spa", "https://viewer.example/")
        assert app.spa_redirect_uris == ["http://localhost:3000"]
        with pytest.raises(NotFound):
            directory.remove_redirect_uri(session, app, "web", "http://localhost:3000")
        with pytest.raises(InvalidInput, match="must be one of web, spa, publicClient"):
            directory.add_redirect_uri(session, app, "ios", "myapp://auth")
