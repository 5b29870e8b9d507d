"""``/policies/authorizationPolicy``: the tenant's user consent setting, as Graph scripts read
and change it (``permissionGrantPoliciesAssigned``), with Graph's Policy roles."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from dicomite.identity.builtin import GRAPH_RESOURCE_URI
from dicomite.store.tables import Tenant
from tests.fixtures.directory import Admin
from tests.fixtures.server import Server
from tests.graph.helpers import graph_client, token

PATH = "/policies/authorizationPolicy"
LEGACY = "ManagePermissionGrantsForSelf.microsoft-user-default-legacy"
_ASSIGNED = "permissionGrantPoliciesAssigned"


def _client_with(server: Server, admin: Admin, role: str) -> httpx.Client:
    app = admin.register(roles=(role,), api=GRAPH_RESOURCE_URI)
    assert app.secret is not None
    return graph_client(server, token(server, app.app_id, app.secret))


@pytest.fixture
def policy_writer(server: Server, admin: Admin) -> Iterator[httpx.Client]:
    """A client holding Policy.ReadWrite.Authorization; the setting is allowed again after."""
    with _client_with(server, admin, "Policy.ReadWrite.Authorization") as client:
        yield client
        client.patch(PATH, json={"defaultUserRolePermissions": {_ASSIGNED: [LEGACY]}})


def _stored(admin: Admin) -> bool:
    with admin.context.store.read() as session:
        return session.get_one(Tenant, admin.context.tenant_id).users_can_consent


def _assigned(client: httpx.Client) -> list[str]:
    response = client.get(PATH)
    assert response.status_code == 200, response.text
    return list(response.json()["defaultUserRolePermissions"][_ASSIGNED])


def test_the_policy_in_graphs_shape(policy_writer: httpx.Client) -> None:
    body = policy_writer.get(PATH).json()
    assert body["@odata.context"].endswith("$metadata#policies/authorizationPolicy/$entity")
    assert body["id"] == "authorizationPolicy"
    assert body["displayName"] == "Authorization Policy"
    assert body["defaultUserRolePermissions"][_ASSIGNED] == [LEGACY]  # Entra ID's default


def test_an_empty_list_stops_user_consent_and_the_legacy_policy_restores_it(
    policy_writer: httpx.Client, admin: Admin
) -> None:
    denied = policy_writer.patch(PATH, json={"defaultUserRolePermissions": {_ASSIGNED: []}})
    assert denied.status_code == 204 and not denied.content
    assert _assigned(policy_writer) == [] and _stored(admin) is False
    # Microsoft's own examples spell the prefix "managePermissionGrantsForSelf".
    allowed = {"defaultUserRolePermissions": {_ASSIGNED: [LEGACY[0].lower() + LEGACY[1:]]}}
    assert policy_writer.patch(PATH, json=allowed).status_code == 204
    assert _assigned(policy_writer) == [LEGACY] and _stored(admin) is True


@pytest.mark.parametrize(
    "body",
    [
        {"defaultUserRolePermissions": {_ASSIGNED: [LEGACY.replace("legacy", "low")]}},
        {"defaultUserRolePermissions": {_ASSIGNED: "none"}},
        {"defaultUserRolePermissions": {"allowedToCreateApps": True}},
        {"allowedToUseSSPR": True},
        {"noSuchProperty": 1},
    ],
)
def test_what_dicomite_does_not_model_is_refused(
    policy_writer: httpx.Client, admin: Admin, body: dict[str, object]
) -> None:
    response = policy_writer.patch(PATH, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "Request_BadRequest"
    assert _stored(admin) is True


def test_policy_read_all_reads_but_does_not_write(
    server: Server, admin: Admin, graph: httpx.Client
) -> None:
    with _client_with(server, admin, "Policy.Read.All") as reader:
        assert _assigned(reader) == [LEGACY]
        refused = reader.patch(PATH, json={"defaultUserRolePermissions": {_ASSIGNED: []}})
        assert refused.status_code == 403
    assert _stored(admin) is True
    # The bootstrap management client holds application roles, not the policy ones.
    assert graph.get(PATH).status_code == 403
