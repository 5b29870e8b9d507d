"""/applications/{id}/federatedIdentityCredentials on the real server: Graph's shapes, its
addressing by id or name, and its refusals with Graph's codes and messages."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.graph.helpers import create_app

GITHUB = "https://token.actions.githubusercontent.com"
OBJECT_TYPE = "objectType: Microsoft.Online.DirectoryServices.Application"
_VALUE = "InvalidFederatedIdentityCredentialValue"


def _body(name: str = "deploy", subject: str = "repo:org/repo:environment:prod", **more: Any):  # type: ignore[no-untyped-def]
    return {"name": name, "issuer": GITHUB, "subject": subject, **more}


def _add(graph: httpx.Client, app: dict[str, Any], **fields: Any) -> httpx.Response:
    return graph.post(f"/applications/{app['id']}/federatedIdentityCredentials", json=fields)


def _added(graph: httpx.Client, app: dict[str, Any], **fields: Any) -> dict[str, Any]:
    response = _add(graph, app, **fields)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    return str(error["message"])


def _names(graph: httpx.Client, app: dict[str, Any]) -> list[str]:
    listed = graph.get(f"/applications/{app['id']}/federatedIdentityCredentials").json()
    return [c["name"] for c in listed["value"]]


def test_create_returns_graphs_shape_with_the_default_audience(graph: httpx.Client) -> None:
    app = create_app(graph)
    created = _added(graph, app, **_body(description="CI deployments"))
    context = f"$metadata#applications('{app['id']}')/federatedIdentityCredentials/$entity"
    assert created.pop("@odata.context").endswith(context)
    assert set(created) == {"id", "name", "issuer", "subject", "description", "audiences"}
    assert created["audiences"] == ["api://AzureADTokenExchange"]
    assert (created["name"], created["issuer"], created["description"]) == (
        "deploy",
        GITHUB,
        "CI deployments",
    )


def test_list_and_get_by_id_or_name_under_either_key(graph: httpx.Client) -> None:
    app = create_app(graph)
    first = _added(graph, app, **_body("first", "repo:org/repo:ref:refs/heads/main"))
    _added(graph, app, **_body("second", "repo:org/repo:pull_request", audiences=["custom"]))
    for base in (f"/applications/{app['id']}", f"/applications(appId='{app['appId']}')"):
        listed = graph.get(f"{base}/federatedIdentityCredentials").json()
        assert listed["@odata.context"].endswith(
            f"applications('{app['id']}')/federatedIdentityCredentials"
        )
        assert [c["name"] for c in listed["value"]] == ["first", "second"]
        for key in (first["id"], "first", "FIRST"):
            got = graph.get(f"{base}/federatedIdentityCredentials/{key}")
            assert got.status_code == 200, got.text
            assert got.json()["id"] == first["id"]
    missing = graph.get(f"/applications/{app['id']}/federatedIdentityCredentials/nothing")
    _error(missing, 404, "Request_ResourceNotFound")


def test_filter_and_select(graph: httpx.Client) -> None:
    app = create_app(graph)
    _added(graph, app, **_body("one", "subject-one"))
    _added(graph, app, **_body("two", "subject-two"))
    url = f"/applications/{app['id']}/federatedIdentityCredentials"
    found = graph.get(url, params={"$filter": "subject eq 'subject-two'", "$select": "name"})
    assert found.json()["value"] == [{"name": "two"}]


def test_patch_changes_what_is_given_and_delete_removes(graph: httpx.Client) -> None:
    app = create_app(graph)
    created = _added(graph, app, **_body(description="old"))
    url = f"/applications/{app['id']}/federatedIdentityCredentials/{created['id']}"
    # Graph's own example repeats the (unchanged) name in the PATCH body.
    patched = graph.patch(url, json={"name": "deploy", "subject": "repo:org/repo:environment:qa"})
    assert patched.status_code == 204, patched.text
    got = graph.get(url).json()
    assert (got["subject"], got["description"]) == ("repo:org/repo:environment:qa", "old")
    cleared = graph.patch(url, json={"description": None, "audiences": ["other-audience"]})
    assert cleared.status_code == 204, cleared.text
    assert graph.get(url).json()["description"] is None
    assert graph.get(url).json()["audiences"] == ["other-audience"]

    by_name = f"/applications(appId='{app['appId']}')/federatedIdentityCredentials/deploy"
    assert graph.delete(by_name).status_code == 204
    _error(graph.get(url), 404, "Request_ResourceNotFound")
    _error(graph.delete(url), 404, "Request_ResourceNotFound")


def test_a_twenty_first_credential_is_refused(graph: httpx.Client) -> None:
    app = create_app(graph)
    for number in range(20):
        _added(graph, app, **_body(f"credential-{number}", f"subject-{number}"))
    refused = _add(graph, app, **_body("credential-20", "subject-20"))
    message = _error(refused, 400, "Request_BadRequest")
    assert "at most 20 federated identity credentials" in message
    assert len(_names(graph, app)) == 20


@pytest.mark.parametrize(
    ("fields", "prop", "words"),
    [
        ({"name": "n" * 121}, "Name", "is invalid"),
        ({"name": "ab"}, "Name", "is invalid"),
        ({"name": "has space"}, "Name", "is invalid"),
        ({"name": "-leading-dash"}, "Name", "is invalid"),
        ({"subject": "s" * 601}, "Subject", "at most 600 characters"),
        ({"issuer": "https://issuer.example/" + "i" * 580}, "Issuer", "at most 600 characters"),
        ({"description": "d" * 601}, "Description", "at most 600 characters"),
        ({"audiences": ["one", "two"]}, "Audiences", "exactly 1 audience"),
        ({"audiences": []}, "Audiences", "exactly 1 audience"),
        ({"audiences": ["a" * 601]}, "Audiences", "at most 600 characters"),
        ({"issuer": "http://issuer.example"}, "Issuer", "https URL"),
    ],
)
def test_values_breaking_the_rules_are_refused(
    graph: httpx.Client, fields: dict[str, Any], prop: str, words: str
) -> None:
    app = create_app(graph)
    message = _error(_add(graph, app, **{**_body(), **fields}), 400, _VALUE)
    assert words in message
    assert f"paramName: FederatedIdentityCredential.{prop}," in message
    assert message.endswith(OBJECT_TYPE)
    assert _names(graph, app) == []


def test_names_are_unique_in_the_app_ignoring_case(graph: httpx.Client) -> None:
    app = create_app(graph)
    _added(graph, app, **_body("main", "subject-a"))
    for name in ("main", "MAIN"):
        message = _error(
            _add(graph, app, **_body(name, "subject-b")),
            409,
            "Request_MultipleObjectsWithSameKeyValue",
        )
        assert message == f"FederatedIdentityCredential with name {name} already exists."
    other = create_app(graph)
    _added(graph, other, **_body("main", "subject-a"))  # names are unique per application


def test_issuer_and_subject_are_unique_together_in_the_app(graph: httpx.Client) -> None:
    app = create_app(graph)
    _added(graph, app, **_body("first", "repo:org/repo:environment:prod"))
    message = _error(
        _add(graph, app, **_body("second", "repo:org/repo:environment:prod")), 400, _VALUE
    )
    assert message.startswith(
        "The combination of issuer and subject must be unique for the application. Issuer "
        f"{GITHUB} and Subject: repo:org/repo:environment:prod already exist. "
        "paramName: FederatedIdentityCredential.Subject, "
    )
    _added(graph, app, **_body("second", "repo:org/repo:environment:PROD"))  # exact match
    second = f"/applications/{app['id']}/federatedIdentityCredentials/second"
    clash = graph.patch(second, json={"subject": "repo:org/repo:environment:prod"})
    _error(clash, 400, _VALUE)


def test_the_name_cannot_be_changed(graph: httpx.Client) -> None:
    app = create_app(graph)
    created = _added(graph, app, **_body())
    url = f"/applications/{app['id']}/federatedIdentityCredentials/{created['id']}"
    message = _error(graph.patch(url, json={"name": "renamed"}), 400, _VALUE)
    assert "cannot be changed" in message and "paramValue: renamed," in message
    assert graph.get(url).json()["name"] == "deploy"


@pytest.mark.parametrize(
    "body",
    [
        {"issuer": GITHUB, "subject": "s"},
        {"name": "no-subject", "issuer": GITHUB},
        {**_body(), "audiences": "api://AzureADTokenExchange"},
        {**_body(), "unknown": 1},
        {**_body(), "name": 7},
    ],
)
def test_malformed_bodies_are_refused(graph: httpx.Client, body: dict[str, Any]) -> None:
    app = create_app(graph)
    _error(_add(graph, app, **body), 400, "Request_BadRequest")
    assert _names(graph, app) == []


def test_deleting_the_app_deletes_its_credentials(graph: httpx.Client) -> None:
    app = create_app(graph)
    created = _added(graph, app, **_body())
    assert graph.delete(f"/applications/{app['id']}").status_code == 204
    url = f"/applications/{app['id']}/federatedIdentityCredentials/{created['id']}"
    _error(graph.get(url), 404, "Request_ResourceNotFound")
