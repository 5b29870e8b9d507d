"""``dicomite app redirect-uri add|remove``: platforms' redirect URIs, by Entra's rules."""

from __future__ import annotations

from dicomite.bootstrap import Context
from dicomite.identity import directory
from tests.cli.conftest import Cli


def uris(context: Context, app_id: str, platform: str) -> list[str]:
    with context.store.read() as session:
        app = directory.get_application_by_app_id(session, context.tenant_id, app_id)
        return directory.redirect_uris_of(app, platform)


def test_add_and_remove_on_each_platform(cli: Cli, context: Context) -> None:
    app = cli.create()
    cli.ok("app", "redirect-uri", "add", app["appId"], "https://app.example/signin-oidc")
    cli.ok(
        "app",
        "redirect-uri",
        "add",
        app["displayName"],
        "myapp://auth",
        "--platform",
        "publicClient",
    )
    added = cli.ok(
        "app", "redirect-uri", "add", app["id"], "http://localhost:3000", "--platform", "spa"
    )
    assert "Added http://localhost:3000 (spa)" in added.stdout
    assert uris(context, app["appId"], "web") == ["https://app.example/signin-oidc"]
    assert uris(context, app["appId"], "spa") == ["http://localhost:3000"]
    assert uris(context, app["appId"], "publicClient") == ["myapp://auth"]

    cli.ok(
        "app", "redirect-uri", "remove", app["appId"], "http://localhost:3000", "--platform", "spa"
    )
    assert uris(context, app["appId"], "spa") == []
    assert uris(context, app["appId"], "web") == ["https://app.example/signin-oidc"]


def test_entras_rules_and_unknown_uris_are_reported(cli: Cli, context: Context) -> None:
    app = cli.create()
    refused = cli.fails(
        "app", "redirect-uri", "add", app["appId"], "myapp://auth", "--platform", "spa"
    )
    assert "Invalid value specified for property 'spa'" in refused
    assert "other schemes are for mobile and desktop" in refused
    missing = cli.fails("app", "redirect-uri", "remove", app["appId"], "https://x.example/cb")
    assert "has no redirect URI 'https://x.example/cb'" in missing
    cli.fails("app", "redirect-uri", "add", app["appId"], "ios://x", "--platform", "ios", code=2)
    assert uris(context, app["appId"], "spa") == []
