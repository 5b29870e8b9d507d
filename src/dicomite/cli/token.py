"""``dicomite token get``: a real client-credentials request (RFC 6749 §4.4) over HTTP(S).

It is a client of the running server, exactly as msal or azure-identity would be: a secret in
the form, or a ``private_key_jwt`` client assertion (RFC 7523) signed with a certificate's key.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import jwt
import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from dicomite.cli.options import build_settings
from dicomite.cli.shared import DatabaseUrl, DataDir, deployment, fail, print_json
from dicomite.clock import utcnow
from dicomite.settings import Settings

app = typer.Typer(help="Access tokens from the identity platform.", no_args_is_help=True)

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = timedelta(minutes=10)


@app.command()
def get(
    client_id: Annotated[str, typer.Option("--client-id", help="Application (client) ID")],
    client_secret: Annotated[
        str | None, typer.Option("--client-secret", help="Client secret ('-' reads stdin)")
    ] = None,
    certificate: Annotated[
        Path | None, typer.Option("--certificate", help="Certificate (PEM/DER)", dir_okay=False)
    ] = None,
    private_key: Annotated[
        Path | None,
        typer.Option(
            "--private-key", help="Its private key (PEM) \\[default: the --certificate file]"
        ),
    ] = None,
    scope: Annotated[
        str | None,
        typer.Option("--scope", help="{resource}/.default \\[default: the DICOM service's]"),
    ] = None,
    authority: Annotated[
        str | None,
        typer.Option("--authority", help="{public_url}/{tenant} \\[default: this deployment's]"),
    ] = None,
    ca_file: Annotated[
        Path | None, typer.Option("--ca-file", help="CA to trust [DATA_DIR/tls/ca.pem]")
    ] = None,
    decode: Annotated[bool, typer.Option("--decode", help="Print the token's claims")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Get an access token with the client-credentials grant and print it."""
    if (client_secret is None) == (certificate is None):
        fail("Give either --client-secret or --certificate (with --private-key).")
    settings = build_settings(data_dir=data_dir, database_url=database_url)
    base = authority or default_authority(settings, data_dir, database_url)
    token_url = f"{base.rstrip('/')}/oauth2/v2.0/token"
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "scope": scope or f"{settings.dicom_resource_uri}/.default",
    }
    if certificate is not None:
        assertion = client_assertion(
            client_id, token_url, _read(certificate), _read(private_key or certificate), utcnow()
        )
        form |= {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion}
    else:
        form["client_secret"] = read_secret(client_secret or "")
    token = request_token(token_url, form, tls_verify(settings, token_url, ca_file))
    if decode:
        print_json(jwt.decode(token, options={"verify_signature": False}))
    else:
        typer.echo(token)


def client_assertion(
    client_id: str, audience: str, certificate: bytes, private_key: bytes, now: datetime
) -> str:
    """The JWT Entra ID expects (RS256, ``x5t`` = base64url SHA-1 of the certificate's DER)."""
    der = _certificate_der(certificate)
    key = _private_key(private_key)
    thumbprint = hashlib.sha1(der, usedforsecurity=False).digest()
    claims = {
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": str(uuid.uuid4()),
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + ASSERTION_LIFETIME).timestamp()),
    }
    x5t = base64.urlsafe_b64encode(thumbprint).rstrip(b"=").decode()
    return jwt.encode(claims, key, algorithm="RS256", headers={"x5t": x5t})


def request_token(token_url: str, form: dict[str, str], verify: ssl.SSLContext | bool) -> str:
    try:
        with httpx.Client(verify=verify, timeout=30) as client:
            response = client.post(token_url, data=form)
    except httpx.HTTPError as exc:
        fail(f"Cannot reach {token_url}: {exc}")
    try:
        body: Any = response.json()
    except ValueError:
        fail(f"{token_url} answered HTTP {response.status_code} without a JSON body.")
    if not isinstance(body, dict):
        body = {}
    if response.status_code != 200 or "access_token" not in body:
        described = body.get("error_description") or body.get("error")
        fail(str(described or f"HTTP {response.status_code}").replace("\r\n", "\n"))
    return str(body["access_token"])


def default_authority(settings: Settings, data_dir: Path | None, database_url: str | None) -> str:
    """The local deployment's authority (public URL and tenant), when --authority is not given."""
    if settings.database_url is None and not (settings.data_dir / "dicomite.db").exists():
        fail(f"No deployment in {settings.data_dir}; give --authority or --data-dir.")
    with deployment(data_dir, database_url) as context:
        return f"{settings.effective_public_url}/{context.tenant_id}"


def tls_verify(settings: Settings, url: str, ca_file: Path | None) -> ssl.SSLContext | bool:
    """System CAs plus our own: the given --ca-file, else the data dir's local CA if any."""
    if url.startswith("http://"):
        return True
    context = ssl.create_default_context()
    cafile = ca_file or (settings.ca_file if settings.ca_file.exists() else None)
    if cafile is not None:
        try:
            context.load_verify_locations(cafile=str(cafile))
        except (OSError, ssl.SSLError) as exc:
            fail(f"Cannot use {cafile} as a CA file: {exc}")
    return context


def read_secret(given: str) -> str:
    """``-`` reads the secret from stdin, keeping it out of the shell history and ``ps``."""
    return sys.stdin.readline().strip() if given == "-" else given


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"Cannot read {path}: {exc.strerror or exc}")


def _certificate_der(data: bytes) -> bytes:
    try:
        cert = (
            x509.load_pem_x509_certificate(data)
            if b"-----BEGIN CERTIFICATE" in data
            else x509.load_der_x509_certificate(data)
        )
    except ValueError:
        fail("--certificate is not an X.509 certificate (PEM or DER).")
    return cert.public_bytes(serialization.Encoding.DER)


def _private_key(data: bytes) -> RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        fail(f"--private-key is not an unencrypted PEM private key ({exc}).")
    if not isinstance(key, RSAPrivateKey):
        fail("--private-key must be an RSA key.")
    return key
