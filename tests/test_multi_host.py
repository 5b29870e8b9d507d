"""One deployment on several hosts (issue 14, item 8), shown from the wire.

Two ``dicomite serve`` processes, each with a data directory of its own, share what makes them
one deployment: the PostgreSQL ``--database-url``, the Azure ``--blob-url`` (Azurite), the
key-encryption key, the ``--public-url`` a load balancer would answer for, and one TLS
certificate. Every test talks to both hosts over HTTPS and checks that what one host was told
holds on the other: tokens, DICOM data, consent and secrets, client-assertion ``jti`` values,
sign-in throttling, portal sessions and the new-secret page, and signing keys (last, since a
rotation changes what every later token is signed with). The module's tests share the servers.
"""

from __future__ import annotations

import re
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select

from dicomite.bootstrap import BOOTSTRAP_APP_NAME, Context, open_context
from dicomite.clock import utcnow
from dicomite.identity.protection import new_key_encryption_key
from dicomite.settings import Settings
from dicomite.store.tables import SigningKey
from dicomite.tls import ensure_server_certificate
from tests.fixtures.azurite import Azurite
from tests.fixtures.dicom import make_dataset, multipart, stow_headers, to_bytes
from tests.fixtures.directory import DICOM_SCOPE, GRAPH_SCOPE, Admin, make_certificate
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.server import Server, free_port, make_server
from tests.graph.helpers import eventually
from tests.identity.test_client_assertions import assertion
from tests.identity.wire import assert_aadsts, post_token

# The name clients use for the deployment (a load balancer's), the same on both hosts: it is the
# tokens' issuer and the portal's origin. The hosts themselves are reached on their own ports.
PUBLIC_URL = "https://dicomite.localhost"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SESSION_COOKIE = "__Host-dicomite-session"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "Corr3ct-Horse-9!"
WRONG_PASSWORD = "Wr0ng-Horse-9!"
MAX_FAILURES = 5  # the failures that lock a name (at an address): sign-in throttling's limit
# The item's bound: a key published or retired on one host is honoured or refused by all within it.
KEY_PROPAGATION_SECONDS = 60.0
# How long the hosts verify with the keys they read (DICOMITE_SIGNING_KEYS_MAX_AGE_SECONDS; the
# default is 30): a key retired on one host is refused by the other within it.
KEYS_MAX_AGE = 3


@dataclass
class Deployment:
    a: Server
    b: Server
    admin: Admin

    def pairs(self) -> list[tuple[Server, Server]]:
        """(issuing host, checking host), both ways round."""
        return [(self.a, self.b), (self.b, self.a)]


@pytest.fixture(scope="module")
def deployment(
    postgres_server: PostgresServer, azurite: Azurite, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("multihost")
    certificate, key = ensure_server_certificate(root / "tls", {"dicomite.localhost"})
    database_url, kek = postgres_server.create_database(), new_key_encryption_key()
    shared = {
        "--database-url": database_url,
        "--blob-url": azurite.new_url(),
        "--public-url": PUBLIC_URL,
        "--tls-cert": str(certificate),
        "--tls-key": str(key),
    }
    arguments = [part for option in shared.items() for part in option]
    a = make_server(
        root / "a",
        extra_args=arguments,
        extra_env={
            "DICOMITE_KEY_ENCRYPTION_KEY": kek,
            "DICOMITE_SIGNING_KEYS_MAX_AGE_SECONDS": str(KEYS_MAX_AGE),
        },
    )
    b = replace(a, data_dir=root / "b" / "data", port=free_port())
    started: list[Server] = []
    try:
        for host in (a, b):  # one after the other: the first start creates the schema
            _trust(host, root / "tls" / "ca.pem")
            host.start()
            started.append(host)
        context = _admin_context(root / "admin", a.tenant_id, database_url, kek)
        yield Deployment(a, b, Admin(context))
        context.store.dispose()
    finally:
        for host in started:
            host.stop()


def _trust(host: Server, ca: Path) -> None:
    """Put the shared certificate's CA where ``Server.client()`` looks for it."""
    (host.data_dir / "tls").mkdir(parents=True)
    shutil.copyfile(ca, host.ca_file)


def _admin_context(data_dir: Path, tenant_id: str, database_url: str, kek: str) -> Context:
    """The shared directory, administered as the CLI does (for setting up apps and people)."""
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        tenant_id=tenant_id,
        key_encryption_key=kek,
        public_url=PUBLIC_URL,
    )
    return open_context(settings)


# --- wire helpers ---------------------------------------------------------------------------------


def _database_url(host: Server) -> str:
    return host.extra_args[host.extra_args.index("--database-url") + 1]


def token_response(host: Server, client_id: str, secret: str, scope: str) -> httpx.Response:
    data = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "scope": scope,
    }
    return post_token(host, data)


def access_token(host: Server, client_id: str, secret: str, scope: str = DICOM_SCOPE) -> str:
    response = token_response(host, client_id, secret, scope)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def graph_token(host: Server) -> str:
    return access_token(host, host.client_id, host.client_secret, GRAPH_SCOPE)


def claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def dicom_status(host: Server, token: str) -> int:
    """QIDO for studies: 200/204 when the token is accepted with a role, 401/403 otherwise."""
    with host.client() as client:
        response = client.get("/dicom/v1/studies", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


def graph_get(host: Server, token: str, path: str) -> httpx.Response:
    with host.client() as client:
        return client.get(f"/graph/v1.0{path}", headers={"Authorization": f"Bearer {token}"})


def graph_status(host: Server, token: str) -> int:
    return graph_get(host, token, "/applications?$top=1").status_code


def accepted_everywhere(host: Server, dicom_token: str, graph: str) -> bool:
    return dicom_status(host, dicom_token) in (200, 204) and graph_status(host, graph) == 200


# --- tokens ---------------------------------------------------------------------------------------


def test_a_token_issued_by_one_host_is_accepted_by_the_other(deployment: Deployment) -> None:
    app = deployment.admin.register(roles=("Dicom.ReadWrite",))
    assert app.secret is not None
    for issuer, checker in deployment.pairs():
        dicom = access_token(issuer, app.app_id, app.secret)
        graph = graph_token(issuer)
        for token in (dicom, graph):  # the deployment's issuer, not the host's address
            assert claims(token)["iss"].startswith(f"{PUBLIC_URL}/{issuer.tenant_id}/")
        assert dicom_status(checker, dicom) in (200, 204), f"DICOM on {checker.port}"
        assert graph_status(checker, graph) == 200, f"Graph on {checker.port}"


# --- DICOM data ---------------------------------------------------------------------------------


def _dicom_client(host: Server, token: str) -> httpx.Client:
    client = host.client()
    client.base_url = httpx.URL(f"{host.base_url}/dicom/v1")
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def test_an_instance_stored_on_one_host_is_served_and_deleted_by_the_other(
    deployment: Deployment,
) -> None:
    a, b = deployment.a, deployment.b
    app = deployment.admin.register(roles=("Dicom.ReadWrite",))
    token = access_token(a, app.app_id, app.secret or "")
    dataset = make_dataset(frames=1)
    study, instance = dataset.StudyInstanceUID, to_bytes(dataset)
    path = f"/studies/{study}/series/{dataset.SeriesInstanceUID}/instances/{dataset.SOPInstanceUID}"
    with _dicom_client(a, token) as on_a, _dicom_client(b, token) as on_b:
        stored = on_a.post("/studies", content=multipart(instance), headers=stow_headers())
        assert stored.status_code == 200, stored.text
        found = on_b.get("/studies", params={"StudyInstanceUID": study})
        assert found.status_code == 200 and len(found.json()) == 1, found.text
        served = on_b.get(path, headers={"Accept": "application/dicom; transfer-syntax=*"})
        assert served.status_code == 200 and served.content == instance
        assert on_b.delete(f"/studies/{study}").status_code == 204
        assert (
            on_a.get(path, headers={"Accept": "application/dicom; transfer-syntax=*"}).status_code
            == 404
        )


# --- consent and secrets --------------------------------------------------------------------------


def _service_principal_id(host: Server, graph: str, app_id: str) -> str:
    found = graph_get(host, graph, f"/servicePrincipals?$filter=appId eq '{app_id}'").json()
    assert len(found["value"]) == 1, found
    return str(found["value"][0]["id"])


def _revoke_admin_consent(host: Server, app_id: str) -> None:
    """Delete every app role assignment of the app's service principal through Graph."""
    graph = graph_token(host)
    path = f"/servicePrincipals/{_service_principal_id(host, graph, app_id)}/appRoleAssignments"
    assignments = graph_get(host, graph, path).json()["value"]
    assert assignments, "the app had admin consent"
    with host.client() as client:
        for assignment in assignments:
            deleted = client.delete(
                f"/graph/v1.0{path}/{assignment['id']}",
                headers={"Authorization": f"Bearer {graph}"},
            )
            assert deleted.status_code == 204, deleted.text


def test_consent_revoked_on_one_host_holds_on_the_next_request_to_the_other(
    deployment: Deployment,
) -> None:
    a, b = deployment.a, deployment.b
    app = deployment.admin.register(roles=("Dicom.ReadWrite",))
    assert app.secret is not None
    granted = access_token(b, app.app_id, app.secret)  # B has now read the app into its cache
    assert claims(granted)["roles"] == ["Dicom.ReadWrite"]

    _revoke_admin_consent(a, app.app_id)

    revoked = access_token(b, app.app_id, app.secret)
    assert "roles" not in claims(revoked)
    assert dicom_status(b, revoked) == 403


def test_a_secret_removed_on_one_host_fails_on_the_next_request_to_the_other(
    deployment: Deployment,
) -> None:
    a, b = deployment.a, deployment.b
    app = deployment.admin.register(roles=("Dicom.Read",))
    assert app.secret is not None
    access_token(b, app.app_id, app.secret)  # B has now read the secret into its cache

    with a.client() as client:
        removed = client.post(
            f"/graph/v1.0/applications/{app.object_id}/removePassword",
            json={"keyId": app.secret_key_id},
            headers={"Authorization": f"Bearer {graph_token(a)}"},
        )
    assert removed.status_code == 204, removed.text

    refused = token_response(b, app.app_id, app.secret, DICOM_SCOPE)
    assert_aadsts(refused, 401, "invalid_client", 7000215)


# --- client assertions ----------------------------------------------------------------------------


def test_a_client_assertion_used_on_one_host_is_a_replay_on_the_other(
    deployment: Deployment,
) -> None:
    admin = deployment.admin
    app = admin.register(roles=("Dicom.ReadWrite",), secret=False)
    cert = make_certificate()
    admin.add_certificate(app.app_id, cert.certificate_pem)
    for first, second in deployment.pairs():
        # The audience is the deployment's token endpoint, whichever host receives it.
        audience = f"{PUBLIC_URL}/{first.tenant_id}/oauth2/v2.0/token"
        signed = assertion(first, app, cert, aud=audience)
        data = {
            "grant_type": "client_credentials",
            "client_id": app.app_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": signed,
            "scope": DICOM_SCOPE,
        }
        accepted = post_token(first, data)
        assert accepted.status_code == 200, accepted.text
        assert_aadsts(post_token(second, data), 401, "invalid_client", 700022)


# --- the portal -----------------------------------------------------------------------------------


def _person(host: Server) -> str:
    """A new person, added as an administrator does (``dicomite users add``)."""
    name = f"multihost-{uuid.uuid4().hex[:8]}@dicomite.localhost"
    host.cli(
        "users",
        "add",
        name,
        "--password-stdin",
        "--database-url",
        _database_url(host),
        stdin=f"{PASSWORD}\n",
    )
    return name


def _sign_in(client: httpx.Client, name: str, password: str) -> httpx.Response:
    """The sign-in form as a browser posts it: its CSRF token and cookie from the same host."""
    token = CSRF_FIELD.search(client.get("/portal/signin").text)
    assert token, "no CSRF token on the sign-in page"
    fields = {"csrf_token": token.group(1), "username": name, "password": password, "next": ""}
    return client.post("/portal/signin", data=fields)


def test_sign_in_failures_on_one_host_lock_the_name_on_the_other(
    deployment: Deployment,
) -> None:
    name = _person(deployment.a)
    with deployment.a.client() as on_a, deployment.b.client() as on_b:
        for _ in range(4):
            assert _sign_in(on_a, name, WRONG_PASSWORD).status_code == 401
        assert _sign_in(on_b, name, WRONG_PASSWORD).status_code == 401  # the fifth failure
        for client in (on_a, on_b):
            locked = _sign_in(client, name, PASSWORD)
            assert locked.status_code == 429, locked.text
            assert int(locked.headers["retry-after"]) > 0
            assert SESSION_COOKIE not in locked.cookies


BURST = 12  # parallel wrong sign-ins, half on each host


def _burst_of_wrong_sign_ins(deployment: Deployment, name: str) -> Counter[int]:
    """``BURST`` browsers, each with its own sign-in form, post a wrong password at once."""
    hosts = [deployment.a, deployment.b] * (BURST // 2)
    clients = [host.client() for host in hosts]
    forms = [CSRF_FIELD.search(client.get("/portal/signin").text) for client in clients]
    start = threading.Barrier(BURST)

    def post(client: httpx.Client, form: re.Match[str] | None) -> int:
        assert form, "no CSRF token on the sign-in page"
        fields = {
            "csrf_token": form.group(1),
            "username": name,
            "password": WRONG_PASSWORD,
            "next": "",
        }
        start.wait()
        return client.post("/portal/signin", data=fields).status_code

    try:
        with ThreadPoolExecutor(BURST) as pool:
            return Counter(pool.map(post, clients, forms))
    finally:
        for client in clients:
            client.close()


def test_a_burst_of_sign_ins_across_hosts_checks_no_more_passwords_than_the_limit(
    deployment: Deployment,
) -> None:
    """Attempts that arrive together on both hosts are counted before any password check, so no
    more passwords are checked than the limit allows (a throttle that read the count before the
    check and wrote it after let 10 to 12 of 12 through, not 5)."""
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@dicomite.localhost"  # throttled like a person
    statuses = _burst_of_wrong_sign_ins(deployment, unknown)
    assert set(statuses) <= {401, 429}, statuses
    assert statuses[401] <= MAX_FAILURES, f"{statuses[401]} passwords checked: {statuses}"


def _with_session(host: Server, cookie: str) -> httpx.Client:
    """A client of ``host`` that sends the session cookie itself: ``__Host-`` cookies are bound
    to one origin, which both hosts are behind the load balancer, but not here."""
    client = host.client()
    client.headers["Cookie"] = f"{SESSION_COOKIE}={cookie}"
    return client


def test_a_portal_session_from_one_host_works_on_the_other(deployment: Deployment) -> None:
    a, b = deployment.a, deployment.b
    with a.client() as on_a:
        signed_in = _sign_in(on_a, a.admin_username, a.admin_password)
        assert signed_in.status_code == 303, signed_in.text
        cookie = signed_in.cookies[SESSION_COOKIE]
    with _with_session(b, cookie) as on_b:
        home = on_b.get("/portal/")
        assert home.status_code == 200 and "Sign out" in home.text, home.text
        csrf = CSRF_FIELD.search(home.text)
        assert csrf, "no CSRF token on the portal's home page"
        signed_out = on_b.post("/portal/signout", data={"csrf_token": csrf.group(1)})
        assert signed_out.status_code == 303, signed_out.text
    with _with_session(a, cookie) as on_a_again:
        after = on_a_again.get("/portal/")
        assert after.status_code == 303 and "/portal/signin" in after.headers["location"]


NEW_SECRET_COOKIE = "__Host-dicomite-new-secret"
NEW_SECRET = re.compile(r'id="new-secret-value"[^>]*>\s*([^<\s]+)\s*<')


def _admin_session(host: Server) -> str:
    with host.client() as client:
        signed_in = _sign_in(client, host.admin_username, host.admin_password)
    assert signed_in.status_code == 303, signed_in.text
    return signed_in.cookies[SESSION_COOKIE]


def test_a_secret_created_on_one_host_is_shown_once_by_the_other(deployment: Deployment) -> None:
    """The portal's post/redirect/get for a new secret, with the load balancer sending the POST
    to one host and the GET it redirects to to the other (the value is sealed in a cookie)."""
    a, b = deployment.a, deployment.b
    app = deployment.admin.register(roles=("Dicom.Read",), secret=False)
    cookie = _admin_session(a)
    with _with_session(a, cookie) as on_a:
        csrf = CSRF_FIELD.search(on_a.get("/portal/").text)
        assert csrf, "no CSRF token on the portal's home page"
        fields = {"csrf_token": csrf.group(1), "description": "multihost", "expires": "180"}
        created = on_a.post(f"/portal/apps/{app.object_id}/credentials/secrets/new", data=fields)
    assert created.status_code == 303, created.text
    sealed = created.cookies[NEW_SECRET_COOKIE]
    with _with_session(b, cookie) as on_b:
        on_b.headers["Cookie"] += f"; {NEW_SECRET_COOKIE}={sealed}"
        shown = NEW_SECRET.search(on_b.get(created.headers["location"]).text)
    assert shown, "the new secret's value is not on the page B served"
    access_token(b, app.app_id, shown.group(1))


# --- joining the deployment ----------------------------------------------------------------------


def _management_clients(host: Server) -> list[str]:
    listed = graph_get(host, graph_token(host), "/applications?$top=999").json()["value"]
    return [app["appId"] for app in listed if app["displayName"] == BOOTSTRAP_APP_NAME]


def test_a_host_joining_with_the_shared_settings_adds_no_management_client(
    deployment: Deployment, tmp_path: Path
) -> None:
    """A new host, or any ``dicomite`` command run on a new data dir, with only the shared
    settings (no ``DICOMITE_BOOTSTRAP_CLIENT_ID`` and no copy of the first host's
    bootstrap-credentials.json) registers no second privileged management client in the shared
    directory."""
    a = deployment.a
    before = _management_clients(a)
    env = {k: v for k, v in a.env.items() if not k.startswith("DICOMITE_BOOTSTRAP_")}
    joining = replace(a, data_dir=tmp_path / "data", env=env)
    joining.cli("info", "--database-url", _database_url(a), "--public-url", PUBLIC_URL)
    assert _management_clients(a) == before


# --- signing keys (last: a rotation changes the keys every later token is signed with) ------------


def _rotate_on(host: Server, database_url: str) -> str:
    """``dicomite keys rotate --lead 0`` with the host's configuration; the new key's kid."""
    result = host.cli("keys", "rotate", "--lead", "0", "--database-url", database_url)
    found = re.search(r"New signing key (\S+) published", " ".join(result.stdout.split()))
    assert found, result.stdout
    return found.group(1)


def _retire_now(admin: Admin, key_id: str) -> None:
    """Bring a key's retirement forward to now. ``keys rotate`` retires the old key once its
    tokens have expired (an hour and more later); the store is where that date lives, so the
    test moves it there instead of waiting."""
    with admin.context.store.write() as session:
        key = session.scalar(select(SigningKey).where(SigningKey.kid == key_id))
        assert key is not None
        key.retires_at = utcnow()


def _published_kids(host: Server) -> set[str]:
    with host.client() as client:
        keys = client.get(f"/{host.tenant_id}/discovery/v2.0/keys").json()["keys"]
    return {str(key["kid"]) for key in keys}


def test_a_rotated_key_is_honoured_and_a_retired_key_refused_across_hosts(
    deployment: Deployment,
) -> None:
    a, b = deployment.a, deployment.b
    app = deployment.admin.register(roles=("Dicom.ReadWrite",))
    assert app.secret is not None
    old_dicom, old_graph = access_token(a, app.app_id, app.secret), graph_token(a)
    old_kid = kid(old_dicom)

    new_kid = _rotate_on(a, _database_url(a))

    def signed_by_new_key() -> tuple[str, str] | None:
        dicom, graph = access_token(a, app.app_id, app.secret or ""), graph_token(a)
        return (dicom, graph) if kid(dicom) == kid(graph) == new_kid else None

    new_dicom, new_graph = eventually(signed_by_new_key, KEY_PROPAGATION_SECONDS)
    eventually(
        lambda: accepted_everywhere(b, new_dicom, new_graph) or None, KEY_PROPAGATION_SECONDS
    )
    assert accepted_everywhere(b, old_dicom, old_graph), "the old key is still published"

    def signed_by_new_key_on_b() -> str | None:
        dicom = access_token(b, app.app_id, app.secret or "")
        return dicom if kid(dicom) == new_kid else None

    assert dicom_status(a, eventually(signed_by_new_key_on_b, KEY_PROPAGATION_SECONDS)) in (
        200,
        204,
    )

    _retire_now(deployment.admin, old_kid)
    eventually(
        lambda: (dicom_status(b, old_dicom) == 401 and graph_status(b, old_graph) == 401) or None,
        KEYS_MAX_AGE + 5,
    )
    assert old_kid not in _published_kids(b)
    assert accepted_everywhere(b, new_dicom, new_graph)
