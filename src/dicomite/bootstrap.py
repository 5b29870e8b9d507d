"""First start and every start: data dir, key material, schema, tenant, built-in APIs, signing
key, the bootstrap management client and the bootstrap Global Administrator (Keycloak's
convention: env values, else the values saved by an earlier start, else generated once).

Generated values go to ``DATA_DIR/bootstrap-credentials.json`` (mode 0600) and are never logged;
values given in the environment are not written there. As Keycloak does, the administrator is
created only while the tenant has no enabled Global Administrator (so an account deleted on
purpose is not brought back by a restart) and an existing account is never changed.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from dicomite.clock import utcnow
from dicomite.dicom.index import partitions
from dicomite.identity import (
    builtin,
    consent,
    credentials,
    directory,
    passwords,
    principals,
    users,
    viewer_client,
)
from dicomite.identity.keys import ensure_signing_key
from dicomite.identity.permission_kind import PermissionKind
from dicomite.identity.problems import InvalidInput
from dicomite.identity.protection import KeyProtection, new_key_encryption_key
from dicomite.settings import Settings
from dicomite.store.db import Store
from dicomite.store.migrate import upgrade
from dicomite.store.tables import Application, Tenant

BOOTSTRAP_APP_NAME = "Dicomite bootstrap management client"
BOOTSTRAP_ROLES = (builtin.APPLICATION_READWRITE_ALL, builtin.APP_ROLE_ASSIGNMENT_READWRITE_ALL)
BOOTSTRAP_ADMIN_DISPLAY_NAME = "Administrator"


class BootstrapError(Exception):
    """The data dir and the configuration disagree; the message says how to fix it."""


@dataclass
class Context:
    """What every entry point (server, CLI) works with."""

    settings: Settings
    store: Store
    protection: KeyProtection
    tenant_id: str
    tenant_domain: str


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when rewriting a file someone made readable
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def load_protection(settings: Settings) -> KeyProtection:
    if settings.key_encryption_key:
        return KeyProtection(settings.key_encryption_key)
    path = settings.key_encryption_key_file
    if not path.exists():
        _create_once(path, new_key_encryption_key() + "\n")
    return KeyProtection(path.read_text())


def _create_once(path: Path, text: str) -> None:
    """Create a private file unless it exists, atomically, so concurrent first starts (several
    workers or CLI commands on one data dir) all end up reading the same content."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _write_private(temporary, text)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


def open_context(settings: Settings) -> Context:
    """Open an already prepared deployment (no writes)."""
    store = Store(settings.effective_database_url)
    with store.read() as session:
        tenant = session.scalars(select(Tenant).order_by(Tenant.created_at)).first()
    if tenant is None:
        raise BootstrapError("The store holds no tenant yet; run 'dicomite serve' once.")
    return Context(settings, store, load_protection(settings), tenant.id, tenant.domain)


def prepare(settings: Settings) -> Context:
    """Idempotent: safe on every start and from every CLI command."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    protection = load_protection(settings)
    store = Store(settings.effective_database_url)
    upgrade(store)
    now = utcnow()
    with store.write(exclusive=True) as session:
        tenant = _ensure_tenant(session, settings, now)
        for api in builtin.builtin_apis(settings.dicom_resource_uri):
            principals.ensure_builtin_api(session, tenant, api, now)
        ensure_signing_key(session, protection, now)
        context = Context(settings, store, protection, tenant.id, tenant.domain)
        _ensure_bootstrap_accounts(session, context)
    if settings.data_partitions:
        with store.transaction(write=True) as db:
            partitions.enable(db)
    return context


def register_viewer(context: Context) -> str | None:
    """The built-in DICOM viewer app registration, with the callback of the address this server
    runs at (``dicomite serve``, after ``prepare``); returns why that callback could not be
    registered, if it could not (the viewer's sign-in then fails; the server still starts)."""
    with context.store.write(exclusive=True) as session:
        refusal = viewer_client.ensure_viewer_app(
            session, context.tenant_id, context.settings.effective_public_url, utcnow()
        )
    return refusal.message if refusal else None


def _ensure_tenant(session: Session, settings: Settings, now: datetime) -> Tenant:
    existing = session.scalars(select(Tenant).order_by(Tenant.created_at)).first()
    wanted = str(settings.tenant_id) if settings.tenant_id else None
    if existing is not None:
        if wanted and wanted != existing.id:
            raise BootstrapError(
                f"The data dir belongs to tenant {existing.id}, but DICOMITE_TENANT_ID is "
                f"{wanted}. Use another --data-dir or unset DICOMITE_TENANT_ID."
            )
        return existing
    tenant_id = wanted or str(uuid.uuid4())
    return directory.ensure_tenant(
        session, tenant_id, settings.tenant_domain, settings.tenant_display_name, now
    )


def _read_bootstrap_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _ensure_bootstrap_accounts(session: Session, context: Context) -> None:
    """Both bootstrap accounts; the file keeps every key it held and gains what was generated."""
    path = context.settings.bootstrap_file
    saved = _read_bootstrap_file(path)
    kept = saved | _ensure_bootstrap_client(session, context, saved)
    kept |= _ensure_bootstrap_admin(session, context, saved)
    if kept != saved:
        _write_private(path, json.dumps(kept, indent=2) + "\n")


def _ensure_bootstrap_client(
    session: Session, context: Context, saved: dict[str, str]
) -> dict[str, str]:
    """The management client; returns the values to save (none when the secret came from env)."""
    settings = context.settings
    named = settings.bootstrap_client_id or saved.get("client_id")
    tenant = session.get(Tenant, context.tenant_id)
    if tenant is None:
        raise BootstrapError(f"Tenant {context.tenant_id} is missing from the store.")
    if named is None and _has_bootstrap_client(session, tenant.id):
        # Another host of this deployment (same database) made it; its credentials are in that
        # host's bootstrap-credentials.json. A joining host must not register one more.
        return {}
    client_id = str(named or uuid.uuid4())
    secret = settings.bootstrap_client_secret or saved.get("client_secret")
    app = directory.find_application_by_app_id(session, tenant.id, client_id)
    now = utcnow()
    if app is None:
        app = directory.create_application(
            session,
            tenant.id,
            now,
            BOOTSTRAP_APP_NAME,
            app_id=client_id,
            required_resource_access=[_graph_access()],
        )
    if secret is None or not _has_secret(app, secret, context.protection, session):
        if secret is None:
            new = credentials.add_password(
                session, app, context.protection, now, display_name="bootstrap"
            )
            secret = new.secret_text
        else:
            credentials.add_password_value(
                session, app, context.protection, now, secret, display_name="bootstrap"
            )
    _consent_bootstrap_roles(session, app, now)
    if settings.bootstrap_client_secret:
        return {}
    return {"tenant_id": tenant.id, "client_id": client_id, "client_secret": secret}


def _has_bootstrap_client(session: Session, tenant_id: str) -> bool:
    found = session.scalar(
        select(Application.id)
        .where(Application.tenant_id == tenant_id, Application.display_name == BOOTSTRAP_APP_NAME)
        .limit(1)
    )
    return found is not None


def _ensure_bootstrap_admin(
    session: Session, context: Context, saved: dict[str, str]
) -> dict[str, str]:
    """The first Global Administrator (also DICOM Data Owner, so the studies browser works);
    returns the generated or saved values to keep in the file, none once it is not needed."""
    settings = context.settings
    name = _env_checked(
        users.normalize_user_principal_name,
        settings.bootstrap_admin_username
        or saved.get("admin_username")
        or f"admin@{context.tenant_domain}",
        "DICOMITE_BOOTSTRAP_ADMIN_USERNAME",
    )
    if users.count_global_administrators(session, context.tenant_id) or users.find_user(
        session, context.tenant_id, name
    ):
        return {}
    password = settings.bootstrap_admin_password or saved.get("admin_password")
    password = password or passwords.generate_password()
    users.create_user(
        session,
        context.tenant_id,
        utcnow(),
        user_principal_name=name,
        display_name=BOOTSTRAP_ADMIN_DISPLAY_NAME,
        # Hashed in the bootstrap's transaction: once, at the first start, before serving.
        password=users.new_password(
            _env_checked(
                passwords.check_password_policy, password, "DICOMITE_BOOTSTRAP_ADMIN_PASSWORD"
            )
        ),
        directory_role=users.DirectoryRole.GLOBAL_ADMINISTRATOR,
        dicom_role=users.DicomDataRole.OWNER,
    )
    keep = {}
    if not settings.bootstrap_admin_username:
        keep["admin_username"] = name
    if not settings.bootstrap_admin_password:
        keep["admin_password"] = password
    return keep


def _env_checked(check: Callable[[str], str], value: str, variable: str) -> str:
    """``check(value)``, its complaint turned into a BootstrapError naming the variable."""
    try:
        return check(value)
    except InvalidInput as problem:
        raise BootstrapError(f"{variable} is not usable: {problem.message}") from None


def _has_secret(app: Application, secret: str, protection: KeyProtection, session: Session) -> bool:
    digest = protection.secret_hash(secret)
    return any(
        credentials.secret_matches(c.secret_hash, digest)
        for c in credentials.list_passwords(session, app)
    )


def _graph_access() -> dict[str, object]:
    return {
        "resourceAppId": builtin.GRAPH_APP_ID,
        "resourceAccess": [
            {"id": role, "type": PermissionKind.ROLE.value} for role in BOOTSTRAP_ROLES
        ],
    }


def _consent_bootstrap_roles(session: Session, app: Application, now: datetime) -> None:
    graph = principals.find_resource(session, app.tenant_id, builtin.GRAPH_APP_ID)
    if graph is None:  # prepare() adds the built-in APIs before the management client
        raise BootstrapError(f"The tenant has no Microsoft Graph API ({builtin.GRAPH_APP_ID}).")
    client = principals.ensure_service_principal(session, app, now)
    for role_id in BOOTSTRAP_ROLES:
        consent.assign_app_role(session, client, graph, role_id, now)
