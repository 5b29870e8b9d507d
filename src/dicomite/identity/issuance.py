"""What token issuing reads from the directory, cached per directory version.

Every token request reads the tenant's ``directory_version`` (one indexed row); while it is
unchanged, clients, resources, granted roles and the origins single-page applications may
redeem from come from memory. Any directory write bumps the version in the same transaction,
so a revoked consent, a removed secret or a removed SPA redirect URI affects the very next
token request, in every process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select

from dicomite.cors import origin_of
from dicomite.identity.assertions import RegisteredCertificate
from dicomite.identity.consent import granted_role_values
from dicomite.identity.credentials import parse_certificate
from dicomite.identity.directory import find_tenant
from dicomite.identity.federated_credentials import federated_credentials_of
from dicomite.identity.federation import FederatedCredential
from dicomite.identity.principals import find_resource, service_principal_for_app
from dicomite.store.db import Store
from dicomite.store.tables import (
    Application,
    KeyCredential,
    PasswordCredential,
    ServicePrincipal,
    Tenant,
)

_DIRECTORY_VERSION = select(Tenant.directory_version).where(Tenant.id == bindparam("tenant"))


@dataclass(frozen=True)
class Secret:
    key_id: str
    hash: bytes
    start_at: datetime
    end_at: datetime


@dataclass(frozen=True)
class Client:
    app_id: str
    display_name: str
    sp_id: str | None
    secrets: tuple[Secret, ...]
    certificates: tuple[RegisteredCertificate, ...]
    federated: tuple[FederatedCredential, ...] = ()


@dataclass(frozen=True)
class Resource:
    sp_id: str
    app_id: str
    display_name: str
    token_version: int


class _Snapshot:
    def __init__(self, version: int) -> None:
        self.version = version
        self.clients: dict[str, Client | None] = {}
        self.resources: dict[str, Resource | None] = {}
        self.roles: dict[tuple[str, str], tuple[str, ...]] = {}
        self.spa_origins: frozenset[str] | None = None


class IssuanceView:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._tenants: dict[str, Tenant] = {}
        self._snapshots: dict[str, _Snapshot] = {}
        self._lock = threading.Lock()

    @property
    def reads_in_process(self) -> bool:
        """Whether a read of the store is work in this process (SQLite: microseconds for the
        version probe) rather than a wait on the network (PostgreSQL: a round trip)."""
        return self._store.is_sqlite

    def tenant(self, reference: str) -> Tenant | None:
        tenant = self._tenants.get(reference.lower())
        if tenant is None:
            with self._store.read() as session:
                tenant = find_tenant(session, reference)
            if tenant is not None:
                self._tenants[reference.lower()] = tenant
        return tenant

    def _snapshot(self, tenant_id: str) -> _Snapshot:
        version = self._store.scalar(_DIRECTORY_VERSION, {"tenant": tenant_id})
        snapshot = self._snapshots.get(tenant_id)
        if snapshot is None or snapshot.version != version:
            with self._lock:
                snapshot = self._snapshots[tenant_id] = _Snapshot(version or 0)
        return snapshot

    def lookup(
        self, tenant_id: str, client_id: str, resource_name: str | None
    ) -> tuple[Client | None, Resource | None, _Snapshot]:
        snapshot = self._snapshot(tenant_id)
        if client_id not in snapshot.clients:
            snapshot.clients[client_id] = self._load_client(tenant_id, client_id)
        resource = None
        if resource_name is not None:
            if resource_name not in snapshot.resources:
                snapshot.resources[resource_name] = self._load_resource(tenant_id, resource_name)
            resource = snapshot.resources[resource_name]
        return snapshot.clients[client_id], resource, snapshot

    def roles(self, snapshot: _Snapshot, client_sp_id: str, resource: Resource) -> tuple[str, ...]:
        key = (client_sp_id, resource.sp_id)
        if key not in snapshot.roles:
            with self._store.read() as session:
                sp = session.get(ServicePrincipal, resource.sp_id)
                roles = granted_role_values(session, client_sp_id, sp) if sp else ()
            snapshot.roles[key] = roles
        return snapshot.roles[key]

    def spa_origins(self, tenant_id: str) -> frozenset[str]:
        """The origins of every SPA redirect URI in the tenant: where browsers may call the
        token endpoint from (Entra ID's CORS rule for single-page applications)."""
        snapshot = self._snapshot(tenant_id)
        if snapshot.spa_origins is None:
            query = select(Application.spa_redirect_uris).where(Application.tenant_id == tenant_id)
            with self._store.read() as session:
                uris = [uri for listed in session.scalars(query) for uri in listed]
            snapshot.spa_origins = frozenset(filter(None, map(origin_of, uris)))
        return snapshot.spa_origins

    def _load_client(self, tenant_id: str, client_id: str) -> Client | None:
        with self._store.read() as session:
            app = session.scalar(
                select(Application).where(
                    Application.tenant_id == tenant_id, Application.app_id == client_id
                )
            )
            if app is None:
                return None
            sp = service_principal_for_app(session, tenant_id, client_id)
            secrets = session.scalars(
                select(PasswordCredential).where(PasswordCredential.application_id == app.id)
            ).all()
            certs = session.scalars(
                select(KeyCredential).where(KeyCredential.application_id == app.id)
            ).all()
            return Client(
                app_id=app.app_id,
                display_name=app.display_name,
                sp_id=sp.id if sp is not None and sp.account_enabled else None,
                secrets=tuple(
                    Secret(s.key_id, s.secret_hash, s.start_at, s.end_at) for s in secrets
                ),
                certificates=tuple(_registered(c) for c in certs),
                federated=tuple(
                    FederatedCredential(f.id, f.name, f.issuer, f.subject, tuple(f.audiences))
                    for f in federated_credentials_of(session, app)
                ),
            )

    def _load_resource(self, tenant_id: str, name: str) -> Resource | None:
        with self._store.read() as session:
            sp = find_resource(session, tenant_id, name)
            if sp is None:
                return None
            version = 2 if sp.requested_access_token_version == 2 else 1
            return Resource(sp.id, sp.app_id, sp.display_name, version)


def _registered(credential: KeyCredential) -> RegisteredCertificate:
    cert = parse_certificate(credential.certificate_der)
    return RegisteredCertificate(
        key_id=credential.key_id,
        public_key=cert.public_key,
        thumbprint_sha1=cert.thumbprint_sha1,
        thumbprint_sha256=cert.thumbprint_sha256,
        start_at=credential.start_at,
        end_at=credential.end_at,
    )
