"""The tenant's user consent setting and a person's own consent (``consentType: Principal``),
through the domain functions the portal, the CLI and the Graph API share."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dicomite.bootstrap import Context
from dicomite.clock import utcnow
from dicomite.identity import builtin, consent, directory, principals, users
from dicomite.identity.user_consent import set_users_can_consent, users_can_consent
from dicomite.store.tables import OAuth2PermissionGrant, ServicePrincipal, Tenant


def _version(context: Context) -> int:
    with context.store.read() as session:
        return session.get_one(Tenant, context.tenant_id).directory_version


def test_changing_the_setting_bumps_the_directory_version(context: Context) -> None:
    with context.store.read() as session:
        assert users_can_consent(session, context.tenant_id) is True  # Entra ID's default
    before = _version(context)
    with context.store.write() as session:
        set_users_can_consent(session, context.tenant_id, False)
    with context.store.read() as session:
        assert users_can_consent(session, context.tenant_id) is False
    assert _version(context) == before + 1


def _client_and_dicom(context: Context) -> tuple[ServicePrincipal, ServicePrincipal]:
    with context.store.write() as session:
        _, client = directory.register_app(session, context.tenant_id, utcnow(), "Viewer")
        dicom = principals.find_resource(session, context.tenant_id, builtin.DICOM_APP_ID)
        assert dicom is not None
        session.expunge_all()
        return client, dicom


def _person(session: Session, context: Context, name: str) -> str:
    return users.create_user(
        session,
        context.tenant_id,
        utcnow(),
        user_principal_name=f"{name}@{context.tenant_domain}",
        display_name=name,
        password=users.new_password("Correct-Horse-9"),
    ).id


def test_a_persons_grant_is_their_own(context: Context) -> None:
    client, dicom = _client_and_dicom(context)
    with context.store.write() as session:
        person, other = _person(session, context, "someone"), _person(session, context, "other")
        grants = [
            consent.grant_delegated(session, client, dicom, ["Dicom.Read"]),
            consent.grant_delegated(session, client, dicom, ["user_impersonation"], person),
            consent.grant_delegated(session, client, dicom, ["Dicom.Read"], person),
            consent.grant_delegated(session, client, dicom, ["Dicom.Read"], other),
        ]
        rows = [(g.id, g.consent_type, g.principal_id, g.scope) for g in grants]
    everyone, mine, again, theirs = rows
    assert everyone[1:] == ("AllPrincipals", None, "Dicom.Read")
    assert mine[0] == again[0]  # one grant per person, scopes added to it
    assert again[1:] == ("Principal", person, "user_impersonation Dicom.Read")
    assert theirs[1:] == ("Principal", other, "Dicom.Read")
    assert len({everyone[0], mine[0], theirs[0]}) == 3
    with context.store.read() as session:
        stored = session.get_one(OAuth2PermissionGrant, everyone[0])
        assert stored.scope == "Dicom.Read"  # the person's consent did not widen everyone's
