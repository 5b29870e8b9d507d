"""The resource-manager surface on the wire: the cloud's endpoints, the deployment's one
subscription and its tenant, in ARM's shapes."""

from __future__ import annotations

import uuid

import pytest

from dicomite.arm.resources import subscription_id
from tests.arm.helpers import ARM_SCOPE, arm_get
from tests.fixtures.directory import Admin
from tests.fixtures.server import Server
from tests.graph.helpers import token


@pytest.fixture(scope="module")
def arm_token(admin: Admin, server: Server) -> str:
    app = admin.register()  # no permissions at all: listing the subscription needs none
    assert app.secret is not None
    return token(server, app.app_id, app.secret, ARM_SCOPE)


def test_cloud_endpoints_aim_az_at_this_server(server: Server) -> None:
    response = arm_get(server, "/metadata/endpoints")
    assert response.status_code == 200
    cloud = response.json()
    assert cloud["authentication"]["loginEndpoint"] == server.base_url
    assert cloud["authentication"]["audiences"] == [
        "https://management.core.windows.net/",
        "https://management.azure.com/",
    ]
    assert cloud["resourceManager"] == f"{server.base_url}/"
    assert cloud["suffixes"] == {}  # az reads the key; Dicomite serves none of those services


def test_every_request_needs_an_api_version(server: Server, arm_token: str) -> None:
    for path in ("/metadata/endpoints", "/subscriptions", "/tenants"):
        with server.client() as client:
            response = client.get(path, headers={"Authorization": f"Bearer {arm_token}"})
        assert response.status_code == 400, path
        assert response.json()["error"]["code"] == "MissingApiVersionParameter"


def test_one_subscription_stands_for_the_deployment(server: Server, arm_token: str) -> None:
    response = arm_get(server, "/subscriptions", arm_token)
    assert response.status_code == 200
    sid = str(uuid.uuid5(uuid.UUID(server.tenant_id), "subscription"))
    assert response.json() == {
        "value": [
            {
                "id": f"/subscriptions/{sid}",
                "subscriptionId": sid,
                "tenantId": server.tenant_id,
                "displayName": "Dicomite",
                "state": "Enabled",
                "managedByTenants": [],
            }
        ]
    }


def test_subscription_by_id(server: Server, arm_token: str) -> None:
    sid = subscription_id(server.tenant_id)
    found = arm_get(server, f"/subscriptions/{sid.upper()}", arm_token)
    assert found.status_code == 200
    assert found.json()["subscriptionId"] == sid
    other = str(uuid.uuid4())
    missing = arm_get(server, f"/subscriptions/{other}", arm_token)
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "code": "SubscriptionNotFound",
            "message": f"The subscription '{other}' could not be found.",
        }
    }


def test_tenants(server: Server, arm_token: str) -> None:
    response = arm_get(server, "/tenants", arm_token)
    assert response.status_code == 200
    (tenant,) = response.json()["value"]
    assert tenant["id"] == f"/tenants/{server.tenant_id}"
    assert tenant["tenantId"] == server.tenant_id
    assert tenant["defaultDomain"] == tenant["domains"][0] == "dicomite.localhost"
    assert tenant["tenantCategory"] == "Home"


def test_other_methods_are_refused(server: Server, arm_token: str) -> None:
    with server.client() as client:
        response = client.post(
            "/subscriptions",
            params={"api-version": "2022-12-01"},
            headers={"Authorization": f"Bearer {arm_token}"},
        )
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "MethodNotAllowed"
