"""identifierUris follow Entra ID's rule: a new value names the application itself, the tenant or
one of its domains (issue 13, item 5). Otherwise one app squats ``api://{another appId}``, blocks
its owner and gets the tokens asked for that URI."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from dicomite.bootstrap import open_context
from dicomite.identity import directory, principals
from dicomite.settings import Settings
from tests.fixtures.server import Server
from tests.graph.helpers import (
    add_password,
    claims,
    create_app,
    create_principal,
    request_token,
)

DOMAIN = "dicomite.localhost"  # the tenant's domain (Settings.tenant_domain's default)
APP = "{app}"  # the application's own appId
TENANT = "{tenant}"
OTHER = "{other}"  # another application's appId


def _patch(graph: httpx.Client, app: dict[str, Any], uris: list[str]) -> httpx.Response:
    return graph.patch(f"/applications/{app['id']}", json={"identifierUris": uris})


def _refused(response: httpx.Response, uri: str) -> None:
    """Graph's body for HostNameNotOnVerifiedDomain."""
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "HostNameNotOnVerifiedDomain"
    assert error["message"] == (
        "Values of identifierUris property must use a verified domain of the organization or "
        f"its subdomain: '{uri}'"
    )
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}


def test_an_app_cannot_take_another_apps_default_uri(graph: httpx.Client, server: Server) -> None:
    owner, squatter = create_app(graph, prefix="owner"), create_app(graph, prefix="squatter")
    squatter_sp = create_principal(graph, squatter)
    uri = f"api://{owner['appId']}"

    _refused(_patch(graph, squatter, [uri]), uri)

    assert graph.get(f"/applications/{squatter['id']}").json()["identifierUris"] == []
    names = graph.get(f"/servicePrincipals/{squatter_sp['id']}").json()["servicePrincipalNames"]
    assert uri not in names
    assert _patch(graph, owner, [uri]).status_code == 204  # the owner is not blocked
    create_principal(graph, owner)
    client = create_app(graph, prefix="client")
    create_principal(graph, client)
    secret = add_password(graph, client)["secretText"]
    issued = request_token(server, client["appId"], secret, f"{uri}/.default")
    assert issued.status_code == 200, issued.text
    assert claims(issued.json()["access_token"])["aud"] in (uri, owner["appId"])


def _fill(pattern: str, app: dict[str, Any], other: dict[str, Any], server: Server) -> str:
    return pattern.format(app=app["appId"], tenant=server.tenant_id, other=other["appId"])


@pytest.mark.parametrize(
    "pattern",
    [
        f"api://{APP}",
        f"api://{TENANT}/{APP}",
        f"api://{TENANT}/studies",
        f"api://{TENANT}/studies/v1",
        f"api://studies/{APP}",
        f"api://{OTHER}/{APP}",
        f"api://{DOMAIN}/studies",
        f"api://studies.{DOMAIN}/read",
        f"https://{DOMAIN}/studies",
        f"https://studies.{DOMAIN}",
        f"https://studies.{DOMAIN}/v1",
        f"https://STUDIES.{DOMAIN.upper()}/v2",  # the host in any case
    ],
)
def test_uris_naming_the_app_the_tenant_or_its_domain_are_allowed(
    graph: httpx.Client, server: Server, pattern: str
) -> None:
    app, other = create_app(graph), create_app(graph)
    uri = _fill(pattern, app, other, server)
    assert _patch(graph, app, [uri]).status_code == 204
    assert graph.get(f"/applications/{app['id']}").json()["identifierUris"] == [uri]


@pytest.mark.parametrize(
    "pattern",
    [
        f"api://{OTHER}",
        f"api://{TENANT}",
        f"api://{TENANT}/{OTHER}",
        f"api://{OTHER}/studies",
        f"api://{APP}/studies",
        "api://studies",
        "api://studies/v1",
        f"api://{DOMAIN}",
        "api://example.com/studies",
        "https://example.com/studies",
        f"https://{DOMAIN}.example.com/studies",
        f"https://not{DOMAIN}/studies",
        f"https://someone@{DOMAIN}/studies",
        f"https://{DOMAIN}/studies?x=1",
        f"https://*.{DOMAIN}/studies",
        f"http://{DOMAIN}/studies",
        "https://graph.microsoft.com",
        "https://dicom.healthcareapis.azure.com",
    ],
)
def test_other_uris_are_refused_with_graphs_error(
    graph: httpx.Client, server: Server, pattern: str
) -> None:
    app, other = create_app(graph), create_app(graph)
    uri = _fill(pattern, app, other, server)
    _refused(_patch(graph, app, [uri]), uri)
    assert graph.get(f"/applications/{app['id']}").json()["identifierUris"] == []


def test_create_applies_the_rule(graph: httpx.Client, server: Server) -> None:
    other = create_app(graph)
    uri = f"api://{other['appId']}"
    refused = graph.post("/applications", json={"displayName": "squat", "identifierUris": [uri]})
    _refused(refused, uri)
    allowed = f"api://{server.tenant_id}/created-{uuid.uuid4().hex[:8]}"
    created = create_app(graph, identifierUris=[allowed])
    assert created["identifierUris"] == [allowed]


def test_uris_already_stored_stay_valid(graph: httpx.Client, server: Server) -> None:
    """A URI stored before the rule (written to the store as an old version did) is kept
    through later updates; only values added now are checked."""
    app = create_app(graph, prefix="legacy")
    create_principal(graph, app)
    legacy = f"api://legacy-{uuid.uuid4().hex[:8]}"
    context = open_context(Settings(data_dir=server.data_dir, tenant_id=server.tenant_id))
    try:
        with context.store.write() as session:
            stored = directory.get_application(session, server.tenant_id, app["id"])
            stored.identifier_uris = [legacy]
            sp = principals.service_principal_for_app(session, server.tenant_id, app["appId"])
            assert sp is not None
            principals.sync_service_principal(session, sp, stored)
    finally:
        context.store.dispose()

    own = f"api://{app['appId']}"
    assert _patch(graph, app, [legacy, own]).status_code == 204
    renamed = graph.patch(f"/applications/{app['id']}", json={"displayName": "still legacy"})
    assert renamed.status_code == 204
    assert graph.get(f"/applications/{app['id']}").json()["identifierUris"] == [legacy, own]
    dropped = _patch(graph, app, [own])
    assert dropped.status_code == 204
    _refused(_patch(graph, app, [own, legacy]), legacy)  # once removed, it is a new value again


def test_built_in_apis_keep_their_uris(graph: httpx.Client) -> None:
    for app_id, uri in (
        ("00000003-0000-0000-c000-000000000000", "https://graph.microsoft.com"),
        ("4f6778d8-5aef-43dc-a1ff-b073724b9495", "https://dicom.healthcareapis.azure.com"),
    ):
        sp = graph.get(f"/servicePrincipals(appId='{app_id}')").json()
        assert uri in sp["servicePrincipalNames"]


def test_an_unparsable_uri_is_a_bad_request_not_a_500(graph: httpx.Client) -> None:
    app = create_app(graph)
    for body in (
        {"identifierUris": ["https://[dicomite.localhost/x"]},
        {"web": {"redirectUris": ["https://[::1/cb"]}},
    ):
        response = graph.patch(f"/applications/{app['id']}", json=body)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "Request_BadRequest"
        assert "must be an absolute" in response.json()["error"]["message"]


# Entra ID compares identifier URIs without regard to case (and a trailing slash), so a second
# application cannot hold API://{tenant}/SVC beside api://{tenant}/svc.
@pytest.mark.parametrize(
    "variant",
    [
        "API://{tenant}/SVC{name}",
        "api://{upper_tenant}/svc{name}",
        "https://DICOMITE.LOCALHOST/svc{name}",
        "api://{tenant}/svc{name}/",
    ],
)
def test_an_identifier_uri_differing_only_in_case_or_a_trailing_slash_is_taken(
    graph: httpx.Client, server: Server, variant: str
) -> None:
    name = uuid.uuid4().hex[:8]
    owner, squatter = create_app(graph, prefix="owner"), create_app(graph, prefix="squatter")
    scheme_host = "https://dicomite.localhost" if variant.startswith("https") else "api://{tenant}"
    original = f"{scheme_host}/svc{name}".format(tenant=server.tenant_id)
    taken = graph.patch(f"/applications/{owner['id']}", json={"identifierUris": [original]})
    assert taken.status_code == 204, taken.text
    uri = variant.format(tenant=server.tenant_id, upper_tenant=server.tenant_id.upper(), name=name)
    response = graph.patch(f"/applications/{squatter['id']}", json={"identifierUris": [uri]})
    assert response.status_code == 400, f"{uri} was accepted beside {original}"
    assert "already exists" in response.json()["error"]["message"]
