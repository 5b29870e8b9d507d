"""The built-in "DICOM viewer" registration: made when missing with the DICOM service's
delegated user_impersonation consented for everyone and the serving address's callback as an
SPA redirect URI; afterwards only a new address's callback is added, other edits are kept."""

from __future__ import annotations

from dataclasses import dataclass

from dicomite.bootstrap import Context
from dicomite.clock import utcnow
from dicomite.identity import builtin, consent, directory, principals
from dicomite.identity.viewer_client import ensure_viewer_app, viewer_app_id
from dicomite.store.tables import Application

URL = "https://dicom.example.org:8443"


@dataclass
class Seen:
    app: Application
    spa: list[str]
    grants: list[tuple[str, str | None, str]]  # consent type, principal, scope


def ensure(context: Context, public_url: str = URL) -> tuple[str | None, Seen]:
    with context.store.write() as session:
        refusal = ensure_viewer_app(session, context.tenant_id, public_url, utcnow())
    with context.store.read() as session:
        app = directory.get_application_by_app_id(
            session, context.tenant_id, viewer_app_id(context.tenant_id)
        )
        client = principals.service_principal_for_app(session, app.tenant_id, app.app_id)
        assert client is not None
        grants = [
            (g.consent_type, g.principal_id, g.scope)
            for g in consent.list_grants(session, context.tenant_id, client.id)
        ]
        seen = Seen(app, directory.redirect_uris_of(app, "spa"), grants)
    return (refusal.message if refusal else None), seen


def test_it_is_registered_with_consent_for_everyone(context: Context) -> None:
    refusal, seen = ensure(context)
    assert refusal is None
    assert seen.app.display_name == "DICOM viewer"
    assert seen.spa == [f"{URL}/viewer/callback"]
    assert seen.app.redirect_uris == [] and seen.app.public_client_redirect_uris == []
    assert seen.app.required_resource_access == [
        {
            "resourceAppId": builtin.DICOM_APP_ID,
            "resourceAccess": [{"id": builtin.DICOM_USER_IMPERSONATION, "type": "Scope"}],
        }
    ]
    assert seen.grants == [("AllPrincipals", None, "user_impersonation")]
    with context.store.read() as session:
        listed = directory.list_applications(session, context.tenant_id)
        assert [a.app_id for a in listed].count(seen.app.app_id) == 1


def test_every_start_and_host_finds_the_same_registration(context: Context) -> None:
    assert viewer_app_id(context.tenant_id) != viewer_app_id(builtin.DICOM_APP_ID)
    ensure(context)
    _refusal, again = ensure(context)  # a second start, or a second host
    assert again.spa == [f"{URL}/viewer/callback"]
    assert again.grants == [("AllPrincipals", None, "user_impersonation")]


def test_edits_are_kept_and_a_new_address_is_added(context: Context) -> None:
    _refusal, seen = ensure(context)
    with context.store.write() as session:
        app = directory.get_application(session, context.tenant_id, seen.app.id)
        directory.update_application(session, app, display_name="Our viewer")
        directory.add_redirect_uri(session, app, "spa", "https://other.example/cb")
    _refusal, after = ensure(context, "https://localhost:9443")
    assert after.app.display_name == "Our viewer"
    assert after.spa == [
        f"{URL}/viewer/callback",
        "https://other.example/cb",
        "https://localhost:9443/viewer/callback",
    ]


def test_an_address_entra_would_refuse_is_reported_not_registered(context: Context) -> None:
    refusal, seen = ensure(context, "http://dicom.example.org")
    assert refusal is not None and "http://dicom.example.org/viewer/callback" in refusal
    assert seen.spa == []  # the app is there, without the callback
    assert seen.grants == [("AllPrincipals", None, "user_impersonation")]
    assert ensure(context, "http://localhost:8080")[1].spa == [
        "http://localhost:8080/viewer/callback"
    ]


def test_a_deleted_registration_comes_back(context: Context) -> None:
    _refusal, seen = ensure(context)
    with context.store.write() as session:
        directory.delete_application(
            session, directory.get_application(session, context.tenant_id, seen.app.id)
        )
    _refusal, again = ensure(context)
    assert again.app.app_id == seen.app.app_id and again.app.id != seen.app.id
    assert again.spa == [f"{URL}/viewer/callback"]
    assert again.grants == [("AllPrincipals", None, "user_impersonation")]
