"""``/organization`` (the one tenant) and ``/auditLogs/signIns`` (the sign-in log).

Graph v1.0 lists only interactive user sign-ins; Dicomite has only service-principal sign-ins
and lists them at v1.0 in the shape Graph's beta endpoint uses for them.
"""

from __future__ import annotations

from starlette.routing import Route

from dicomite.graph import serialize
from dicomite.graph.auth import READ_AUDIT
from dicomite.graph.endpoint import Call, Endpoints, Reply
from dicomite.graph.errors import BadRequest
from dicomite.identity import principals
from dicomite.identity.signins import list_sign_ins
from dicomite.store.tables import Tenant

MAX_SIGN_INS = 1000


def routes(e: Endpoints) -> list[Route]:
    return [
        e.route("GET", "/organization", READ_AUDIT, list_organization, body=False),
        e.route("GET", "/organization/{id}", READ_AUDIT, get_organization, body=False),
        e.route("GET", "/auditLogs/signIns", READ_AUDIT, list_signins, body=False),
    ]


def list_organization(call: Call) -> Reply:
    with call.read() as session:
        body = serialize.organization(session.get_one(Tenant, call.tenant_id))
    return call.collection("organization", [body])


def get_organization(call: Call) -> Reply:
    if call.param("id").lower() != call.tenant_id:
        raise BadRequest(f"Invalid object identifier '{call.param('id')[:100]}'.")
    with call.read() as session:
        body = serialize.organization(session.get_one(Tenant, call.tenant_id))
    return call.entity("organization/$entity", body)


def list_signins(call: Call) -> Reply:
    query = call.query(max_top=MAX_SIGN_INS)
    wanted = query.filter
    if wanted is not None and (wanted.field, wanted.op) != ("appId", "eq"):
        raise BadRequest("Invalid filter clause: only \"appId eq '...'\" is supported here.")
    with call.read() as session:
        rows = list_sign_ins(
            session,
            call.tenant_id,
            app_id=wanted.value if wanted else None,
            limit=query.top + 1,
            offset=query.skip,
        )
        app_ids = {
            sp.id: sp.app_id for sp in principals.list_service_principals(session, call.tenant_id)
        }
    values = [serialize.sign_in(row, app_ids) for row in rows[: query.top]]
    next_skip = query.skip + query.top if len(rows) > query.top else None
    return call.collection("auditLogs/signIns", values, next_skip)
