"""``private_key_jwt`` client authentication with registered certificates (RFC 7523)."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from dicomite.clock import utcnow
from tests.fixtures.directory import (
    DICOM_SCOPE,
    Admin,
    CertificatePair,
    RegisteredApp,
    make_certificate,
)
from tests.fixtures.server import Server
from tests.identity.wire import assert_aadsts, post_token

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assertion(
    server: Server,
    app: RegisteredApp,
    cert: CertificatePair,
    *,
    alg: str = "RS256",
    thumbprint: str = "x5t",
    **claims: Any,
) -> str:
    der = x509.load_pem_x509_certificate(cert.certificate_pem).public_bytes(Encoding.DER)
    digest = (
        hashlib.sha256(der).digest() if thumbprint == "x5t#S256" else hashlib.sha1(der).digest()
    )
    now = int(time.time())
    payload = {
        "aud": server.token_url,
        "iss": app.app_id,
        "sub": app.app_id,
        "jti": str(uuid.uuid4()),
        "exp": now + 600,
        "nbf": now,
        "iat": now,
    } | claims
    return jwt.encode(
        payload,
        cert.private_key_pem,
        algorithm=alg,
        headers={"typ": "JWT", thumbprint: b64url(digest)},
    )


def request(server: Server, app: RegisteredApp, token: str, **extra: str) -> Any:
    data = {
        "grant_type": "client_credentials",
        "client_id": app.app_id,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": token,
        "scope": DICOM_SCOPE,
    } | extra
    return post_token(server, data)


@pytest.fixture(scope="module")
def registered(admin: Admin) -> tuple[RegisteredApp, CertificatePair]:
    app = admin.register(roles=("Dicom.ReadWrite",), secret=False)
    cert = make_certificate()
    admin.add_certificate(app.app_id, cert.certificate_pem)
    return app, cert


ALGORITHM_HEADERS = [
    ("RS256", "x5t"),
    ("PS256", "x5t#S256"),
    ("RS256", "x5t#S256"),
    ("PS256", "x5t"),
]


@pytest.mark.parametrize(("alg", "thumbprint"), ALGORITHM_HEADERS)
def test_certificate_gets_a_token(
    server: Server, registered: tuple[RegisteredApp, CertificatePair], alg: str, thumbprint: str
) -> None:
    app, cert = registered
    response = request(server, app, assertion(server, app, cert, alg=alg, thumbprint=thumbprint))
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["appidacr"] == "2" and claims["roles"] == ["Dicom.ReadWrite"]


def test_jti_is_accepted_once(
    server: Server, registered: tuple[RegisteredApp, CertificatePair]
) -> None:
    app, cert = registered
    token = assertion(server, app, cert)
    assert request(server, app, token).status_code == 200
    assert_aadsts(request(server, app, token), 401, "invalid_client", 700022)


def test_unregistered_certificate(
    server: Server, registered: tuple[RegisteredApp, CertificatePair]
) -> None:
    app, _ = registered
    stranger = make_certificate()
    assert_aadsts(
        request(server, app, assertion(server, app, stranger)), 401, "invalid_client", 700027
    )


def test_forged_signature(
    server: Server, registered: tuple[RegisteredApp, CertificatePair]
) -> None:
    app, cert = registered
    other = make_certificate()
    forged = CertificatePair(other.private_key_pem, cert.certificate_pem, cert.thumbprint_hex)
    assert_aadsts(
        request(server, app, assertion(server, app, forged)), 401, "invalid_client", 700027
    )


def test_expired_assertion(
    server: Server, registered: tuple[RegisteredApp, CertificatePair]
) -> None:
    app, cert = registered
    token = assertion(server, app, cert, exp=int(time.time()) - 3600, nbf=int(time.time()) - 7200)
    assert_aadsts(request(server, app, token), 401, "invalid_client", 700024)


def test_wrong_audience(server: Server, registered: tuple[RegisteredApp, CertificatePair]) -> None:
    app, cert = registered
    token = assertion(
        server, app, cert, aud="https://login.microsoftonline.com/x/oauth2/v2.0/token"
    )
    assert_aadsts(request(server, app, token), 401, "invalid_client", 700023)


def test_issuer_must_be_the_client(
    server: Server, registered: tuple[RegisteredApp, CertificatePair]
) -> None:
    app, cert = registered
    token = assertion(server, app, cert, iss=str(uuid.uuid4()))
    assert_aadsts(request(server, app, token), 401, "invalid_client", 700021)


@pytest.mark.parametrize("alg", ["HS256", "none", "RS512"])
def test_other_algorithms_are_refused(
    server: Server, registered: tuple[RegisteredApp, CertificatePair], alg: str
) -> None:
    app, _ = registered
    header = b64url(f'{{"alg":"{alg}","typ":"JWT","x5t":"abc"}}'.encode())
    body = b64url(f'{{"iss":"{app.app_id}"}}'.encode())
    assert_aadsts(request(server, app, f"{header}.{body}.c2ln"), 401, "invalid_client", 50027)


@pytest.mark.parametrize("value", ["", "not-a-jwt", "a.b.c", "x" * 20000])
def test_garbage_assertion(
    server: Server, registered: tuple[RegisteredApp, CertificatePair], value: str
) -> None:
    app, _ = registered
    response = request(server, app, value)
    assert response.status_code in (400, 401)
    assert response.json()["error"] in ("invalid_client", "invalid_request")


def test_wrong_assertion_type(
    server: Server, registered: tuple[RegisteredApp, CertificatePair]
) -> None:
    app, cert = registered
    response = request(server, app, assertion(server, app, cert), client_assertion_type="saml")
    assert_aadsts(response, 401, "invalid_client", 70021)


def test_expired_certificate_is_refused(server: Server, admin: Admin) -> None:
    app = admin.register(roles=("Dicom.Read",), secret=False)
    cert = make_certificate(days=1, start=utcnow() - timedelta(days=3))
    admin.add_certificate(app.app_id, cert.certificate_pem)
    assert_aadsts(request(server, app, assertion(server, app, cert)), 401, "invalid_client", 700027)
