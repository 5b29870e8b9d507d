"""``/oauth2PermissionGrants``: delegated permissions consented for all principals (admin
consent, ``consentType: AllPrincipals``) or for one person (``Principal``, with the user's id
as ``principalId``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.routing import Route

from dicomite.graph import body as b
from dicomite.graph import inputs, odata, serialize
from dicomite.graph.auth import READ_GRANTS, WRITE_GRANTS
from dicomite.graph.endpoint import Call, Endpoints, Reply
from dicomite.graph.errors import InvalidRequest
from dicomite.identity import consent, policy, principals, users
from dicomite.store.tables import OAuth2PermissionGrant

_FIELDS = {
    "clientId": lambda g: g.client_id,
    "resourceId": lambda g: g.resource_id,
    "consentType": lambda g: g.consent_type,
    "principalId": lambda g: g.principal_id,
}
_READ_ONLY = ["id", "startTime", "expiryTime"]


def routes(e: Endpoints) -> list[Route]:
    one = "/oauth2PermissionGrants/{id}"
    return [
        e.route("GET", "/oauth2PermissionGrants", READ_GRANTS, list_grants, body=False),
        e.route("POST", "/oauth2PermissionGrants", WRITE_GRANTS, create_grant, body=True),
        e.route("GET", one, READ_GRANTS, get_grant, body=False),
        e.route("PATCH", one, WRITE_GRANTS, update_grant, body=True),
        e.route("DELETE", one, WRITE_GRANTS, delete_grant, body=False),
    ]


def list_grants(call: Call) -> Reply:
    query = call.query()
    with call.read() as session:
        grants = odata.apply_filter(consent.list_grants(session, call.tenant_id), query, _FIELDS)
        selected, next_skip = odata.page(grants, query)
        values = [serialize.oauth2_permission_grant(g) for g in selected]
    return call.collection("oauth2PermissionGrants", values, next_skip)


def get_grant(call: Call) -> Reply:
    with call.read() as session:
        grant = consent.get_grant(session, call.tenant_id, call.param("id"))
        body = serialize.oauth2_permission_grant(grant)
    return call.entity("oauth2PermissionGrants/$entity", body)


def _scopes(value: str | None) -> list[str]:
    return (value or "").split()


def create_grant(call: Call) -> Reply:
    supported = ["clientId", "consentType", "principalId", "resourceId", "scope"]
    b.check_properties(call.body, "oauth2PermissionGrant", supported, _READ_ONLY)
    principal_id = _principal_id(call.body)
    client_id = inputs.guid(b.text(call.body, "clientId", required=True) or "")
    resource_id = inputs.guid(b.text(call.body, "resourceId", required=True) or "")
    scopes = _scopes(b.text(call.body, "scope"))
    with call.write() as session:
        client = principals.get_service_principal(session, call.tenant_id, client_id)
        resource = principals.get_service_principal(session, call.tenant_id, resource_id)
        policy.require_access_change(session, call.actor, client)
        if principal_id is not None:
            users.get_user(session, call.tenant_id, principal_id)  # NotFound: 404
        grant = consent.grant_delegated(session, client, resource, scopes, principal_id)
        body = serialize.oauth2_permission_grant(grant)
    return call.entity("oauth2PermissionGrants/$entity", body, status=201)


def _principal_id(body: dict[str, Any]) -> str | None:
    """The person a ``Principal`` grant is for; None for ``AllPrincipals`` (admin consent)."""
    consent_type = b.text(body, "consentType", required=True)
    principal_id = b.text(body, "principalId")
    if consent_type == consent.ALL_PRINCIPALS:
        if principal_id is not None:
            raise InvalidRequest("principalId must be null when consentType is 'AllPrincipals'.")
        return None
    if consent_type != consent.PRINCIPAL:
        raise InvalidRequest("consentType must be 'AllPrincipals' or 'Principal'.")
    if principal_id is None:
        raise InvalidRequest("principalId is required when consentType is 'Principal'.")
    return inputs.guid(principal_id)


def update_grant(call: Call) -> Reply:
    b.check_properties(call.body, "oauth2PermissionGrant", ["scope"], _READ_ONLY)
    scopes = _scopes(b.text(call.body, "scope"))
    with call.write() as session:
        grant = _grant_to_change(session, call)
        consent.set_grant_scopes(session, grant, scopes)
    return Reply(204)


def delete_grant(call: Call) -> Reply:
    with call.write() as session:
        consent.delete_grant(session, _grant_to_change(session, call))
    return Reply(204)


def _grant_to_change(session: Session, call: Call) -> OAuth2PermissionGrant:
    """The grant in the URL, when the caller may change the consent given to its client."""
    grant = consent.get_grant(session, call.tenant_id, call.param("id"))
    client = principals.get_service_principal(session, call.tenant_id, grant.client_id)
    policy.require_access_change(session, call.actor, client)
    return grant
