"""``/applications``: registrations and their credentials (Graph application resource type)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session
from starlette.routing import Route

from dicomite.graph import inputs, odata, serialize
from dicomite.graph.auth import READ, WRITE
from dicomite.graph.endpoint import Call, Endpoints, Reply
from dicomite.graph.errors import InvalidRequest
from dicomite.identity import credentials, directory, policy
from dicomite.store.tables import Application, Tenant

KEYS = ("/applications/{id}", "/applications(appId='{app_id}')")
_FIELDS = {
    "id": lambda a: a.id,
    "appId": lambda a: a.app_id,
    "displayName": lambda a: a.display_name,
    "identifierUris": lambda a: a.identifier_uris,
}


def routes(e: Endpoints) -> list[Route]:
    listing = [
        e.route("GET", "/applications", READ, list_applications, body=False),
        e.route("POST", "/applications", WRITE, create_application, body=True),
    ]
    return listing + [route for key in KEYS for route in _entity_routes(e, key)]


def _entity_routes(e: Endpoints, key: str) -> list[Route]:
    return [
        e.route("GET", key, READ, get_application, body=False),
        e.route("PATCH", key, WRITE, update_application, body=True),
        e.route("DELETE", key, WRITE, delete_application, body=False),
        e.route("POST", f"{key}/addPassword", WRITE, add_password, body=True),
        e.route("POST", f"{key}/removePassword", WRITE, remove_password, body=True),
        e.route("POST", f"{key}/addKey", WRITE, add_key, body=True),
        e.route("POST", f"{key}/removeKey", WRITE, remove_key, body=True),
    ]


def lookup(session: Session, call: Call) -> Application:
    if call.has_param("app_id"):
        app_id = inputs.guid(call.param("app_id"))
        return directory.get_application_by_app_id(session, call.tenant_id, app_id)
    return directory.get_application(session, call.tenant_id, inputs.guid(call.param("id")))


def lookup_to_change_access(session: Session, call: Call) -> Application:
    """The application, when the caller may change its credentials, permissions or consent
    (``policy.require_access_change``: a privileged app needs every Graph role it holds)."""
    app = lookup(session, call)
    policy.require_access_change(session, call.actor, app)
    return app


def render(session: Session, app: Application, *, with_keys: bool = False) -> dict[str, Any]:
    tenant = session.get_one(Tenant, app.tenant_id)  # a foreign key
    certificates = credentials.list_certificates(session, app)
    body = serialize.application(
        app, tenant, credentials.list_passwords(session, app), certificates
    )
    if with_keys:  # Graph returns ``key`` only when keyCredentials is $select-ed on one object
        for item, certificate in zip(body["keyCredentials"], certificates, strict=True):
            item["key"] = serialize.certificate_key(certificate)
    return body


def list_applications(call: Call) -> Reply:
    query = call.query()
    with call.read() as session:
        apps = odata.apply_filter(
            directory.list_applications(session, call.tenant_id), query, _FIELDS
        )
        selected, next_skip = odata.page(apps, query)
        values = [odata.select(render(session, a), query, "application") for a in selected]
    return call.collection("applications", values, next_skip)


def get_application(call: Call) -> Reply:
    query = call.query()
    with call.read() as session:
        app = lookup(session, call)
        body = render(session, app, with_keys="keyCredentials" in query.select)
    return call.entity("applications/$entity", odata.select(body, query, "application"))


def create_application(call: Call) -> Reply:
    given = inputs.application(call.body)
    fields = dict(given.fields)
    with call.write() as session:
        name = fields.pop("display_name", None)
        app = directory.create_application(session, call.tenant_id, call.now, name, **fields)
        if given.keys:
            _set_keys(session, app, given.keys)
        body = render(session, app)
    return call.entity("applications/$entity", body, status=201)


def update_application(call: Call) -> Reply:
    given = inputs.application(call.body)
    changes_access = given.keys is not None or "required_resource_access" in given.fields
    with call.write() as session:
        app = lookup_to_change_access(session, call) if changes_access else lookup(session, call)
        if given.fields:
            directory.update_application(session, app, **given.fields)
        if given.keys is not None:
            _set_keys(session, app, given.keys)
    return Reply(204)


def _set_keys(session: Session, app: Application, specs: Sequence[inputs.KeySpec]) -> None:
    """``PATCH keyCredentials`` replaces the collection: entries without ``key`` keep the
    certificate of that ``keyId``; entries with one add a certificate."""
    existing = {c.key_id for c in credentials.list_certificates(session, app)}
    keep = {s.key_id for s in specs if s.key is None and s.key_id is not None}
    unknown = keep - existing
    if unknown:
        raise InvalidRequest(f"No key credential with keyId '{sorted(unknown)[0]}' exists.")
    for key_id in existing - keep:
        credentials.remove_certificate(session, app, key_id)
    for spec in specs:
        if spec.key is not None:
            credentials.add_certificate(
                session, app, spec.key, display_name=spec.display_name, key_id=spec.key_id
            )


def delete_application(call: Call) -> Reply:
    with call.write() as session:
        directory.delete_application(session, lookup_to_change_access(session, call))
    return Reply(204)


def add_password(call: Call) -> Reply:
    given = inputs.add_password(call.body)
    protection = call.services.context.protection
    with call.write() as session:
        app = lookup_to_change_access(session, call)
        new = credentials.add_password(
            session,
            app,
            protection,
            call.now,
            display_name=given.display_name,
            start=given.start,
            end=given.end,
        )
        body = serialize.password_credential(new.credential, new.secret_text)
    return call.entity("microsoft.graph.passwordCredential", body)


def remove_password(call: Call) -> Reply:
    key_id = inputs.key_id(call.body, "removePasswordRequestBody")
    with call.write() as session:
        credentials.remove_password(session, lookup_to_change_access(session, call), key_id)
    return Reply(204)


def add_key(call: Call) -> Reply:
    """``proof`` (a JWT signed by an existing certificate) is accepted but not required: the
    caller already holds Application.ReadWrite.All, which lets it PATCH keyCredentials anyway."""
    spec = inputs.add_key(call.body)
    with call.write() as session:
        credential = credentials.add_certificate(
            session,
            lookup_to_change_access(session, call),
            spec.key,
            display_name=spec.display_name,
            key_id=spec.key_id,
        )
        body = serialize.key_credential(credential)
    return call.entity("microsoft.graph.keyCredential", body)


def remove_key(call: Call) -> Reply:
    key_id = inputs.key_id(call.body, "removeKeyRequestBody")
    with call.write() as session:
        credentials.remove_certificate(session, lookup_to_change_access(session, call), key_id)
    return Reply(204)
