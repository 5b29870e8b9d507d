"""Malformed requests get Graph's error bodies, never a 500 or a stack trace."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.graph.helpers import create_app

MISSING = "7b9f0c1e-1111-4222-8333-944445555666"


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = dict(response.json()["error"])
    assert error["code"] == code
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    return error


def test_bad_json(graph: httpx.Client) -> None:
    for body in (b"{not json", b"[1, 2]", b'{"a": NaN}', b"[" * 100_000):
        response = graph.post(
            "/applications", content=body, headers={"content-type": "application/json"}
        )
        _error(response, 400, "BadRequest")


def test_wrong_content_type_is_415(graph: httpx.Client) -> None:
    response = graph.post(
        "/applications",
        content=b"displayName=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    _error(response, 415, "UnsupportedMediaType")


def test_unknown_property(graph: httpx.Client) -> None:
    response = graph.post("/applications", json={"displayName": "x", "colour": "blue"})
    error = _error(response, 400, "Request_BadRequest")
    assert (
        error["message"]
        == "Property 'colour' does not exist on type 'microsoft.graph.application'."
    )
    nested = graph.post("/applications", json={"displayName": "x", "api": {"colour": 1}})
    assert "microsoft.graph.apiApplication" in _error(nested, 400, "Request_BadRequest")["message"]
    modelled = graph.post("/applications", json={"displayName": "x", "tags": ["a"]})
    _error(modelled, 400, "Request_BadRequest")
    annotated = graph.post(
        "/applications", json={"displayName": "x", "@odata.type": "#microsoft.graph.application"}
    )
    assert annotated.status_code == 201


def test_invalid_guid(graph: httpx.Client) -> None:
    for path in ("/applications/xyz", "/servicePrincipals/xyz", "/applications(appId='xyz')"):
        error = _error(graph.get(path), 400, "Request_BadRequest")
        assert error["message"] == "Invalid object identifier 'xyz'."


def test_unknown_ids_are_404(graph: httpx.Client) -> None:
    for path in (
        f"/applications/{MISSING}",
        f"/servicePrincipals/{MISSING}",
        f"/applications(appId='{MISSING}')",
        f"/servicePrincipals(appId='{MISSING}')",
        "/oauth2PermissionGrants/nope",
    ):
        _error(graph.get(path), 404, "Request_ResourceNotFound")
    _error(graph.delete(f"/applications/{MISSING}"), 404, "Request_ResourceNotFound")
    _error(
        graph.post(f"/applications/{MISSING}/addPassword", json={}), 404, "Request_ResourceNotFound"
    )


def test_over_long_display_name(graph: httpx.Client) -> None:
    _error(graph.post("/applications", json={"displayName": "x" * 257}), 400, "Request_BadRequest")
    _error(graph.post("/applications", json={}), 400, "Request_BadRequest")


def test_body_over_one_megabyte_is_413(graph: httpx.Client) -> None:
    body = json.dumps({"displayName": "x", "description": "y" * (1024 * 1024)}).encode()
    response = graph.post(
        "/applications", content=body, headers={"content-type": "application/json"}
    )
    _error(response, 413, "RequestEntityTooLarge")

    def chunks() -> Any:  # no Content-Length: the limit holds while streaming too
        yield b'{"displayName": "x", "description": "'
        for _ in range(300):
            yield b"y" * 4096
        yield b'"}'

    streamed = graph.post(
        "/applications", content=chunks(), headers={"content-type": "application/json"}
    )
    _error(streamed, 413, "RequestEntityTooLarge")


def test_unknown_segment_and_method(graph: httpx.Client) -> None:
    error = _error(graph.get("/bogus"), 400, "BadRequest")
    assert error["message"] == "Resource not found for the segment 'bogus'."
    app = create_app(graph)
    _error(graph.get(f"/applications/{app['id']}/bogus"), 400, "BadRequest")
    response = graph.put("/applications", json={})
    _error(response, 405, "Request_BadRequest")
    assert "POST" in response.headers["allow"]


def test_invalid_query_options(graph: httpx.Client) -> None:
    for params in (
        {"$filter": "displayName ne 'x'"},
        {"$top": "0"},
        {"$top": "abc"},
        {"$top": "0\x1f"},  # int() takes trailing whitespace, and refuses a control character
        {"$top": " 2"},
        {"$filter": "colour eq 'x'"},
        {"$select": "colour"},
        {"$skiptoken": "-1"},
    ):
        _error(graph.get("/applications", params=params), 400, "BadRequest")


@pytest.mark.parametrize(
    "value", [None, 1, True, 1.5, "x", [], [1], [{}], {}, {"a": [None]}, [[["deep"]]], "\u0000"]
)
def test_wrong_types_never_500(graph: httpx.Client, value: Any) -> None:
    app = create_app(graph)
    url = f"/applications/{app['id']}"
    fields = [
        "displayName",
        "description",
        "signInAudience",
        "identifierUris",
        "appRoles",
        "requiredResourceAccess",
        "api",
        "web",
        "spa",
        "publicClient",
        "isFallbackPublicClient",
        "keyCredentials",
        "passwordCredentials",
    ]
    for name in fields:
        assert graph.patch(url, json={name: value}).status_code < 500, name
    nested = [
        {"api": {"oauth2PermissionScopes": value}},
        {"api": {"requestedAccessTokenVersion": value}},
        {"web": {"redirectUris": value}},
        {"web": {"logoutUrl": value, "implicitGrantSettings": value}},
        {"web": {"implicitGrantSettings": {"enableIdTokenIssuance": value}}},
        {"spa": {"redirectUris": value}},
        {"publicClient": {"redirectUris": value}},
        {"appRoles": [{"allowedMemberTypes": value}]},
        {
            "appRoles": [
                {
                    "allowedMemberTypes": ["Application"],
                    "displayName": "r",
                    "id": "6b8b3b5e-0d1c-4e6a-9a45-1f2a5d0c7e99",
                    "value": value,
                }
            ]
        },
        {"requiredResourceAccess": [{"resourceAppId": value, "resourceAccess": value}]},
    ]
    for body in nested:
        assert graph.patch(url, json=body).status_code < 500, body
    actions = [
        ("addPassword", {"passwordCredential": value}),
        ("addPassword", {"passwordCredential": {"endDateTime": value, "displayName": value}}),
        ("removePassword", {"keyId": value}),
        ("addKey", {"keyCredential": value}),
        ("addKey", {"keyCredential": {"key": value}}),
        ("removeKey", {"keyId": value}),
    ]
    for action, body in actions:
        assert graph.post(f"{url}/{action}", json=body).status_code < 500, (action, body)
    for body in ({"appId": value}, {"appId": app["appId"], "tags": value}):
        assert graph.post("/servicePrincipals", json=body).status_code < 500, body
    grant = {"clientId": value, "consentType": value, "resourceId": value, "scope": value}
    assert graph.post("/oauth2PermissionGrants", json=grant).status_code < 500
