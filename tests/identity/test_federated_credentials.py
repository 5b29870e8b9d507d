"""Federated identity credentials through the domain functions that the management API, the
portal, the CLI and the token exchange share, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dicomite.bootstrap import Context
from dicomite.clock import utcnow
from dicomite.identity import directory
from dicomite.identity import federated_credentials as federated
from dicomite.identity.problems import (
    FederatedCredentialNameTaken,
    InvalidFederatedCredential,
    InvalidInput,
    NotFound,
)
from dicomite.store.tables import Application, FederatedIdentityCredential, Tenant

GITHUB = "https://token.actions.githubusercontent.com"


def _app(context: Context, name: str = "Pipeline") -> str:
    with context.store.write() as session:
        return directory.create_application(session, context.tenant_id, utcnow(), name).id


def _add(session: Session, context: Context, app_id: str, name: str, subject: str, **more: Any):  # type: ignore[no-untyped-def]
    app = directory.get_application(session, context.tenant_id, app_id)
    return federated.add_federated_credential(
        session, app, utcnow(), name=name, issuer=GITHUB, subject=subject, **more
    )


def _version(context: Context) -> int:
    with context.store.read() as session:
        return session.get_one(Tenant, context.tenant_id).directory_version


def test_the_token_exchange_finds_a_credential_by_exact_issuer_and_subject(
    context: Context,
) -> None:
    app_id, other_id = _app(context), _app(context, "Other")
    with context.store.write() as session:
        added = _add(session, context, app_id, "prod", "repo:Org/repo:environment:prod").id
    with context.store.read() as session:
        app = session.get_one(Application, app_id)
        other = session.get_one(Application, other_id)
        found = federated.find_federated_credential(
            session, app, GITHUB, "repo:Org/repo:environment:prod"
        )
        assert found is not None and found.id == added
        assert found.audiences == [federated.DEFAULT_AUDIENCE]
        misses = [
            (app, GITHUB, "repo:org/repo:environment:prod"),  # case matters, as in Entra ID
            (app, GITHUB + "/", "repo:Org/repo:environment:prod"),
            (other, GITHUB, "repo:Org/repo:environment:prod"),  # another app's trust
        ]
        for target, issuer, subject in misses:
            assert federated.find_federated_credential(session, target, issuer, subject) is None


def _update(context: Context, app_id: str, key: str, **changes: Any) -> None:
    with context.store.write() as session:
        app = session.get_one(Application, app_id)
        found = federated.get_federated_credential(session, app, key)
        federated.update_federated_credential(session, app, found, **changes)


def test_every_write_bumps_the_directory_version(context: Context) -> None:
    app_id = _app(context)
    before = _version(context)
    with context.store.write() as session:
        credential = _add(session, context, app_id, "pipeline", "subject")
    assert _version(context) == before + 1
    _update(context, app_id, "pipeline", description="changed")
    assert _version(context) == before + 2
    with context.store.write() as session:
        app = session.get_one(Application, app_id)
        federated.remove_federated_credential(session, app, credential.id)
    assert _version(context) == before + 3


def test_a_refused_update_changes_nothing(context: Context) -> None:
    app_id = _app(context)
    with context.store.write() as session:
        _add(session, context, app_id, "first", "one")
        _add(session, context, app_id, "second", "two", description="kept")
    with pytest.raises(InvalidFederatedCredential):
        _update(context, app_id, "second", subject="one", description="lost")
    with pytest.raises(InvalidFederatedCredential):
        _update(context, app_id, "second", name="renamed")
    with context.store.read() as session:
        app = session.get_one(Application, app_id)
        second = federated.get_federated_credential(session, app, "second")
        assert (second.name, second.subject, second.description) == ("second", "two", "kept")


def test_ids_are_found_before_names(context: Context) -> None:
    """A name may look like another credential's id; the id wins, as a key should."""
    app_id = _app(context)
    with context.store.write() as session:
        first = _add(session, context, app_id, "first", "one")
        _add(session, context, app_id, first.id, "two")
    with context.store.read() as session:
        app = session.get_one(Application, app_id)
        assert federated.get_federated_credential(session, app, first.id).name == "first"
        with pytest.raises(NotFound):
            federated.get_federated_credential(session, app, "third")


@pytest.mark.parametrize(
    "name", ["abc", "A" * 120, "deploy_prod-2", "0-main", "d9b7bf1e-429e-4678-8132-9b00c9846cc4"]
)
def test_names_entra_id_accepts(name: str) -> None:
    assert federated.check_name(name) == name


@pytest.mark.parametrize(
    "name", ["ab", "A" * 121, "-main", "_main", "main.prod", "main prod", "mäin", "", None, 7]
)
def test_names_entra_id_refuses(name: Any) -> None:
    with pytest.raises(InvalidFederatedCredential) as refused:
        federated.check_name(name)
    assert refused.value.prop == "Name"


@pytest.mark.parametrize(
    "issuer",
    [GITHUB, "https://oidc.prod-aks.azure.com/tenant/cluster/", "http://localhost:8080/issuer"],
)
def test_issuers_accepted(issuer: str) -> None:
    assert federated.check_issuer(issuer) == issuer


@pytest.mark.parametrize(
    "issuer",
    [
        "http://issuer.example",
        "token.actions.githubusercontent.com",
        "https://",
        "https://[oops",
        f"{GITHUB} ",
        "https://issuer.example/a b",
        "https://x.example/" + "i" * 600,
    ],
)
def test_issuers_refused(issuer: str) -> None:
    with pytest.raises(InvalidFederatedCredential) as refused:
        federated.check_issuer(issuer)
    assert refused.value.prop == "Issuer"


def test_subjects_with_spaces_at_their_ends_or_control_characters_are_refused(
    context: Context,
) -> None:
    app_id = _app(context)
    for subject in (" repo:org/repo:pull_request", "repo\n", "", "   "):
        with pytest.raises(InvalidFederatedCredential), context.store.write() as session:
            _add(session, context, app_id, "pipeline", subject)


def test_the_twentieth_credential_is_the_last(context: Context) -> None:
    app_id = _app(context)
    with context.store.write() as session:
        for number in range(federated.MAX_PER_APPLICATION):
            _add(session, context, app_id, f"credential-{number}", f"subject-{number}")
    with pytest.raises(InvalidInput, match="at most 20"), context.store.write() as session:
        _add(session, context, app_id, "one-more", "subject-more")


def test_concurrent_writers_cannot_pass_the_limit_together(context: Context) -> None:
    """With 19 credentials, a writer that adds the 20th holds the others back until it commits,
    so a second writer counts 20 and is refused (without the lock, PostgreSQL's second writer
    would count 19 and add a 21st)."""
    app_id = _app(context)
    with context.store.write() as session:
        for number in range(federated.MAX_PER_APPLICATION - 1):
            _add(session, context, app_id, f"credential-{number}", f"subject-{number}")
    outcome: list[BaseException | None] = []

    def second_writer() -> None:
        try:
            with context.store.write() as session:
                _add(session, context, app_id, "second", "subject-second")
        except InvalidInput as refused:
            outcome.append(refused)
        else:
            outcome.append(None)

    racer = threading.Thread(target=second_writer)
    with context.store.write() as session:
        _add(session, context, app_id, "first", "subject-first")
        racer.start()
        time.sleep(0.5)  # the second writer is now waiting for this one
    racer.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], InvalidInput)
    with context.store.read() as session:
        app = session.get_one(Application, app_id)
        assert len(federated.federated_credentials_of(session, app)) == 20


def test_a_name_is_taken_ignoring_case_and_only_in_its_own_app(context: Context) -> None:
    app_id, other_id = _app(context), _app(context, "Other")
    with context.store.write() as session:
        _add(session, context, app_id, "Deploy", "one")
        _add(session, context, other_id, "deploy", "one")
    with pytest.raises(FederatedCredentialNameTaken), context.store.write() as session:
        _add(session, context, app_id, "DEPLOY", "two")


def test_the_credentials_go_with_their_application(context: Context) -> None:
    app_id = _app(context)
    with context.store.write() as session:
        _add(session, context, app_id, "pipeline", "subject")
    with context.store.write() as session:
        directory.delete_application(session, session.get_one(Application, app_id))
    with context.store.read() as session:
        rows = session.scalars(select(FederatedIdentityCredential)).all()
        assert [r for r in rows if r.application_id == app_id] == []
