"""/applications platforms in Graph's shapes (application resource type: ``web``, ``spa``,
``publicClient``, ``isFallbackPublicClient``), end to end on the real server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.graph.helpers import create_app

PLATFORMS = {
    "web": {
        "redirectUris": ["https://app.example/signin-oidc", "http://localhost:5000/signin-oidc"],
        "logoutUrl": "https://app.example/signout-oidc",
        "implicitGrantSettings": {
            "enableAccessTokenIssuance": False,
            "enableIdTokenIssuance": True,
        },
    },
    "spa": {"redirectUris": ["https://viewer.example/", "http://localhost:3000"]},
    "publicClient": {"redirectUris": ["myapp://auth", "http://localhost"]},
    "isFallbackPublicClient": True,
}


def _get(graph: httpx.Client, app: dict[str, Any]) -> dict[str, Any]:
    response = graph.get(f"/applications/{app['id']}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _patch(graph: httpx.Client, app: dict[str, Any], body: dict[str, Any]) -> httpx.Response:
    return graph.patch(f"/applications/{app['id']}", json=body)


def _error(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "Request_BadRequest"
    return str(response.json()["error"]["message"])


def test_a_new_application_has_graphs_platform_defaults(graph: httpx.Client) -> None:
    app = _get(graph, create_app(graph))
    assert app["web"] == {
        "homePageUrl": None,
        "logoutUrl": None,
        "redirectUris": [],
        "implicitGrantSettings": {
            "enableAccessTokenIssuance": False,
            "enableIdTokenIssuance": False,
        },
    }
    assert app["spa"] == {"redirectUris": []} and app["publicClient"] == {"redirectUris": []}
    assert app["isFallbackPublicClient"] is False


def test_create_with_every_platform_returns_and_stores_them(graph: httpx.Client) -> None:
    created = create_app(graph, **PLATFORMS)
    for app in (created, _get(graph, created)):
        assert {name: app[name] for name in PLATFORMS} == {
            **PLATFORMS,
            "web": {**PLATFORMS["web"], "homePageUrl": None},
        }


def test_patch_of_a_nested_property_changes_only_that_property(graph: httpx.Client) -> None:
    app = create_app(graph, **PLATFORMS)
    grants = {"implicitGrantSettings": {"enableAccessTokenIssuance": True}}
    assert _patch(graph, app, {"web": grants}).status_code == 204
    assert (
        _patch(graph, app, {"spa": {"redirectUris": ["https://viewer.example/"]}}).status_code
        == 204
    )
    got = _get(graph, app)
    assert got["web"]["implicitGrantSettings"] == {
        "enableAccessTokenIssuance": True,
        "enableIdTokenIssuance": True,
    }
    assert got["web"]["redirectUris"] == PLATFORMS["web"]["redirectUris"]
    assert got["web"]["logoutUrl"] == PLATFORMS["web"]["logoutUrl"]
    assert got["spa"]["redirectUris"] == ["https://viewer.example/"]
    assert got["publicClient"] == PLATFORMS["publicClient"]
    assert got["isFallbackPublicClient"] is True


def test_a_get_response_sent_back_as_patch_changes_nothing(graph: httpx.Client) -> None:
    app = create_app(graph, **PLATFORMS)
    before = _get(graph, app)
    body = {name: before[name] for name in ("web", "spa", "publicClient", "isFallbackPublicClient")}
    assert _patch(graph, app, body).status_code == 204
    assert _get(graph, app) == before


def test_null_clears_the_logout_url_and_the_fallback_flag(graph: httpx.Client) -> None:
    app = create_app(graph, **PLATFORMS)
    body = {"web": {"logoutUrl": None}, "isFallbackPublicClient": None}
    assert _patch(graph, app, body).status_code == 204
    got = _get(graph, app)
    assert got["web"]["logoutUrl"] is None and got["isFallbackPublicClient"] is False


def test_duplicates_within_a_platform_are_kept_once(graph: httpx.Client) -> None:
    app = create_app(graph)
    uris = ["http://localhost:3000", "https://viewer.example/", "http://localhost:3000"]
    assert _patch(graph, app, {"spa": {"redirectUris": uris}}).status_code == 204
    assert _get(graph, app)["spa"]["redirectUris"] == uris[:2]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"spa": {"redirectUris": ["http://viewer.example/"]}}, "http is allowed only"),
        ({"web": {"redirectUris": ["myapp://auth"]}}, "other schemes"),
        ({"publicClient": {"redirectUris": ["https://*.app.example/"]}}, "wildcard"),
        ({"web": {"redirectUris": ["https://app.example/#x"]}}, "fragment"),
        ({"web": {"logoutUrl": "http://app.example/signout"}}, "logout URL"),
    ],
)
def test_entras_redirect_uri_rules_give_graphs_error(
    graph: httpx.Client, body: dict[str, Any], reason: str
) -> None:
    app = create_app(graph)
    message = _error(_patch(graph, app, body))
    platform = next(iter(body))
    assert message.startswith(
        f"Invalid value specified for property '{platform}' of resource 'Application'."
    )
    assert reason in message
    assert _error(graph.post("/applications", json={"displayName": "refused", **body}))


def test_at_most_256_redirect_uris_across_platforms(graph: httpx.Client) -> None:
    app = create_app(graph, web={"redirectUris": [f"https://a.example/{n}" for n in range(200)]})
    spa = {"redirectUris": [f"https://b.example/{n}" for n in range(57)]}
    assert "at most 256 redirect URIs" in _error(_patch(graph, app, {"spa": spa}))
    spa["redirectUris"].pop()
    assert _patch(graph, app, {"spa": spa}).status_code == 204


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"isFallbackPublicClient": "true"}, "'Edm.Boolean' of property 'isFallbackPublicClient'"),
        ({"web": {"implicitGrantSettings": {"enableIdTokenIssuance": 1}}}, "'Edm.Boolean'"),
        ({"web": {"implicitGrantSettings": True}}, "microsoft.graph.implicitGrantSettings"),
        ({"web": {"logoutUrl": ["https://app.example/"]}}, "'logoutUrl'"),
        ({"spa": ["https://viewer.example/"]}, "microsoft.graph.spaApplication"),
        ({"spa": {"redirectUris": "https://viewer.example/"}}, "'spa.redirectUris' must be"),
        ({"publicClient": {"redirectUris": [1]}}, "'publicClient.redirectUris' must be"),
        ({"publicClient": {"homePageUrl": "x"}}, "homePageUrl"),
    ],
)
def test_wrong_types_get_graphs_bad_request(
    graph: httpx.Client, body: dict[str, Any], reason: str
) -> None:
    app = create_app(graph)
    assert reason in _error(_patch(graph, app, body))
