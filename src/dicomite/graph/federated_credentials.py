"""``/applications/{id}/federatedIdentityCredentials`` (also under ``applications(appId='…')``):
list, create, and get, PATCH or delete one by its id or its name (Graph's
federatedIdentityCredential resource). Changing them needs the rights that changing the app's
secrets needs (``applications.lookup_to_change_access``)."""

from __future__ import annotations

from starlette.routing import Route

from dicomite.graph import inputs, odata, serialize
from dicomite.graph.applications import KEYS, lookup, lookup_to_change_access
from dicomite.graph.auth import READ, WRITE
from dicomite.graph.endpoint import Call, Endpoints, Reply
from dicomite.identity import federated_credentials as federated
from dicomite.store.tables import Application

TYPE = "federatedIdentityCredential"
# $filter (eq) on name and subject, as Graph documents it; issuer too, which costs nothing.
_FIELDS = {
    "name": lambda c: c.name,
    "issuer": lambda c: c.issuer,
    "subject": lambda c: c.subject,
}


def routes(e: Endpoints) -> list[Route]:
    return [route for key in KEYS for route in _routes(e, f"{key}/federatedIdentityCredentials")]


def _routes(e: Endpoints, base: str) -> list[Route]:
    one = f"{base}/{{credential}}"
    return [
        e.route("GET", base, READ, list_credentials, body=False),
        e.route("POST", base, WRITE, create_credential, body=True),
        e.route("GET", one, READ, get_credential, body=False),
        e.route("PATCH", one, WRITE, update_credential, body=True),
        e.route("DELETE", one, WRITE, delete_credential, body=False),
    ]


def _context(app: Application) -> str:
    return f"applications('{app.id}')/federatedIdentityCredentials"


def list_credentials(call: Call) -> Reply:
    query = call.query()
    with call.read() as session:
        app = lookup(session, call)
        held = federated.federated_credentials_of(session, app)
        selected, next_skip = odata.page(odata.apply_filter(held, query, _FIELDS), query)
        values = [
            odata.select(serialize.federated_identity_credential(c), query, TYPE) for c in selected
        ]
        context = _context(app)
    return call.collection(context, values, next_skip)


def get_credential(call: Call) -> Reply:
    query = call.query()
    with call.read() as session:
        app = lookup(session, call)
        credential = federated.get_federated_credential(session, app, call.param("credential"))
        body = serialize.federated_identity_credential(credential)
        context = _context(app)
    return call.entity(f"{context}/$entity", odata.select(body, query, TYPE))


def create_credential(call: Call) -> Reply:
    fields = inputs.federated_credential(call.body, new=True)
    with call.write() as session:
        app = lookup_to_change_access(session, call)
        credential = federated.add_federated_credential(session, app, call.now, **fields)
        body = serialize.federated_identity_credential(credential)
        context = _context(app)
    return call.entity(f"{context}/$entity", body, status=201)


def update_credential(call: Call) -> Reply:
    fields = inputs.federated_credential(call.body, new=False)
    with call.write() as session:
        app = lookup_to_change_access(session, call)
        credential = federated.get_federated_credential(session, app, call.param("credential"))
        federated.update_federated_credential(session, app, credential, **fields)
    return Reply(204)


def delete_credential(call: Call) -> Reply:
    with call.write() as session:
        app = lookup_to_change_access(session, call)
        federated.remove_federated_credential(session, app, call.param("credential"))
    return Reply(204)
