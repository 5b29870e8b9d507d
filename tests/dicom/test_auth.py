"""Resource-server checks on the wire: 401 with an RFC 6750 challenge, 403 by role."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from dicomite.bootstrap import open_context
from dicomite.clock import utcnow
from dicomite.dicom.auth import MESSAGES, Action, DicomAuth
from dicomite.dicom.errors import Unauthenticated
from dicomite.identity.builtin import DICOM_APP_ID
from dicomite.identity.keys import KeyRing
from dicomite.identity.published_keys import PublishedKeys
from dicomite.identity.resource_server import Reason
from dicomite.settings import Settings
from dicomite.store.tables import ServicePrincipal, SigningKey
from tests.fixtures.dicom import TokenFactory, dicom_client, make_dataset, to_bytes, token_for
from tests.fixtures.directory import DICOM_SCOPE, GRAPH_SCOPE, Admin
from tests.fixtures.server import Server, make_server

DICOM = "https://dicom.healthcareapis.azure.com"


def _claims(server: Server, **overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "aud": DICOM,
        "iss": f"{server.base_url}/{server.tenant_id}/",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "appid": str(uuid.uuid4()),
        "roles": ["Dicom.ReadWrite"],
        "tid": server.tenant_id,
        "ver": "1.0",
    }
    claims.update(overrides)
    return claims


@pytest.fixture(scope="module")
def sign(admin: Admin) -> object:
    ring = KeyRing(admin.context.store, admin.context.protection)
    key = ring.signing_key(utcnow())

    def signed(claims: dict[str, object], alg: str = "RS256") -> str:
        return jwt.encode(claims, key.private_key, algorithm=alg, headers={"kid": key.kid})

    return signed


def _status(server: Server, token: str | None, path: str = "/studies") -> tuple[int, str]:
    with dicom_client(server, token) as client:
        response = client.get(path)
    return response.status_code, response.headers.get("www-authenticate", "")


def test_missing_token_is_401_with_a_bearer_challenge(server: Server) -> None:
    status, challenge = _status(server, None)
    assert status == 401
    assert challenge.startswith("Bearer realm=")
    assert "error=" not in challenge  # RFC 6750 §3.1: no error code when no token was sent
    with dicom_client(server, None) as client:
        assert client.get("/studies").text == "Authentication failed: no bearer token."


def test_token_in_the_query_is_not_accepted(server: Server, dicom_token: TokenFactory) -> None:
    status, _ = _status(server, None, f"/studies?access_token={dicom_token('Dicom.Read')}")
    assert status == 401


@pytest.mark.parametrize(
    ("overrides", "description"),
    [
        pytest.param({"exp": int(time.time()) - 3600}, "The token has expired.", id="expired"),
        pytest.param(
            {"nbf": int(time.time()) + 3600}, "The token is not valid yet.", id="not-yet-valid"
        ),
        pytest.param(
            {"aud": "https://graph.microsoft.com"},
            "The token's audience is not the DICOM service.",
            id="wrong-audience",
        ),
        pytest.param(
            {"iss": "https://login.microsoftonline.com/x/"},
            "The token was not issued by this tenant.",
            id="wrong-issuer",
        ),
        pytest.param(
            {"exp": "soon"}, "The token's exp or nbf claim is not a number.", id="exp-not-a-number"
        ),
    ],
)
def test_invalid_claims_are_401(
    server: Server, sign: object, overrides: dict[str, object], description: str
) -> None:
    token = sign(_claims(server, **overrides))  # type: ignore[operator]
    with dicom_client(server, token) as client:
        response = client.get("/studies")
    assert response.status_code == 401
    assert response.text == f"Authentication failed: {description}"
    challenge = response.headers["www-authenticate"]
    assert challenge == (
        f'Bearer realm="{server.base_url}/dicom", '
        f'authorization_uri="{server.base_url}/{server.tenant_id}", resource_id="{DICOM}", '
        f'error="invalid_token", error_description="{description}"'
    )


def test_app_id_audience_and_v2_issuer_are_accepted(server: Server, sign: object) -> None:
    claims = _claims(server, aud=DICOM_APP_ID, iss=f"{server.base_url}/{server.tenant_id}/v2.0")
    assert _status(server, sign(claims))[0] in (200, 204)  # type: ignore[operator]


def test_forged_signature_is_401(server: Server, sign: object) -> None:
    genuine = sign(_claims(server))  # type: ignore[operator]
    header = jwt.get_unverified_header(genuine)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(_claims(server), other, algorithm="RS256", headers={"kid": header["kid"]})
    assert _status(server, forged)[0] == 401
    unknown_kid = jwt.encode(_claims(server), other, algorithm="RS256", headers={"kid": "nope"})
    assert _status(server, unknown_kid)[0] == 401


def test_hs256_and_none_are_refused(server: Server) -> None:
    hs = jwt.encode(_claims(server), "secret-secret-secret-secret-1234", algorithm="HS256")
    assert _status(server, hs)[0] == 401
    assert _status(server, "not.a.jwt")[0] == 401


def test_real_token_from_the_token_endpoint(server: Server, dicom_token: TokenFactory) -> None:
    assert _status(server, dicom_token("Dicom.Read"))[0] in (200, 204)


def test_reader_cannot_store_or_delete(server: Server, dicom_token: TokenFactory) -> None:
    with dicom_client(server, dicom_token("Dicom.Read")) as client:
        stored = client.post(
            "/studies",
            content=to_bytes(make_dataset()),
            headers={"Content-Type": "application/dicom"},
        )
        deleted = client.delete(f"/studies/{uuid.uuid4().int}")
        feed = client.get("/changefeed")
    assert (stored.status_code, deleted.status_code, feed.status_code) == (403, 403, 200)


def test_no_roles_is_403(server: Server, dicom_token: TokenFactory) -> None:
    assert _status(server, dicom_token())[0] == 403
    assert _status(server, dicom_token(), "/changefeed")[0] == 403
    with dicom_client(server, dicom_token()) as client:
        response = client.get("/studies")
    assert response.text == "The caller is not authorized to perform the 'search' action."
    assert response.headers["content-type"].startswith("text/plain")


def _delegated(sign: object, server: Server, scopes: str, roles: list[str]) -> str:
    """A token an app got for a signed-in person: ``scp``, the person's ``oid`` and their DICOM
    data role in ``roles`` (Reader: Dicom.Read, Owner: Dicom.ReadWrite)."""
    claims = _claims(server, scp=scopes, roles=roles, oid=str(uuid.uuid4()), name="A Person")
    return sign(claims)  # type: ignore[operator,no-any-return]


def _allowed(server: Server, token: str) -> tuple[bool, bool, bool]:
    """Whether ``token`` may search, store and delete (403 is "may not")."""
    with dicom_client(server, token) as client:
        searched = client.get("/studies")
        stored = client.post(
            "/studies",
            content=to_bytes(make_dataset()),
            headers={"Content-Type": "application/dicom"},
        )
        deleted = client.delete(f"/studies/{uuid.uuid4().int}")
    return searched.status_code != 403, stored.status_code != 403, deleted.status_code != 403


@pytest.mark.parametrize(
    ("scopes", "roles", "search", "write"),
    [
        # the person is a DICOM Data Reader: reading only, whatever the scopes
        ("user_impersonation", ["Dicom.Read"], True, False),
        ("Dicom.ReadWrite", ["Dicom.Read"], True, False),
        # a DICOM Data Owner: what the scopes allow
        ("user_impersonation", ["Dicom.ReadWrite"], True, True),
        ("Dicom.Read", ["Dicom.ReadWrite"], True, False),
        ("openid Dicom.ReadWrite", ["Dicom.ReadWrite"], True, True),
        # no DICOM data role: nothing, whatever the scopes
        ("user_impersonation Dicom.ReadWrite", [], False, False),
        # no DICOM scope (only OpenID ones): nothing, whatever the role
        ("openid profile", ["Dicom.ReadWrite"], False, False),
        # an empty scp is still a person's token, not an application's
        ("", ["Dicom.ReadWrite"], False, False),
    ],
)
def test_a_delegated_token_may_do_what_both_its_scopes_and_the_persons_role_allow(
    server: Server, sign: object, scopes: str, roles: list[str], search: bool, write: bool
) -> None:
    token = _delegated(sign, server, scopes, roles)
    assert _allowed(server, token) == (search, write, write)


def test_the_dicom_api_exposes_its_delegated_permissions(admin: Admin) -> None:
    with admin.context.store.read() as session:
        dicom = session.scalar(
            select(ServicePrincipal).where(ServicePrincipal.app_id == DICOM_APP_ID)
        )
        assert dicom is not None
        scopes = {s["value"]: s["type"] for s in dicom.oauth2_permission_scopes}
    assert scopes == {
        "user_impersonation": "User",
        "Dicom.Read": "User",
        "Dicom.ReadWrite": "Admin",
    }


def test_every_refusal_has_dicom_words() -> None:
    assert set(MESSAGES) == set(Reason)


def test_a_verified_token_is_still_checked_for_expiry(
    server: Server, admin: Admin, sign: object
) -> None:
    """The signature of a token is verified once; its lifetime at every request."""
    keys = PublishedKeys.of_store(admin.context.store)
    auth = DicomAuth(keys, server.base_url, server.tenant_id, DICOM)
    token = "Bearer " + sign(_claims(server))  # type: ignore[operator]
    now = utcnow()
    assert auth.authorize(token, now, Action.WRITE).roles == {"Dicom.ReadWrite"}
    later = now + timedelta(minutes=14)
    assert auth.authorize(token, later, Action.DELETE).roles == {"Dicom.ReadWrite"}
    with pytest.raises(Unauthenticated, match="expired"):
        auth.authorize(token, now + timedelta(minutes=16), Action.READ)  # exp + 5 min leeway
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(Unauthenticated, match="signature"):
        auth.authorize(tampered, now, Action.READ)


# --- key rotation across worker processes, from the wire ---------------------------------------

WORKERS = 2
FRESH_CONNECTIONS = 24  # per check: new connections land on every worker
KEYS_MAX_AGE = 3  # seconds (DICOMITE_SIGNING_KEYS_MAX_AGE_SECONDS; the default is 30)


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[Server, Admin]]:
    running = make_server(
        tmp_path,
        http=True,
        extra_args=["--workers", str(WORKERS)],
        extra_env={"DICOMITE_SIGNING_KEYS_MAX_AGE_SECONDS": str(KEYS_MAX_AGE)},
    )
    running.start()
    context = open_context(Settings(data_dir=running.data_dir, tenant_id=running.tenant_id))
    yield running, Admin(context)
    context.store.dispose()
    running.stop()


def _statuses(server: Server, path: str, token: str) -> set[int]:
    """The statuses of ``path`` (under the server) each over a connection of its own."""

    def one(_: int) -> int:
        headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
            return client.get(path).status_code

    with ThreadPoolExecutor(4) as pool:
        return set(pool.map(one, range(FRESH_CONNECTIONS)))


def _token_signed_by(server: Server, kid: str, client_id: str, secret: str, scope: str) -> str:
    """A token from the token endpoint, once the worker that answers signs with ``kid``."""
    deadline = time.monotonic() + 10
    while True:
        token = token_for(server, client_id, secret, scope)
        if jwt.get_unverified_header(token)["kid"] == kid:
            return token
        assert time.monotonic() < deadline, "the token endpoint does not sign with the new key"
        time.sleep(0.1)


def _newest_kid(admin: Admin) -> str:
    with admin.context.store.read() as session:
        newest = select(SigningKey.kid).order_by(SigningKey.created_at.desc()).limit(1)
        return str(session.scalar(newest))


def test_a_rotated_key_is_honoured_at_once_and_a_retired_one_refused_within_the_max_age(
    two_workers: tuple[Server, Admin],
) -> None:
    server, admin = two_workers
    app = admin.register(roles=("Dicom.Read",))
    assert app.secret is not None
    clients = {
        "/dicom/v1/changefeed": (app.app_id, app.secret, DICOM_SCOPE),
        "/graph/v1.0/applications": (server.client_id, server.client_secret, GRAPH_SCOPE),
    }
    old = {path: token_for(server, *client) for path, client in clients.items()}
    old_kid = str(jwt.get_unverified_header(old["/dicom/v1/changefeed"])["kid"])
    for path, token in old.items():  # every worker now holds the old key
        assert _statuses(server, path, token) == {200}

    server.invoke("keys", "rotate", "--lead", "0")
    new_kid = _newest_kid(admin)
    assert new_kid != old_kid
    new = {path: _token_signed_by(server, new_kid, *client) for path, client in clients.items()}
    for path, token in new.items():
        assert _statuses(server, path, token) == {200}, f"{path}: new key not honoured at once"

    # The old key leaves the JWKS, as it does when its retires_at passes.
    with admin.context.store.write() as session:
        retired = session.get(SigningKey, old_kid)
        assert retired is not None
        retired.retires_at = utcnow() - timedelta(seconds=1)
    deadline = time.monotonic() + KEYS_MAX_AGE + 10  # the slack: a check's 24 requests
    for path, token in old.items():
        while _statuses(server, path, token) != {401}:
            assert time.monotonic() < deadline, f"{path}: a retired key is still trusted"
            time.sleep(1)
    for path, token in new.items():
        assert _statuses(server, path, token) == {200}
