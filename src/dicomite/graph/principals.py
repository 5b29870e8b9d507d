"""``/servicePrincipals`` and their ``appRoleAssignments`` / ``appRoleAssignedTo``.

An appRoleAssignment from a client's principal to a resource's principal is an application
permission granted by admin consent; it reaches the client's tokens as a ``roles`` value.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.routing import Route

from dicomite.graph import body as b
from dicomite.graph import inputs, odata, serialize
from dicomite.graph.auth import READ, READ_GRANTS, WRITE, WRITE_GRANTS
from dicomite.graph.endpoint import Call, Endpoints, Reply
from dicomite.graph.errors import InvalidRequest, ResourceNotFound
from dicomite.identity import consent, directory, policy, principals
from dicomite.identity.builtin import GRAPH_APP_ID
from dicomite.identity.problems import NotFound
from dicomite.store.tables import AppRoleAssignment, ServicePrincipal

KEYS = ("/servicePrincipals/{id}", "/servicePrincipals(appId='{app_id}')")
_ASSIGNMENT_READ_ONLY = [
    "id",
    "createdDateTime",
    "deletedDateTime",
    "principalDisplayName",
    "principalType",
    "resourceDisplayName",
]
_SP_OTHER = [
    "accountEnabled",
    "alternativeNames",
    "appRoleAssignmentRequired",
    "description",
    "displayName",
    "homepage",
    "loginUrl",
    "logoutUrl",
    "notes",
    "notificationEmailAddresses",
    "preferredSingleSignOnMode",
    "replyUrls",
    "tags",
    "servicePrincipalType",
]


def routes(e: Endpoints) -> list[Route]:
    listing = [
        e.route("GET", "/servicePrincipals", READ, list_principals, body=False),
        e.route("POST", "/servicePrincipals", WRITE, create_principal, body=True),
    ]
    return listing + [route for key in KEYS for route in _entity_routes(e, key)]


def _entity_routes(e: Endpoints, key: str) -> list[Route]:
    routes = [
        e.route("GET", key, READ, get_principal, body=False),
        e.route("DELETE", key, WRITE, delete_principal, body=False),
    ]
    for relation in ("appRoleAssignments", "appRoleAssignedTo"):
        path = f"{key}/{relation}"
        routes += [
            e.route("GET", path, READ_GRANTS, list_assignments, body=False),
            e.route("POST", path, WRITE_GRANTS, create_assignment, body=True),
            e.route("GET", path + "/{assignment}", READ_GRANTS, get_assignment, body=False),
            e.route("DELETE", path + "/{assignment}", WRITE_GRANTS, delete_assignment, body=False),
        ]
    return routes


def lookup(session: Session, call: Call) -> ServicePrincipal:
    if not call.has_param("app_id"):
        return principals.get_service_principal(
            session, call.tenant_id, inputs.guid(call.param("id"))
        )
    app_id = inputs.guid(call.param("app_id"))
    sp = principals.service_principal_for_app(session, call.tenant_id, app_id)
    if sp is None:
        raise ResourceNotFound(f"Service principal with appId '{app_id}' does not exist.")
    return sp


def render(session: Session, sp: ServicePrincipal) -> dict[str, Any]:
    return serialize.service_principal(sp, principals.service_principal_names(session, sp))


def list_principals(call: Call) -> Reply:
    query = call.query()
    with call.read() as session:
        fields = {
            "id": lambda sp: sp.id,
            "appId": lambda sp: sp.app_id,
            "displayName": lambda sp: sp.display_name,
            "servicePrincipalNames": lambda sp: principals.service_principal_names(session, sp),
        }
        sps = principals.list_service_principals(session, call.tenant_id)
        selected, next_skip = odata.page(odata.apply_filter(sps, query, fields), query)
        values = [odata.select(render(session, sp), query, "servicePrincipal") for sp in selected]
    return call.collection("servicePrincipals", values, next_skip)


def get_principal(call: Call) -> Reply:
    query = call.query()
    with call.read() as session:
        body = render(session, lookup(session, call))
    return call.entity("servicePrincipals/$entity", odata.select(body, query, "servicePrincipal"))


def create_principal(call: Call) -> Reply:
    b.check_properties(call.body, "servicePrincipal", ["appId"], _SP_OTHER)
    app_id = inputs.guid(b.text(call.body, "appId", required=True) or "")
    with call.write() as session:
        app = directory.get_application_by_app_id(session, call.tenant_id, app_id)
        sp = principals.create_service_principal(session, app, call.now)
        body = render(session, sp)
    return call.entity("servicePrincipals/$entity", body, status=201)


def delete_principal(call: Call) -> Reply:
    with call.write() as session:
        sp = lookup(session, call)
        policy.require_access_change(session, call.actor, sp)
        principals.delete_service_principal(session, sp)
    return Reply(204)


# --- appRoleAssignments (sp as principal) and appRoleAssignedTo (sp as resource) -------------


def _relation(call: Call) -> str:
    path = call.request.url.path
    return "appRoleAssignedTo" if "/appRoleAssignedTo" in path else "appRoleAssignments"


def _assignments(session: Session, call: Call, sp: ServicePrincipal) -> list[AppRoleAssignment]:
    if _relation(call) == "appRoleAssignedTo":
        return list(consent.assignments_to(session, sp))
    return list(consent.assignments_of(session, sp))


def _names(session: Session, call: Call) -> dict[str, str]:
    return {
        sp.id: sp.display_name for sp in principals.list_service_principals(session, call.tenant_id)
    }


def _fragment(sp: ServicePrincipal, call: Call, entity: bool) -> str:
    return f"servicePrincipals('{sp.id}')/{_relation(call)}" + ("/$entity" if entity else "")


def list_assignments(call: Call) -> Reply:
    query = call.query()
    with call.read() as session:
        sp = lookup(session, call)
        selected, next_skip = odata.page(_assignments(session, call, sp), query)
        names = _names(session, call)
        values = [serialize.app_role_assignment(a, names) for a in selected]
    return call.collection(_fragment(sp, call, False), values, next_skip)


def get_assignment(call: Call) -> Reply:
    wanted = call.param("assignment")
    with call.read() as session:
        sp = lookup(session, call)
        found = [a for a in _assignments(session, call, sp) if a.id == wanted]
        if not found:
            raise ResourceNotFound(f"appRoleAssignment '{wanted[:64]}' does not exist.")
        body = serialize.app_role_assignment(found[0], _names(session, call))
    return call.entity(_fragment(sp, call, True), body)


def create_assignment(call: Call) -> Reply:
    supported = ["principalId", "resourceId", "appRoleId"]
    b.check_properties(call.body, "appRoleAssignment", supported, _ASSIGNMENT_READ_ONLY)
    ids = {name: inputs.guid(b.text(call.body, name, required=True) or "") for name in supported}
    with call.write() as session:
        sp = lookup(session, call)
        side = "resourceId" if _relation(call) == "appRoleAssignedTo" else "principalId"
        if ids[side] != sp.id:
            raise InvalidRequest(f"{side} must be the id of the service principal in the URL.")
        principal = principals.get_service_principal(session, call.tenant_id, ids["principalId"])
        resource = principals.get_service_principal(session, call.tenant_id, ids["resourceId"])
        granting = _graph_role_values(resource, ids["appRoleId"])
        policy.require_access_change(session, call.actor, principal, granting)
        try:
            assignment = consent.assign_app_role(
                session, principal, resource, ids["appRoleId"], call.now, existing_ok=False
            )
        except NotFound as problem:  # Graph: an unknown appRoleId is a bad request, not a 404
            raise InvalidRequest(problem.message) from None
        body = serialize.app_role_assignment(assignment, _names(session, call))
    return call.entity(_fragment(sp, call, True), body, status=201)


def _graph_role_values(resource: ServicePrincipal, app_role_id: str) -> list[str]:
    """The Microsoft Graph role an assignment would grant (none on other APIs)."""
    if resource.app_id != GRAPH_APP_ID:
        return []
    return [r["value"] for r in resource.app_roles if r["id"] == app_role_id]


def delete_assignment(call: Call) -> Reply:
    as_resource = _relation(call) == "appRoleAssignedTo"
    with call.write() as session:
        sp = lookup(session, call)
        assignment = consent.assignment_on(
            session, sp, call.param("assignment"), as_resource=as_resource
        )
        holder = principals.get_service_principal(session, call.tenant_id, assignment.principal_id)
        policy.require_access_change(session, call.actor, holder)
        consent.remove_assignment(session, sp, assignment.id, as_resource=as_resource)
    return Reply(204)
