"""Generated hostile bodies for the management API: Graph error JSON, never a 5xx, and the
objects already stored stay intact."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.graph.helpers import create_app

KEYS = [
    "displayName",
    "identifierUris",
    "appRoles",
    "requiredResourceAccess",
    "api",
    "web",
    "passwordCredentials",
    "keyCredentials",
    "signInAudience",
    "description",
    "id",
    "resourceAppId",
    "resourceAccess",
    "allowedMemberTypes",
    "value",
    "isEnabled",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=80),
    st.uuids().map(str),
    st.sampled_from(["api://x", "../..", "Role", "Scope", "x" * 400]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=12)), inner, max_size=5),
    ),
    max_leaves=20,
)
FUZZ = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def assert_graph_answer(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)


@pytest.fixture(scope="module")
def victim(graph: httpx.Client) -> dict[str, Any]:
    return create_app(graph, prefix="fuzz-victim")


@FUZZ
@given(body=JSON)
def test_generated_application_bodies(
    graph: httpx.Client, victim: dict[str, Any], body: Any
) -> None:
    assert_graph_answer(graph.post("/applications", json=body))
    assert_graph_answer(graph.patch(f"/applications/{victim['id']}", json=body))
    assert_graph_answer(graph.post(f"/applications/{victim['id']}/addPassword", json=body))
    assert_graph_answer(graph.post(f"/applications/{victim['id']}/addKey", json=body))


@FUZZ
@given(body=JSON)
def test_generated_assignment_and_grant_bodies(graph: httpx.Client, body: Any) -> None:
    assert_graph_answer(graph.post("/servicePrincipals", json=body))
    assert_graph_answer(graph.post("/oauth2PermissionGrants", json=body))


@FUZZ
@given(segment=st.text(min_size=1, max_size=60).filter(lambda s: s not in (".", "..")))
def test_generated_paths_and_filters(graph: httpx.Client, segment: str) -> None:
    assert_graph_answer(graph.get(f"/applications/{quote(segment, safe='')}"))
    assert_graph_answer(graph.get("/servicePrincipals", params={"$filter": segment}))
    assert_graph_answer(graph.get("/applications", params={"$top": segment}))


def test_victim_survives(graph: httpx.Client, victim: dict[str, Any]) -> None:
    stored = graph.get(f"/applications/{victim['id']}")
    assert stored.status_code == 200
    assert stored.json()["appId"] == victim["appId"]
