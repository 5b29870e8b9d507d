"""Federated identity credentials (Graph's federatedIdentityCredential): the external tokens
that stand for an application, so that a pipeline or a cluster signs in without a secret
(workload identity federation).

Entra ID's rules (Graph's federatedIdentityCredential resource; learn.microsoft.com/entra/
workload-id/workload-identity-federation-considerations):

- at most 20 credentials per application;
- ``name``: 3-120 letters, digits, ``-`` and ``_``, the first a letter or digit; unique in the
  application (ignoring case); it cannot be changed once created;
- ``issuer`` and ``subject``: required, at most 600 characters each; the pair is unique in the
  application and compared exactly, as Entra ID matches them (case-sensitively);
- ``audiences``: exactly one value of at most 600 characters (``api://AzureADTokenExchange``
  unless given);
- ``description``: optional, at most 600 characters.

Dicomite also wants ``issuer`` to be an https URL (or http on localhost for development)
without spaces: the token exchange fetches the issuer's signing keys from it.

The token exchange asks :func:`find_federated_credential` which credential (if any) trusts a
token's ``iss`` and ``sub``, then compares the token's ``aud`` with its one audience.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from dicomite.identity.problems import (
    FederatedCredentialNameTaken,
    InvalidFederatedCredential,
    InvalidInput,
    NotFound,
)
from dicomite.identity.version import touch
from dicomite.store.tables import Application, FederatedIdentityCredential

MAX_PER_APPLICATION = 20
MAX_LENGTH = 600  # issuer, subject, the audience and description
DEFAULT_AUDIENCE = "api://AzureADTokenExchange"
NAME_RULE = (
    "A name has 3 to 120 characters: letters, digits, '-' and '_', the first a letter or a digit."
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{2,119}")
_LOCAL_HOSTS = ("localhost", "127.0.0.1")
_UNSET: Any = object()


def federated_credentials_of(
    session: Session, app: Application
) -> Sequence[FederatedIdentityCredential]:
    """The application's credentials, oldest first."""
    query = select(FederatedIdentityCredential).where(
        FederatedIdentityCredential.application_id == app.id
    )
    order = (FederatedIdentityCredential.created_at, FederatedIdentityCredential.id)
    return session.scalars(query.order_by(*order)).all()


def find_federated_credential(
    session: Session, app: Application, issuer: str, subject: str
) -> FederatedIdentityCredential | None:
    """The credential trusting tokens of ``issuer`` about ``subject`` (both compared exactly),
    or None: what the token exchange asks of an external token's ``iss`` and ``sub``."""
    return session.scalar(
        select(FederatedIdentityCredential).where(
            FederatedIdentityCredential.application_id == app.id,
            FederatedIdentityCredential.issuer == issuer,
            FederatedIdentityCredential.subject == subject,
        )
    )


def get_federated_credential(
    session: Session, app: Application, key: str
) -> FederatedIdentityCredential:
    """A credential by its id or by its name (Graph addresses it by either)."""
    held = federated_credentials_of(session, app)
    by_id = [c for c in held if c.id == key.lower()]
    found = by_id or [c for c in held if c.name.casefold() == key.casefold()]
    if not found:
        raise NotFound.for_object(key)
    return found[0]


def add_federated_credential(
    session: Session,
    app: Application,
    now: datetime,
    *,
    name: str,
    issuer: str,
    subject: str,
    audiences: Sequence[str] | None = None,
    description: str | None = None,
) -> FederatedIdentityCredential:
    credential = FederatedIdentityCredential(
        id=str(uuid.uuid4()), application_id=app.id, name=check_name(name), created_at=now
    )
    _set(credential, issuer, subject, _default(audiences), description)
    _lock(session, app)
    held = federated_credentials_of(session, app)
    if len(held) >= MAX_PER_APPLICATION:
        raise InvalidInput(
            f"An application can have at most {MAX_PER_APPLICATION} federated identity "
            "credentials. Delete one before adding another."
        )
    _check_unique(held, credential)
    session.add(credential)
    session.flush()
    touch(session, app.tenant_id)
    return credential


def update_federated_credential(
    session: Session,
    app: Application,
    credential: FederatedIdentityCredential,
    *,
    name: str = _UNSET,
    issuer: str = _UNSET,
    subject: str = _UNSET,
    audiences: Sequence[str] = _UNSET,
    description: str | None = _UNSET,
) -> None:
    """Change the properties given; ``name`` may be given only unchanged (Graph's PATCH bodies
    often repeat it)."""
    if name is not _UNSET and name != credential.name:
        raise InvalidFederatedCredential(
            "The name of a federated identity credential cannot be changed.", "Name", str(name)
        )
    changed = FederatedIdentityCredential(id=credential.id, name=credential.name)
    _set(
        changed,
        credential.issuer if issuer is _UNSET else issuer,
        credential.subject if subject is _UNSET else subject,
        credential.audiences if audiences is _UNSET else audiences,
        credential.description if description is _UNSET else description,
    )
    _lock(session, app)
    _check_unique(federated_credentials_of(session, app), changed)
    for attribute in ("issuer", "subject", "audiences", "description"):
        setattr(credential, attribute, getattr(changed, attribute))
    session.flush()
    touch(session, app.tenant_id)


def remove_federated_credential(session: Session, app: Application, key: str) -> None:
    """Delete a credential (by id or name): the tokens it trusted no longer sign the app in."""
    session.delete(get_federated_credential(session, app, key))
    session.flush()
    touch(session, app.tenant_id)


# --- rules -----------------------------------------------------------------------------------


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = name if isinstance(name, str) else ""
        raise InvalidFederatedCredential(
            f"Federated identity credential name '{shown[:130]}' is invalid. {NAME_RULE}",
            "Name",
            shown,
        )
    return name


def _set(
    credential: FederatedIdentityCredential,
    issuer: Any,
    subject: Any,
    audiences: Any,
    description: Any,
) -> None:
    credential.issuer = check_issuer(issuer)
    credential.subject = _required(subject, "subject", "Subject")
    credential.audiences = _audiences(audiences)
    credential.description = None if description is None else _text(description, "Description")


def check_issuer(issuer: Any) -> str:
    """An https URL (http on localhost), as the token exchange reads its keys from there."""
    text = _required(issuer, "issuer", "Issuer")
    if not _is_issuer_url(text):
        raise InvalidFederatedCredential(
            f"The issuer '{text[:130]}' must be an https URL (http only on localhost) without "
            "spaces: the URL of the external identity provider, as its tokens' 'iss' claim.",
            "Issuer",
            text,
        )
    return text


def _is_issuer_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:  # an unclosed IPv6 literal, "https://[x"
        return False
    local = parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS
    return (parts.scheme == "https" or local) and bool(parts.hostname) and not _has_space(text)


def _required(value: Any, label: str, prop: str) -> str:
    text = _text(value, prop)
    if not text.strip():
        raise InvalidFederatedCredential(
            f"The {label} of a federated identity credential is required.", prop, text
        )
    if text != text.strip() or any(ord(c) < 32 for c in text):
        raise InvalidFederatedCredential(
            f"The {label} must not start or end with spaces or hold control characters.",
            prop,
            text,
        )
    return text


def _text(value: Any, prop: str) -> str:
    if not isinstance(value, str):
        raise InvalidFederatedCredential(f"{prop} must be a string.", prop, "")
    if len(value) > MAX_LENGTH:
        raise InvalidFederatedCredential(
            f"{prop} must be at most {MAX_LENGTH} characters.", prop, value
        )
    return value


def _audiences(values: Any) -> list[str]:
    if not isinstance(values, list | tuple) or len(values) != 1:
        shown = ",".join(str(v) for v in values) if isinstance(values, list | tuple) else ""
        raise InvalidFederatedCredential(
            "Federated identity credentials must have exactly 1 audience.", "Audiences", shown
        )
    return [_required(values[0], "audience", "Audiences")]


def _default(audiences: Sequence[str] | None) -> Sequence[str]:
    """Graph requires the audience; the portal and the CLI offer Entra ID's, and so do we."""
    return [DEFAULT_AUDIENCE] if audiences is None else audiences


def _has_space(text: str) -> bool:
    return any(c.isspace() for c in text)


def _check_unique(
    held: Sequence[FederatedIdentityCredential], credential: FederatedIdentityCredential
) -> None:
    others = [c for c in held if c.id != credential.id]
    if any(c.name.casefold() == credential.name.casefold() for c in others):
        raise FederatedCredentialNameTaken(credential.name)
    if any((c.issuer, c.subject) == (credential.issuer, credential.subject) for c in others):
        raise InvalidFederatedCredential(
            "The combination of issuer and subject must be unique for the application. Issuer "
            f"{credential.issuer} and Subject: {credential.subject} already exist.",
            "Subject",
            credential.subject,
        )


def _lock(session: Session, app: Application) -> None:
    """Writers of one application's credentials take turns, so the count and the uniqueness
    checks hold: a row lock on PostgreSQL; SQLite writers hold the database's write lock."""
    session.execute(select(Application.id).where(Application.id == app.id).with_for_update())
