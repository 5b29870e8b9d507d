"""Client secrets (generate, hash, verify, expire) and certificate credentials."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dicomite.identity.problems import Conflict, InvalidInput, NotFound
from dicomite.identity.protection import KeyProtection
from dicomite.identity.validation import check_guid
from dicomite.identity.version import touch
from dicomite.store.tables import Application, KeyCredential, PasswordCredential

# Entra ID secrets are 40 characters with a "~" separator after a short prefix; ours have the
# same shape so tools that sanity-check them accept them: 3 + "8Q~" + 34 random characters.
_SECRET_ALPHABET = string.ascii_letters + string.digits + "_-.~"
SECRET_LENGTH = 40
MAX_SECRET_MONTHS = 24


def generate_secret() -> str:
    head = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(3))
    tail = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(SECRET_LENGTH - 6))
    return f"{head}8Q~{tail}"  # 37 random characters, about 220 bits of entropy


def secret_matches(expected: bytes, actual: bytes) -> bool:
    return hmac.compare_digest(expected, actual)


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months, clamping the day (Jan 31 + 1 month = Feb 28/29)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    for day in range(moment.day, 27, -1):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    return moment.replace(year=year, month=month, day=min(moment.day, 28))


def secret_validity(
    now: datetime, start: datetime | None, end: datetime | None
) -> tuple[datetime, datetime]:
    """Start and end of a new secret: Graph defaults to two years; over 24 months is refused."""
    start = start or now
    end = end or add_months(start, MAX_SECRET_MONTHS)
    if end <= start:
        raise InvalidInput("endDateTime must be later than startDateTime.")
    if end > add_months(start, MAX_SECRET_MONTHS) + timedelta(minutes=5):
        raise InvalidInput("A client secret may be valid for at most 24 months.")
    return start, end


@dataclass(frozen=True)
class Certificate:
    der: bytes
    public_key: RSAPublicKey
    thumbprint_sha1: bytes
    thumbprint_sha256: bytes
    not_before: datetime
    not_after: datetime
    subject: str

    @property
    def thumbprint_hex(self) -> str:
        return self.thumbprint_sha1.hex().upper()


def parse_certificate(data: bytes) -> Certificate:
    """Accept PEM, DER, or base64 of the DER (Graph's ``keyCredentials[].key``)."""
    cert = _load_x509(data)
    public_key = cert.public_key()
    if not isinstance(public_key, RSAPublicKey):
        raise InvalidInput("Only RSA certificates are supported for client assertions.")
    if public_key.key_size < 2048:
        raise InvalidInput("The certificate's RSA key must have at least 2048 bits.")
    der = cert.public_bytes(Encoding.DER)
    return Certificate(
        der=der,
        public_key=public_key,
        thumbprint_sha1=hashlib.sha1(der, usedforsecurity=False).digest(),
        thumbprint_sha256=hashlib.sha256(der).digest(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        subject=cert.subject.rfc4514_string(),
    )


def _load_x509(data: bytes) -> x509.Certificate:
    stripped = data.strip()
    try:
        if stripped.startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(stripped)
        try:
            return x509.load_der_x509_certificate(data)
        except ValueError:
            return x509.load_der_x509_certificate(base64.b64decode(stripped, validate=True))
    except (ValueError, binascii.Error) as exc:
        raise InvalidInput("The key is not an X.509 certificate (PEM, DER or base64).") from exc


# --- credentials of an application ------------------------------------------------------------


@dataclass(frozen=True)
class NewSecret:
    """A freshly added secret: the only moment its value exists outside the client."""

    credential: PasswordCredential
    secret_text: str


def add_password(
    session: Session,
    app: Application,
    protection: KeyProtection,
    now: datetime,
    *,
    display_name: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> NewSecret:
    return add_password_value(
        session,
        app,
        protection,
        now,
        generate_secret(),
        display_name=display_name,
        start=start,
        end=end,
    )


def add_password_value(
    session: Session,
    app: Application,
    protection: KeyProtection,
    now: datetime,
    secret: str,
    *,
    display_name: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> NewSecret:
    """Store a secret chosen elsewhere (the bootstrap client's, from the environment)."""
    if display_name is not None and len(display_name) > 256:
        raise InvalidInput("displayName must be at most 256 characters.")
    if len(secret) < 16:
        raise InvalidInput("A client secret must have at least 16 characters.")
    start, end = secret_validity(now, start, end)
    credential = PasswordCredential(
        key_id=str(uuid.uuid4()),
        application_id=app.id,
        display_name=display_name,
        hint=secret[:3],
        secret_hash=protection.secret_hash(secret),
        start_at=start,
        end_at=end,
    )
    session.add(credential)
    session.flush()
    touch(session, app.tenant_id)
    return NewSecret(credential, secret)


def list_passwords(session: Session, app: Application) -> Sequence[PasswordCredential]:
    return _credentials_of(session, app, PasswordCredential)


def remove_password(session: Session, app: Application, key_id: str) -> None:
    _remove(session, app, PasswordCredential, key_id, "password credential")


def add_certificate(
    session: Session,
    app: Application,
    data: bytes,
    *,
    display_name: str | None = None,
    key_id: str | None = None,
) -> KeyCredential:
    cert = parse_certificate(data)
    existing = session.scalar(
        select(KeyCredential).where(
            KeyCredential.application_id == app.id,
            KeyCredential.thumbprint_sha1 == cert.thumbprint_hex,
        )
    )
    if existing is not None:
        raise Conflict("This certificate is already registered on the application.")
    credential = KeyCredential(
        key_id=check_guid(key_id, "keyId") if key_id else str(uuid.uuid4()),
        application_id=app.id,
        display_name=display_name or cert.subject[:256],
        certificate_der=cert.der,
        thumbprint_sha1=cert.thumbprint_hex,
        thumbprint_sha256=cert.thumbprint_sha256.hex().upper(),
        start_at=cert.not_before,
        end_at=cert.not_after,
    )
    session.add(credential)
    session.flush()
    touch(session, app.tenant_id)
    return credential


def list_certificates(session: Session, app: Application) -> Sequence[KeyCredential]:
    return _credentials_of(session, app, KeyCredential)


def remove_certificate(session: Session, app: Application, key_id: str) -> None:
    _remove(session, app, KeyCredential, key_id, "key credential")


_Credential = TypeVar("_Credential", PasswordCredential, KeyCredential)


def _credentials_of(
    session: Session, app: Application, kind: type[_Credential]
) -> Sequence[_Credential]:
    query = select(kind).where(kind.application_id == app.id)
    return session.scalars(query.order_by(kind.start_at, kind.key_id)).all()


def _remove(
    session: Session,
    app: Application,
    kind: type[PasswordCredential] | type[KeyCredential],
    key_id: str,
    label: str,
) -> None:
    removed = session.execute(
        delete(kind).where(
            kind.application_id == app.id, kind.key_id == check_guid(key_id, "keyId")
        )
    )
    if removed.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"No {label} with keyId '{key_id}' on this application.")
    touch(session, app.tenant_id)


def replace_certificates(session: Session, app: Application, keys: Sequence[bytes]) -> None:
    """``PATCH keyCredentials``: the list given replaces the certificates held."""
    session.execute(delete(KeyCredential).where(KeyCredential.application_id == app.id))
    session.flush()
    for data in keys:
        add_certificate(session, app, data)
    touch(session, app.tenant_id)
