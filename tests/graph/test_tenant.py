"""/organization and /auditLogs/signIns."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fixtures.server import Server
from tests.graph.helpers import (
    GRAPH_SCOPE,
    add_password,
    create_app,
    create_principal,
    eventually,
    request_token,
)


def test_organization(graph: httpx.Client, server: Server) -> None:
    body = graph.get("/organization").json()
    assert body["@odata.context"].endswith("$metadata#organization")
    [tenant] = body["value"]
    assert tenant["id"] == server.tenant_id and tenant["tenantType"] == "AAD"
    [domain] = tenant["verifiedDomains"]
    assert domain["isDefault"] and domain["isInitial"] and domain["type"] == "Managed"
    assert graph.get(f"/organization/{server.tenant_id}").json()["id"] == server.tenant_id


def test_sign_ins_show_success_and_failure(graph: httpx.Client, server: Server) -> None:
    app = create_app(graph)
    sp = create_principal(graph, app)
    secret = add_password(graph, app)
    assert (
        request_token(server, app["appId"], "wrong8Q~" + "x" * 32, GRAPH_SCOPE).status_code == 401
    )
    assert request_token(server, app["appId"], secret["secretText"], GRAPH_SCOPE).status_code == 200

    def both() -> list[dict[str, Any]] | None:
        found = graph.get("/auditLogs/signIns", params={"$filter": f"appId eq '{app['appId']}'"})
        rows = list(found.json()["value"])
        return rows if len(rows) == 2 else None

    rows = eventually(both)
    success = next(r for r in rows if r["status"]["errorCode"] == 0)
    failure = next(r for r in rows if r["status"]["errorCode"] != 0)
    assert failure["status"]["errorCode"] == 7000215 and failure["status"]["failureReason"]
    assert success["servicePrincipalId"] == sp["id"]
    assert success["clientCredentialType"] == "clientSecret"
    assert success["servicePrincipalCredentialKeyId"] == secret["keyId"]
    assert success["resourceId"] == "00000003-0000-0000-c000-000000000000"
    assert success["signInEventTypes"] == ["servicePrincipal"] and success["isInteractive"] is False
    assert secret["secretText"] not in graph.get("/auditLogs/signIns").text

    first = graph.get(
        "/auditLogs/signIns", params={"$filter": f"appId eq '{app['appId']}'", "$top": "1"}
    )
    assert len(first.json()["value"]) == 1
    assert len(graph.get(first.json()["@odata.nextLink"]).json()["value"]) == 1
    refused = graph.get("/auditLogs/signIns", params={"$filter": "displayName eq 'x'"})
    assert refused.status_code == 400
